//! Property tests for the SIP codec: nothing panics on arbitrary bytes or on mutations of
//! real messages (parser, stateless answers, framer, digest verifier); whatever parses can be
//! answered and the answer parses back; URIs, name-addrs and Vias print and re-parse to the
//! same value; framing is independent of read boundaries; built requests always parse.

use palaver_dialects::sip::digest::DigestServer;
use palaver_dialects::sip::{
    bad_request_response, error_response, parse, response_to, FrameEvent, NameAddr, RequestBuilder,
    SipUri, StreamFramer, Via,
};
use proptest::prelude::*;

const MAX: usize = 8192;

fn corpus() -> Vec<Vec<u8>> {
    [
        "REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK6b1a;rport\r\n\
         Contact: <sip:alice-0x55d1@192.168.1.10:5060>;expires=3600;+sip.instance=\"<urn:uuid:1d3b>\"\r\n\
         Max-Forwards: 70\r\nTo: <sip:alice@localhost>\r\nFrom: <sip:alice@localhost>;tag=2a4f\r\n\
         Call-ID: 8f1c\r\nCSeq: 37201 REGISTER\r\nAuthorization: Digest username=\"alice\", realm=\"localhost\", \
         nonce=\"n\", uri=\"sip:localhost\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\"\r\n\
         Content-Length: 0\r\n\r\n",
        "MESSAGE sip:lobby@conference.localhost SIP/2.0\r\nVia: SIP/2.0/TCP 192.168.1.20:49734;alias;branch=z9hG4bK.r~dQ;rport\r\n\
         From: \"Bob \\\"B\\\"\" <sip:bob@localhost>;tag=bW~\r\nTo: sip:lobby@conference.localhost\r\nCSeq: 20 MESSAGE\r\n\
         Call-ID: gw2y\r\nMax-Forwards: 70\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 9\r\n\r\n#join bob",
        "SIP/2.0 401 Unauthorized\r\nv: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;received=192.0.2.1;rport=5060\r\n\
         f: <sip:alice@localhost>;tag=1\r\nt: <sip:alice@localhost>;tag=2\r\ni: x@y\r\nCSeq: 1 REGISTER\r\n\
         WWW-Authenticate: Digest realm=\"localhost\", nonce=\"n\", qop=\"auth\"\r\nl: 0\r\n\r\n",
        "NOTIFY sip:bob@10.0.0.1:5070;transport=tcp SIP/2.0\nVia: SIP/2.0/TCP proxy;branch=z9hG4bKp, SIP/2.0/UDP\n 10.0.0.1;branch=z9hG4bKc\n\
         From: <sip:lobby@conference.localhost>;tag=r\nTo: <sip:bob@localhost>;tag=b\nCall-ID: n1\nCSeq: 9 NOTIFY\n\
         Event: conference;id=1\nSubscription-State: active;expires=60\nContact: *\nContent-Type: application/conference-info+xml\n\
         Content-Length: 4\n\n<x/>",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn check_message(bytes: &[u8]) {
    let _ = bad_request_response(bytes);
    match parse(bytes, MAX) {
        Ok(m) => {
            if m.is_request() {
                let answer = response_to(&m, 200, "OK", Some("t1")).to_bytes();
                let r = parse(&answer, MAX).expect("the answer to a parsed request parses");
                assert_eq!(r.call_id(), m.call_id());
                assert_eq!(r.cseq(), m.cseq());
                assert_eq!(r.vias().len(), m.vias().len());
                assert_eq!(r.from(), m.from());
            }
        }
        Err(e) => {
            let _ = error_response(bytes, &e, "MESSAGE");
        }
    }
}

/// A mutation: (position, kind, byte).
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    const SPECIAL: &[u8] = b"\r\n:;,<>\"@ =/.[]?\\%\t*";
    for &(pos, kind, byte) in edits {
        let pos = pos % (bytes.len() + 1);
        match kind % 5 {
            0 if pos < bytes.len() => bytes[pos] = byte,
            1 if pos < bytes.len() => {
                bytes.remove(pos);
            }
            2 => bytes.insert(pos, SPECIAL[byte as usize % SPECIAL.len()]),
            3 => bytes.truncate(pos),
            _ => {
                let end = (pos + byte as usize % 16).min(bytes.len());
                let dup = bytes[pos..end].to_vec();
                bytes.splice(pos..pos, dup);
            }
        }
    }
    bytes
}

/// Header parameters with token and quoted values and optional white space.
const PARAMS: &str =
    "( ?; ?[a-z0-9+.-]{1,6}( ?= ?([a-zA-Z0-9.:+~-]{1,8}|\"[a-z <>:;,@]{0,8}\"))?){0,3}";

/// Mostly valid SIP URIs.
fn uri_strategy() -> impl Strategy<Value = String> {
    "sips?:([a-zA-Z0-9.%+-]{1,8}(:[a-z0-9]{0,5})?@)?([a-z0-9.-]{1,12}|\\[::1\\]|\\[2001:db8::[0-9a-f]{1,4}\\])\
     (:[0-9]{1,5})?(;[a-z0-9+.-]{1,6}(=[a-z0-9.+-]{1,6})?){0,3}(\\?[a-z]=[a-z0-9]{1,4})?"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_message(&bytes);
        let mut framer = StreamFramer::new(512);
        framer.feed(&bytes);
        while let Ok(Some(_)) = framer.next_event() {}
    }

    #[test]
    fn mutated_messages_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let bytes = mutate(corpus()[which].clone(), &edits);
        check_message(&bytes);
        let mut framer = StreamFramer::new(MAX);
        framer.feed(&bytes);
        while let Ok(Some(FrameEvent::Message(m))) = framer.next_event() {
            check_message(&m);
        }
    }

    #[test]
    fn framing_ignores_read_boundaries(cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let mut stream = b"\r\n\r\n".to_vec();
        for m in corpus() {
            stream.extend_from_slice(&m);
            stream.extend_from_slice(b"\r\n");
        }
        let mut whole = StreamFramer::new(MAX);
        whole.feed(&stream);
        let mut expected = Vec::new();
        while let Some(e) = whole.next_event().expect("should succeed") {
            expected.push(e);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut framer = StreamFramer::new(MAX);
        let mut got = Vec::new();
        let mut last = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            framer.feed(&stream[last..cut]);
            last = cut;
            while let Some(e) = framer.next_event().expect("should succeed") {
                got.push(e);
            }
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn uris_round_trip(s in prop_oneof![
        "(sips?|tel):[a-zA-Z0-9.%;=@:\\[\\]?&+_-]{0,40}",
        uri_strategy(),
    ]) {
        if let Ok(uri) = SipUri::parse(&s) {
            let printed = uri.to_string();
            prop_assert_eq!(SipUri::parse(&printed).ok(), Some(uri), "{}", printed);
        }
    }

    #[test]
    fn name_addrs_round_trip(
        display in "(|[a-zA-Z0-9 ]{1,10} |\"([a-zA-Z0-9 <>,;@]|\\\\[\"\\\\])*\" ?)",
        uri in uri_strategy(),
        angle in any::<bool>(),
        params in PARAMS,
    ) {
        let s = if angle || !display.is_empty() {
            format!("{display}<{uri}>{params}")
        } else {
            format!("{uri}{params}")
        };
        let addr = NameAddr::parse(&s);
        // Any valid URI makes a valid name-addr; without brackets, URI parameters become
        // header parameters and URI headers (`?`) are not allowed.
        let uri_ok = SipUri::parse(&uri).is_ok();
        let bare_ok = angle || !uri.contains('?');
        prop_assert!(addr.is_ok() || !uri_ok || !bare_ok, "{} -> {:?}", s, addr);
        if let Ok(addr) = addr {
            let printed = addr.to_string();
            prop_assert_eq!(NameAddr::parse(&printed).ok(), Some(addr), "{}", printed);
        }
    }

    #[test]
    fn vias_round_trip(
        s in "SIP ?/ ?2\\.0 ?/ ?(UDP|TCP|tls|WS)[ \t]{1,2}([a-z0-9.-]{1,12}|\\[::1\\]|[0-9]{1,3}(\\.[0-9]{1,3}){3})(:[0-9]{1,5})?",
        params in PARAMS,
    ) {
        let s = format!("{s}{params}");
        if let Ok(via) = Via::parse(&s) {
            let printed = via.to_string();
            prop_assert_eq!(Via::parse(&printed).ok(), Some(via), "{}", printed);
        }
    }

    #[test]
    fn built_requests_parse(
        display in "\\PC{0,20}",
        value in "\\PC{0,40}",
        body in proptest::collection::vec(any::<u8>(), 0..200),
        seq in any::<u32>(),
    ) {
        let out = RequestBuilder::message("sip:alice@192.0.2.1:5060")
            .from("sip:lobby@conference.localhost", Some(&display), "t")
            .to("sip:alice@localhost", None, None)
            .via("UDP", "192.0.2.9:5060")
            .cseq(seq)
            .header("X-Palaver-Nick", &value)
            .body("text/plain;charset=UTF-8", body.clone())
            .build()
            .expect("should succeed");
        let m = parse(&out.bytes, 64 * 1024).expect("should succeed");
        prop_assert_eq!(m.body(), &body[..]);
        prop_assert_eq!(m.cseq().seq, seq);
        prop_assert_eq!(m.from().display_name.as_deref(), Some(display.as_str()));
        prop_assert_eq!(m.header("X-Palaver-Nick").unwrap_or_default(), value.trim());
    }

    #[test]
    fn digest_verify_never_panics(header in "\\PC{0,200}", method in "[A-Z]{0,8}") {
        let mut server = DigestServer::new([9; 32], "localhost", 60);
        let _ = server.verify(&method, Some(&header), 1, |_, _| Some("00".repeat(16)));
        let with_prefix = format!("Digest {header}");
        let _ = server.verify(&method, Some(&with_prefix), 1, |_, _| Some("00".repeat(16)));
    }
}
