//! Writing SIP: responses built with `response_to` (Via stamping, To tags, Record-Route,
//! bodies), requests built with `RequestBuilder` (MESSAGE and NOTIFY round trips, header
//! injection attempts), and stateless 400/405/513 answers scraped from unparsable requests.

use std::net::SocketAddr;

use palaver_dialects::sip::{
    bad_request_response, error_response, parse, response_to, Method, RequestBuilder, SipError,
    SipMessage,
};

const MAX: usize = 64 * 1024;

fn crlf(lines: &[&str], body: &str) -> Vec<u8> {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n\r\n");
    s.push_str(body);
    s.into_bytes()
}

fn linphone_message(body: &str) -> Vec<u8> {
    let len = format!("Content-Length: {}", body.len());
    crlf(
        &[
            "MESSAGE sip:lobby@conference.localhost SIP/2.0",
            "Via: SIP/2.0/TCP 192.168.1.20:49734;alias;branch=z9hG4bK.r~dQr5iRy;rport",
            "From: <sip:bob@localhost>;tag=bWHUcKk3~",
            "To: sip:lobby@conference.localhost",
            "CSeq: 20 MESSAGE",
            "Call-ID: gw2yJHC6Tr",
            "Max-Forwards: 70",
            "Supported: replaces, outbound, gruu, path, record-aware",
            "Date: Tue, 04 Nov 2025 10:00:00 GMT",
            "Content-Type: text/plain;charset=UTF-8",
            &len,
            "User-Agent: Linphone-Desktop/5.2.6 (bob-laptop) ubuntu/24.04 Qt/5.15.2 LinphoneSDK/5.3.72",
        ],
        body,
    )
}

fn base_lines() -> Vec<&'static str> {
    vec![
        "MESSAGE sip:lobby@conference.localhost SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1",
        "From: <sip:alice@localhost>;tag=a",
        "To: <sip:lobby@conference.localhost>",
        "Call-ID: c1",
        "CSeq: 1 MESSAGE",
        "Content-Length: 2",
    ]
}

fn with_line(index: usize, replacement: Option<&'static str>) -> Vec<u8> {
    let mut lines = base_lines();
    match replacement {
        Some(line) => lines[index] = line,
        None => {
            lines.remove(index);
        }
    }
    crlf(&lines, "hi")
}

#[test]
fn response_to_copies_and_tags() {
    let mut request = parse(&linphone_message("hi"), MAX).expect("should succeed");
    let source: SocketAddr = "203.0.113.9:61000".parse().expect("should succeed");
    request.stamp_source(source);
    let response = response_to(&request, 200, "OK", Some("srvtag"))
        .with_header("Server", "palaver")
        .to_bytes();
    let r = parse(&response, MAX).expect("should succeed");
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.to().tag(), Some("srvtag"));
    assert_eq!(r.to().uri.user.as_deref(), Some("lobby"));
    assert_eq!(r.from().tag(), Some("bWHUcKk3~"));
    assert_eq!(r.call_id(), "gw2yJHC6Tr");
    assert_eq!(r.cseq(), request.cseq());
    assert_eq!(r.top_via().received(), Some("203.0.113.9"));
    assert_eq!(r.top_via().rport(), Some(61000));
    assert_eq!(r.top_via().branch(), Some("z9hG4bK.r~dQr5iRy"));
    assert_eq!(r.header("Server"), Some("palaver"));
    assert_eq!(r.header("Content-Length"), Some("0"));

    // An existing To tag is kept; 100 Trying gets none; a body gets its type and length.
    let tagged = parse(
        &with_line(3, Some("To: <sip:lobby@conference.localhost>;tag=old")),
        MAX,
    )
    .expect("should succeed");
    let r = parse(
        &response_to(&tagged, 486, "Busy", Some("new")).to_bytes(),
        MAX,
    )
    .expect("should succeed");
    assert_eq!(r.to().tag(), Some("old"));
    assert!(parse(&with_line(3, None), MAX).is_err());
    let request = parse(&with_line(6, Some("Content-Length: 2")), MAX).expect("should succeed");
    let trying = parse(
        &response_to(&request, 100, "Trying", Some("t")).to_bytes(),
        MAX,
    )
    .expect("should succeed");
    assert_eq!(trying.to().tag(), None);
    let with_body = response_to(&request, 403, "Forbidden", Some("t"))
        .with_body("text/plain;charset=UTF-8", "no \u{e9}")
        .to_bytes();
    let r = parse(&with_body, MAX).expect("should succeed");
    assert_eq!(r.body(), "no \u{e9}".as_bytes());
    assert_eq!(
        r.content_type().expect("should succeed").charset(),
        Some("UTF-8")
    );
}

