//! SIP message parsing against real-world shapes: a baresip REGISTER (plain and
//! with digest credentials), Linphone MESSAGEs (`text/plain;charset=UTF-8`, bare To URI,
//! `alias` Via flag), a `message/cpim` body, 200/401 responses, compact and folded headers,
//! and malformed input with the status each error maps to (writing is in `sip_build.rs`).

use palaver_dialects::sip::{parse, Method};

const MAX: usize = 64 * 1024;

fn crlf(lines: &[&str], body: &str) -> Vec<u8> {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n\r\n");
    s.push_str(body);
    s.into_bytes()
}

fn baresip_register() -> Vec<u8> {
    crlf(
        &[
            "REGISTER sip:localhost SIP/2.0",
            "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK6b1ae8b0d0a1b2c3;rport",
            "Contact: <sip:alice-0x55d1c8a2f0@192.168.1.10:5060>;expires=3600;\
             +sip.instance=\"<urn:uuid:1d3bc47a-b3a0-4d06-a1a6-0a6c2e1f3b11>\";reg-id=1",
            "Max-Forwards: 70",
            "To: <sip:alice@localhost>",
            "From: <sip:alice@localhost>;tag=2a4f1b3c8e7d9f01",
            "Call-ID: 8f1c2b3d4e5f6a7b",
            "CSeq: 37201 REGISTER",
            "User-Agent: baresip v3.10.1 (x86_64/Linux)",
            "Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER",
            "Supported: replaces,outbound,norefersub",
            "Content-Length: 0",
        ],
        "",
    )
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

#[test]
fn baresip_register_parses() {
    let m = parse(&baresip_register(), MAX).expect("should succeed");
    assert!(m.is_request());
    assert_eq!(m.method(), Some(Method::Register));
    let ruri = m.request_uri().expect("should succeed");
    assert_eq!(
        (ruri.user.as_deref(), ruri.host.as_str()),
        (None, "localhost")
    );
    assert_eq!(m.from().uri.user.as_deref(), Some("alice"));
    assert_eq!(m.from().tag(), Some("2a4f1b3c8e7d9f01"));
    assert_eq!(m.to().tag(), None);
    assert_eq!(m.to().uri.aor(), "sip:alice@localhost");
    assert_eq!(m.call_id(), "8f1c2b3d4e5f6a7b");
    assert_eq!((m.cseq().seq, m.cseq().method), (37201, Method::Register));
    assert_eq!(m.branch(), Some("z9hG4bK6b1ae8b0d0a1b2c3"));
    assert!(m.top_via().rport_requested());
    assert_eq!(m.top_via().sent_by(), "192.168.1.10:5060");
    assert_eq!(m.max_forwards(), Some(70));
    let contact = m.contact().expect("should succeed");
    assert_eq!(contact.uri.port, Some(5060));
    assert_eq!(contact.expires(), Some(3600));
    assert_eq!(
        contact.param("+sip.instance"),
        Some("<urn:uuid:1d3bc47a-b3a0-4d06-a1a6-0a6c2e1f3b11>")
    );
    assert_eq!(m.expires(), None);
    assert!(m.allow().contains(&"MESSAGE"));
    assert_eq!(m.allow().len(), 11);
    assert_eq!(
        m.header("user-agent"),
        Some("baresip v3.10.1 (x86_64/Linux)")
    );
    assert_eq!(m.body(), b"");
    assert!(m.authorization().is_none());
    // rsip's view agrees on the basics.
    match m.as_rsip() {
        rsip::SipMessage::Request(r) => {
            assert_eq!(r.method, rsip::Method::Register);
            assert_eq!(r.uri.to_string(), "sip:localhost");
            assert_eq!(r.headers.iter().count(), 11);
        }
        other => panic!("not a request: {other:?}"),
    }
}

#[test]
fn register_with_credentials_and_wildcard() {
    let with_auth = String::from_utf8(baresip_register())
        .expect("should succeed")
        .replace(
            "Content-Length: 0",
            "Authorization: Digest username=\"alice\",realm=\"localhost\",nonce=\"abc\",\
         uri=\"sip:localhost\",response=\"0123\",algorithm=SHA-256,qop=auth,nc=00000001,\
         cnonce=\"x\"\r\nExpires: 600\r\nContent-Length: 0",
        );
    let m = parse(with_auth.as_bytes(), MAX).expect("should succeed");
    assert!(m
        .authorization()
        .expect("should succeed")
        .starts_with("Digest username=\"alice\""));
    assert_eq!(m.expires(), Some(600));

    let unregister = crlf(
        &[
            "REGISTER sip:localhost SIP/2.0",
            "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKa",
            "To: <sip:alice@localhost>",
            "From: <sip:alice@localhost>;tag=1",
            "Call-ID: c",
            "CSeq: 2 REGISTER",
            "Contact: *",
            "Expires: 0",
            "Content-Length: 0",
        ],
        "",
    );
    let m = parse(&unregister, MAX).expect("should succeed");
    assert!(m.is_contact_wildcard());
    assert!(m.contacts().is_empty());
    assert_eq!(m.expires(), Some(0));
}

#[test]
fn linphone_message_parses() {
    let body = "#join bob \u{263A}";
    let m = parse(&linphone_message(body), MAX).expect("should succeed");
    assert_eq!(m.method(), Some(Method::Message));
    let ruri = m.request_uri().expect("should succeed");
    assert_eq!(ruri.user.as_deref(), Some("lobby"));
    assert_eq!(ruri.host, "conference.localhost");
    assert_eq!(m.to().uri.user.as_deref(), Some("lobby"));
    assert_eq!(m.from().tag(), Some("bWHUcKk3~"));
    let ct = m.content_type().expect("should succeed");
    assert!(ct.is("text/plain"));
    assert_eq!(ct.charset(), Some("UTF-8"));
    assert_eq!(m.body(), body.as_bytes());
    let via = m.top_via();
    assert_eq!(via.transport, "TCP");
    assert!(via.params.has("alias"));
    assert_eq!(via.branch(), Some("z9hG4bK.r~dQr5iRy"));
}

#[test]
fn cpim_message_parses() {
    let cpim = "From: <sip:bob@localhost>\r\nTo: <sip:lobby@conference.localhost>\r\n\
                DateTime: 2025-11-04T10:00:00Z\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
                imdn.Message-ID: 8jXmsrN1\r\nimdn.Disposition-Notification: positive-delivery\r\n\r\n\
                Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 5\r\n\r\nhello";
    let raw = String::from_utf8(linphone_message(cpim))
        .expect("should succeed")
        .replacen(
            "Content-Type: text/plain;charset=UTF-8\r\nContent-Length",
            "Content-Type: message/cpim\r\nContent-Length",
            1,
        );
    let m = parse(raw.as_bytes(), MAX).expect("should succeed");
    assert!(m.content_type().expect("should succeed").is("message/cpim"));
    assert_eq!(m.body(), cpim.as_bytes());
}

#[test]
fn responses_parse() {
    let ok = crlf(
        &[
            "SIP/2.0 200 OK",
            "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKnashds7;received=192.0.2.4;rport=5060",
            "From: <sip:lobby@conference.localhost>;tag=456248",
            "To: <sip:alice@localhost>;tag=2493k59kd",
            "Call-ID: 843817637684230@998sdasdh09",
            "CSeq: 1826 MESSAGE",
            "Content-Length: 0",
        ],
        "",
    );
    let m = parse(&ok, MAX).expect("should succeed");
    assert!(!m.is_request());
    assert_eq!((m.status(), m.reason()), (Some(200), Some("OK")));
    assert_eq!(m.method(), None);
    assert_eq!(m.cseq().method, Method::Message);
    assert_eq!(m.top_via().received(), Some("192.0.2.4"));
    assert_eq!(m.top_via().rport(), Some(5060));

    let unauthorized = crlf(
        &[
            "SIP/2.0 401 Unauthorized",
            "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK6b1a;rport=5060;received=192.168.1.10",
            "From: <sip:alice@localhost>;tag=2a4f",
            "To: <sip:alice@localhost>;tag=srv1",
            "Call-ID: 8f1c",
            "CSeq: 37201 REGISTER",
            "WWW-Authenticate: Digest realm=\"localhost\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"",
            "WWW-Authenticate: Digest realm=\"localhost\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"",
            "Content-Length: 0",
        ],
        "",
    );
    let m = parse(&unauthorized, MAX).expect("should succeed");
    assert_eq!(m.status(), Some(401));
    assert!(m
        .www_authenticate()
        .expect("should succeed")
        .contains("SHA-256"));
    assert_eq!(m.www_authenticates().count(), 2);

    let odd = crlf(
        &[
            "SIP/2.0 299",
            "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
            "From: <sip:a@b>;tag=1",
            "To: <sip:a@b>",
            "Call-ID: c",
            "CSeq: 1 NOTIFY",
        ],
        "",
    );
    let m = parse(&odd, MAX).expect("should succeed");
    assert_eq!((m.status(), m.reason()), (Some(299), Some("")));
}

#[test]
fn compact_folded_multi_value_headers() {
    let raw = b"\r\nNOTIFY sip:bob@[2001:db8::2]:5070;transport=tcp SIP/2.0\n\
        v: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1 , SIP/2.0/UDP\n  10.0.0.1:5060;branch=z9hG4bKc1\n\
        f: \"Lobby \\\"Main\\\"\" <sip:lobby@conference.localhost>;tag=r1\n\
        t: <sip:bob@localhost>;tag=b1\n\
        i: n1@h\n\
        CSeq: 9 NOTIFY\n\
        o: conference;id=42\n\
        Subscription-State: active;expires=3599\n\
        m: <sip:lobby@10.0.0.9>, \"B\" <sip:b@10.0.0.10>;q=0.5\n\
        c: application/conference-info+xml\n\
        l: 4\n\n<x/>trailing-bytes-dropped";
    let m = parse(raw, MAX).expect("should succeed");
    let ruri = m.request_uri().expect("should succeed");
    assert_eq!(
        (ruri.host.as_str(), ruri.port),
        ("[2001:db8::2]", Some(5070))
    );
    assert_eq!(m.vias().len(), 2);
    assert_eq!(m.vias()[1].sent_by(), "10.0.0.1:5060");
    assert_eq!(m.from().display_name.as_deref(), Some("Lobby \"Main\""));
    assert_eq!(m.call_id(), "n1@h");
    assert_eq!(m.event().expect("should succeed").package, "conference");
    assert_eq!(m.event().expect("should succeed").id(), Some("42"));
    let state = m.subscription_state().expect("should succeed");
    assert_eq!(
        (state.state.as_str(), state.expires()),
        ("active", Some(3599))
    );
    assert_eq!(m.contacts().len(), 2);
    assert_eq!(m.contacts()[1].param("q"), Some("0.5"));
    assert_eq!(m.body(), b"<x/>");
    assert_eq!(m.header("Event"), Some("conference;id=42"));
    assert_eq!(m.header("o"), Some("conference;id=42"));
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
fn malformed_messages_map_to_statuses() {
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            with_line(0, Some("MESSAGE sip:lobby@conference.localhost SIP/3.0")),
            505,
        ),
        (
            with_line(0, Some("PUBLISHX sip:lobby@conference.localhost SIP/2.0")),
            405,
        ),
        (
            with_line(0, Some("message sip:lobby@conference.localhost SIP/2.0")),
            405,
        ),
        (
            with_line(0, Some("MESSAGE  sip:lobby@conference.localhost SIP/2.0")),
            400,
        ),
        (
            with_line(0, Some("MESSAGE sip:lobby@conference.localhost")),
            400,
        ),
        (with_line(0, Some("MESSAGE <sip:x@y> SIP/2.0")), 400),
        (
            with_line(0, Some("MESSAGE sip:lobby@conference.localhost HTTP/1.1")),
            400,
        ),
        (with_line(0, Some("SIP/2.0 2000 OK")), 400),
        (with_line(0, Some("SIP/2.0 099 Low")), 400),
        (with_line(1, None), 400),
        (with_line(1, Some("Via: SIP/2.0/UDP")), 400),
        (with_line(1, Some("Via: garbage")), 400),
        (with_line(2, None), 400),
        (with_line(2, Some("From: <sip:alice@localhost")), 400),
        (with_line(3, Some("To: \"unterminated <sip:a@b>")), 400),
        (with_line(4, None), 400),
        (with_line(4, Some("Call-ID: a b")), 400),
        (with_line(5, None), 400),
        (with_line(5, Some("CSeq: 1 NOTIFY")), 400),
        (with_line(5, Some("CSeq: x MESSAGE")), 400),
        (with_line(6, Some("Content-Length: 3")), 400),
        (with_line(6, Some("Content-Length: -2")), 400),
        (with_line(6, Some("Content-Length: 2, 2")), 400),
        (with_line(6, Some("No colon here")), 400),
        (
            with_line(6, Some(" leading-space: but first after CSeq is fine?")),
            400,
        ),
        (with_line(6, Some("Max-Forwards: seventy")), 400),
        (with_line(6, Some("Expires: soon")), 400),
        (with_line(6, Some("Content-Type: text")), 400),
        (with_line(6, Some("Contact: *, <sip:a@b>")), 400),
        (with_line(6, Some("Bad\u{7f}: x")), 400),
        (
            b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n".to_vec(),
            400,
        ),
        (b"\r\n\r\n".to_vec(), 400),
        (b"\xff\xfe\r\n\r\n".to_vec(), 400),
        (vec![b'A'; MAX + 1], 513),
    ];
    for (raw, status) in cases {
        let err = parse(&raw, MAX).expect_err(&String::from_utf8_lossy(&raw));
        assert_eq!(
            err.status_code(),
            status,
            "{err:?} for {:?}",
            String::from_utf8_lossy(&raw)
        );
    }
    // Two Content-Length headers are refused even when the body would fit one of them.
    let dup_length = crlf(
        &[
            &base_lines()[..6],
            &["Content-Length: 2", "Content-Length: 3"],
        ]
        .concat(),
        "hi!",
    );
    assert!(parse(&dup_length, MAX).is_err());
}

#[test]
fn keepalives_and_leading_crlf() {
    use palaver_dialects::sip::is_keepalive;
    assert!(is_keepalive(b"\r\n\r\n"));
    assert!(is_keepalive(b"\r\n"));
    assert!(!is_keepalive(b""));
    assert!(!is_keepalive(b"\r\nX"));
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let mut raw = b"\r\n\r\n".to_vec();
    raw.extend_from_slice(&baresip_register());
    assert_eq!(
        parse(&raw, MAX).expect("parses").call_id(),
        "8f1c2b3d4e5f6a7b"
    );
}