#[test]
fn subscribe_response_copies_record_route() {
    let raw = crlf(
        &[
            "SUBSCRIBE sip:lobby@conference.localhost SIP/2.0",
            "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bKs1",
            "Record-Route: <sip:proxy1.example.com;lr>",
            "Record-Route: <sip:proxy2.example.com;lr>",
            "From: <sip:alice@localhost>;tag=a",
            "To: <sip:lobby@conference.localhost>",
            "Call-ID: s1",
            "CSeq: 1 SUBSCRIBE",
            "Event: conference",
            "Expires: 3600",
            "Contact: <sip:alice@10.0.0.1:5060;transport=tcp>",
            "Content-Length: 0",
        ],
        "",
    );
    let request = parse(&raw, MAX).expect("should succeed");
    let ok = parse(&response_to(&request, 200, "OK", Some("x")).to_bytes(), MAX)
        .expect("should succeed");
    assert_eq!(ok.header_values("Record-Route").count(), 2);
    let rejected = parse(
        &response_to(&request, 489, "Bad Event", Some("x")).to_bytes(),
        MAX,
    )
    .expect("should succeed");
    assert_eq!(rejected.header_values("Record-Route").count(), 0);
}

#[test]
fn request_builder_round_trips() {
    let out = RequestBuilder::message("sip:alice@192.168.1.10:5060;transport=udp")
        .from(
            "sip:lobby@conference.localhost",
            Some("lobby \"main\""),
            "rt1",
        )
        .to("sip:alice@localhost", None, None)
        .via("UDP", "192.0.2.1:5060")
        .cseq(7)
        .contact("sip:lobby@192.0.2.1:5060")
        .header("X-Palaver-Occupant", "sip:bob@localhost\r\nVia: injected")
        .header("Content-Length", "999")
        .body("text/plain;charset=UTF-8", "bob: h\u{e9}llo")
        .build()
        .expect("should succeed");
    assert!(out.branch.starts_with("z9hG4bK"));
    let m = parse(&out.bytes, MAX).expect("should succeed");
    assert_eq!(m.method(), Some(Method::Message));
    assert_eq!(
        m.request_uri()
            .expect("should succeed")
            .transport()
            .as_deref(),
        Some("udp")
    );
    assert_eq!(m.from().display_name.as_deref(), Some("lobby \"main\""));
    assert_eq!(m.from().tag(), Some("rt1"));
    assert_eq!(m.to().tag(), None);
    assert_eq!(m.call_id(), out.call_id);
    assert_eq!((m.cseq().seq, m.cseq().method), (7, Method::Message));
    assert_eq!(m.vias().len(), 1);
    assert_eq!(m.branch(), Some(out.branch.as_str()));
    assert!(m.top_via().rport_requested());
    assert_eq!(m.max_forwards(), Some(70));
    assert_eq!(m.contact().expect("should succeed").uri.host, "192.0.2.1");
    assert_eq!(
        m.header("X-Palaver-Occupant"),
        Some("sip:bob@localhost  Via: injected")
    );
    assert_eq!(m.body(), "bob: h\u{e9}llo".as_bytes());

    let notify = RequestBuilder::notify("sip:alice@10.0.0.1:5060;transport=tcp")
        .from("sip:lobby@conference.localhost", None, "r")
        .to("sip:alice@localhost", None, Some("a"))
        .call_id("s1")
        .cseq(2)
        .via("TCP", "[2001:db8::1]:5060")
        .header("Event", "conference")
        .header("Subscription-State", "active;expires=3000")
        .body("application/conference-info+xml", "<conference-info/>")
        .build()
        .expect("should succeed");
    let m: SipMessage = parse(&notify.bytes, MAX).expect("should succeed");
    assert_eq!(m.method(), Some(Method::Notify));
    assert_eq!(m.to().tag(), Some("a"));
    assert_eq!(m.top_via().host, "[2001:db8::1]");
    assert_eq!(
        m.subscription_state().expect("should succeed").expires(),
        Some(3000)
    );
}

#[test]
fn stateless_answers() {
    // A broken CSeq makes parse fail, but the other headers can be scraped.
    let raw = with_line(5, Some("CSeq: one MESSAGE"));
    let err = parse(&raw, MAX).expect_err("should fail");
    assert_eq!(err.status_code(), 400);
    let answer = bad_request_response(&raw).expect("should succeed");
    let r = parse(&answer, MAX).expect_err("should fail"); // echoes the broken CSeq, so it is itself bad
    assert_eq!(r.status_code(), 400);
    let text = String::from_utf8(answer.clone()).expect("should succeed");
    assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"));
    assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"));
    assert!(text.contains("To: <sip:lobby@conference.localhost>;tag="));
    assert_eq!(
        bad_request_response(&raw),
        Some(answer),
        "tag is deterministic"
    );

    let garbled = with_line(2, Some("From: <sip:alice@localhost;tag=a"));
    let r = parse(
        &bad_request_response(&garbled).expect("should succeed"),
        MAX,
    );
    assert!(r.is_err(), "the echoed From is as broken as the request's");

    let unknown = with_line(0, Some("FROB sip:lobby@conference.localhost SIP/2.0"));
    let err = parse(&unknown, MAX).expect_err("should fail");
    assert_eq!(err, SipError::UnknownMethod("FROB".into()));
    let answer = error_response(&unknown, &err, "REGISTER, MESSAGE, SUBSCRIBE, OPTIONS")
        .expect("should succeed");
    let r = parse(&answer, MAX).expect("should succeed");
    assert_eq!(r.status(), Some(405));
    assert_eq!(
        r.allow(),
        vec!["REGISTER", "MESSAGE", "SUBSCRIBE", "OPTIONS"]
    );
    let text = String::from_utf8(answer).expect("should succeed");
    assert!(text.starts_with("SIP/2.0 405 Method Not Allowed\r\n"));
    assert!(text.contains("Allow: REGISTER, MESSAGE, SUBSCRIBE, OPTIONS\r\n"));

    let too_big = [with_line(6, Some("Content-Length: 2")), vec![b'x'; 100]].concat();
    let err = parse(&too_big, 64).expect_err("should fail");
    let answer = parse(
        &error_response(&too_big, &err, "").expect("should succeed"),
        MAX,
    )
    .expect("should succeed");
    assert_eq!(
        (answer.status(), answer.reason()),
        (Some(513), Some("Message Too Large"))
    );
    assert!(answer.to().tag().is_some());

    // Never answered: responses, ACKs, and requests missing one of the five headers.
    let response =
        b"SIP/2.0 200 OK\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\r\n";
    assert_eq!(bad_request_response(response), None);
    let ack = with_line(0, Some("ACK sip:x@y SIP/2.0"));
    assert_eq!(bad_request_response(&ack), None);
    let ack_cseq = with_line(5, Some("CSeq: 1 ACK"));
    assert_eq!(bad_request_response(&ack_cseq), None);
    for missing in 1..=5 {
        assert_eq!(
            bad_request_response(&with_line(missing, None)),
            None,
            "line {missing}"
        );
    }
    assert_eq!(bad_request_response(b""), None);
    assert_eq!(bad_request_response(b"\x00\x01\x02"), None);
}

/// Found by fuzzing: a non-ASCII control character (U+0093) in a To URI survived parsing, then
/// the response writer replaced it with a space and its own answer no longer parsed. Writers
/// now only touch what the parser refuses (ASCII controls).
#[test]
fn parsed_values_survive_being_copied() {
    let raw = with_line(3, Some("To: <wip:ali\u{93}ocalhost>"));
    let request = parse(&raw, MAX).expect("parses");
    let answer = response_to(&request, 200, "OK", Some("t")).to_bytes();
    let response = parse(&answer, MAX).expect("the answer parses");
    assert_eq!(response.to().uri, request.to().uri);
}
