//! Unit tests for the stream reader: a client-like stream, each error kind and its stream
//! error condition, limits, reset and incremental feeding.

use super::*;
use crate::xmpp::element::Node;

const HEADER: &str = "<?xml version='1.0'?><stream:stream to='example.com' \
     xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' \
     xml:lang='en'>";

/// Feeds everything at once, then drains events up to the first error.
fn run_with(limits: Limits, input: &[u8]) -> (Vec<StreamEvent>, Option<StreamError>) {
    let mut r = StreamReader::new(limits);
    let mut events = Vec::new();
    if let Err(e) = r.feed(input) {
        return (events, Some(e));
    }
    loop {
        match r.next_event() {
            Ok(Some(ev)) => events.push(ev),
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e)),
        }
    }
}

fn run(input: &str) -> (Vec<StreamEvent>, Option<StreamError>) {
    run_with(Limits::default(), input.as_bytes())
}

fn error_of(input: &str) -> StreamError {
    match run(input).1 {
        Some(e) => e,
        None => panic!("no error for {input:?}"),
    }
}

fn stanza(ev: &StreamEvent) -> &Element {
    match ev {
        StreamEvent::Stanza(e) => e,
        other => panic!("not a stanza: {other:?}"),
    }
}

#[test]
fn client_like_stream() {
    let input = format!(
        "{HEADER}\n  <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\
         <required/></starttls></stream:features> \
         <iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <resource>phone</resource></bind></iq>\n\
         <message to='room@muc.example.com' type='groupchat' id='m1' xml:lang='fr'>\
         <body>caf\u{e9} &lt;3 &amp; &#x1F600;\r\nline2</body>\
         <x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member'/></x>\
         </message>\t</stream:stream>"
    );
    let (events, err) = run(&input);
    assert_eq!(err, None);
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(
        events[0],
        StreamEvent::Open {
            attrs: vec![
                ("to".into(), "example.com".into()),
                ("version".into(), "1.0".into()),
                ("xml:lang".into(), "en".into()),
            ],
            default_ns: "jabber:client".into(),
        }
    );
    let features = stanza(&events[1]);
    assert!(features.is("features", ns::STREAM));
    let starttls = features.get_child("starttls", ns::TLS);
    assert!(starttls.is_some_and(|s| s.get_child("required", ns::TLS).is_some()));
    let iq = stanza(&events[2]);
    assert!(iq.is("iq", ns::CLIENT));
    assert_eq!(
        iq.get_child("bind", ns::BIND)
            .and_then(|b| b.child_text("resource", ns::BIND)),
        Some("phone".into())
    );
    let msg = stanza(&events[3]);
    assert!(msg.is("message", ns::CLIENT));
    assert_eq!(msg.attr("xml:lang"), Some("fr"));
    assert_eq!(
        msg.child_text("body", ns::CLIENT).as_deref(),
        Some("caf\u{e9} <3 & \u{1F600}\nline2")
    );
    let x = msg.get_child("x", ns::MUC_USER);
    assert!(x.is_some_and(|x| x.get_child("item", ns::MUC_USER).is_some()));
    assert_eq!(events[4], StreamEvent::Close);
    // Serialized inside the stream, the stanza carries no xmlns.
    let out = String::from_utf8(msg.to_bytes(ns::CLIENT)).unwrap_or_default();
    assert!(out.starts_with("<message to="), "{out}");
}

#[test]
fn one_byte_at_a_time() {
    let input = format!("{HEADER}<message><body>h\u{e9}llo \u{1F600}</body></message>");
    let mut r = StreamReader::new(Limits::default());
    let mut events = Vec::new();
    for b in input.as_bytes() {
        assert_eq!(r.feed(std::slice::from_ref(b)), Ok(()));
        while let Ok(Some(ev)) = r.next_event() {
            events.push(ev);
        }
    }
    assert_eq!(events.len(), 2);
    let body = stanza(&events[1]).child_text("body", ns::CLIENT);
    assert_eq!(body.as_deref(), Some("h\u{e9}llo \u{1F600}"));
    assert_eq!(r.buffered(), 0);
}

#[test]
fn whitespace_keepalives_are_ignored_and_not_kept() {
    let mut r = StreamReader::new(Limits::default());
    assert_eq!(r.feed(HEADER.as_bytes()), Ok(()));
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open { .. }))));
    for _ in 0..1000 {
        assert_eq!(r.feed(b" \n\t\r "), Ok(()));
        assert_eq!(r.next_event(), Ok(None));
    }
    assert_eq!(r.buffered(), 0);
    // Whitespace-only stream far beyond the stanza limit is fine.
    let spaces = vec![b' '; 300 * 1024];
    assert_eq!(r.feed(&spaces), Ok(()));
    assert_eq!(r.next_event(), Ok(None));
}

#[test]
fn text_is_preserved_verbatim() {
    let (events, err) = run(&format!(
        "{HEADER}<message><body>  a <![CDATA[<b>&amp;]]> c  </body> </message>"
    ));
    assert_eq!(err, None);
    let msg = stanza(&events[1]);
    assert_eq!(
        msg.child_text("body", ns::CLIENT).as_deref(),
        Some("  a <b>&amp; c  ")
    );
    assert!(matches!(&msg.children[1], Node::Text(t) if t == " "));
}

#[test]
fn reset_expects_a_fresh_header() {
    let mut r = StreamReader::new(Limits::default());
    assert_eq!(
        r.feed(
            format!("{HEADER}<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><injected/>")
                .as_bytes()
        ),
        Ok(())
    );
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open { .. }))));
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Stanza(_)))));
    r.reset();
    assert_eq!(r.buffered(), 0);
    assert_eq!(r.next_event(), Ok(None));
    assert_eq!(
        r.feed(HEADER.as_bytes()),
        Ok(()),
        "declaration allowed again"
    );
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open { .. }))));
    assert_eq!(r.next_event(), Ok(None));
}

#[test]
fn errors_and_conditions() {
    let cases: &[(&str, &str)] = &[
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><a><b></a></b>", "not-well-formed"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><a>&foo;</a>", "restricted-xml"),
        ("<!DOCTYPE x><stream:stream>", "restricted-xml"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><!ENTITY x 'y'>", "restricted-xml"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><!-- hi -->", "restricted-xml"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><?php x?>", "restricted-xml"),
        ("<?xml version='1.0'?><?xml version='1.0'?>", "restricted-xml"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>", "invalid-namespace"),
        ("<stream:stream xmlns='jabber:client'>", "invalid-namespace"),
        ("<stream xmlns='http://etherx.jabber.org/streams'>", "invalid-namespace"),
        ("<stream:stream xmlns='urn:other' xmlns:stream='http://etherx.jabber.org/streams'>", "invalid-namespace"),
        ("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", "invalid-namespace"),
        ("<message xmlns='jabber:client'/>", "bad-format"),
        ("hello", "bad-format"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>text", "bad-format"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><a>\u{1}</a>", "not-well-formed"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'></stream:strem>", "not-well-formed"),
        ("<?xml version='1.0' encoding='ISO-8859-1'?>", "unsupported-encoding"),
    ];
    for (input, condition) in cases {
        let e = error_of(input);
        assert_eq!(e.condition(), *condition, "{input}: {e}");
    }
    let utf8 = run_with(
        Limits::default(),
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><a>\xc3</a>",
    );
    assert_eq!(utf8.1, Some(StreamError::InvalidUtf8));
    assert_eq!(StreamError::DepthExceeded.condition(), "policy-violation");
    assert_eq!(
        StreamError::PolicyViolation(String::new()).condition(),
        "policy-violation"
    );
}

#[test]
fn poisoned_after_error_but_earlier_events_delivered() {
    let input = format!("{HEADER}<a/><!-- x --><b/>");
    let (events, err) = run(&input);
    assert_eq!(events.len(), 2);
    assert!(matches!(err, Some(StreamError::RestrictedXml(_))));
    let mut r = StreamReader::new(Limits::default());
    assert_eq!(r.feed(input.as_bytes()), Ok(()));
    while let Ok(Some(_)) = r.next_event() {}
    assert!(matches!(r.next_event(), Err(StreamError::RestrictedXml(_))));
    assert!(matches!(
        r.feed(b"<c/>"),
        Err(StreamError::RestrictedXml(_))
    ));
}

#[test]
fn oversized_stanza_is_refused_before_buffering_it_all() {
    let mut r = StreamReader::new(Limits::default());
    assert_eq!(r.feed(HEADER.as_bytes()), Ok(()));
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open { .. }))));
    let mut big = b"<message><body>".to_vec();
    big.resize(300 * 1024, b'a');
    assert!(matches!(r.feed(&big), Err(StreamError::PolicyViolation(_))));
    assert!(r.buffered() <= 256 * 1024 + 1, "buffered {}", r.buffered());
    assert!(r.buffered() >= 256 * 1024);
    assert!(matches!(
        r.next_event(),
        Err(StreamError::PolicyViolation(_))
    ));
    // A stanza of exactly the limit passes; one byte more does not, even when complete.
    let limits = Limits {
        max_stanza_bytes: 10,
        ..Limits::default()
    };
    let ok = format!("{HEADER}<a>123</a>");
    assert_eq!(run_with(limits.clone(), ok.as_bytes()).1, None);
    let too_big = format!("{HEADER}<a>1234</a>");
    assert!(matches!(
        run_with(limits, too_big.as_bytes()).1,
        Some(StreamError::PolicyViolation(_))
    ));
}

#[test]
fn oversized_header_is_refused() {
    let mut header = "<stream:stream xmlns='jabber:client' to='".to_string();
    header.push_str(&"x".repeat(5000));
    assert!(matches!(
        run(&header).1,
        Some(StreamError::PolicyViolation(_))
    ));
}

#[test]
fn depth_limit() {
    let nest = |n: usize| format!("{HEADER}{}{}", "<a>".repeat(n), "</a>".repeat(n));
    assert_eq!(run(&nest(32)).1, None);
    assert_eq!(run(&nest(33)).1, Some(StreamError::DepthExceeded));
    assert_eq!(run(&nest(40)).1, Some(StreamError::DepthExceeded));
    let empty_at_33 = format!("{HEADER}{}<b/>", "<a>".repeat(32));
    assert_eq!(run(&empty_at_33).1, Some(StreamError::DepthExceeded));
}

#[test]
fn attribute_limit_counts_namespace_declarations() {
    let decls: String = (0..65).map(|i| format!(" xmlns:p{i}='urn:{i}'")).collect();
    let (_, err) = run(&format!("{HEADER}<message{decls}/>"));
    assert!(
        matches!(err, Some(StreamError::PolicyViolation(_))),
        "{err:?}"
    );
    let decls: String = (0..64).map(|i| format!(" xmlns:p{i}='urn:{i}'")).collect();
    assert_eq!(run(&format!("{HEADER}<message{decls}/>")).1, None);
    let (_, err) = run(&format!(
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'{}>",
        (0..70).map(|i| format!(" a{i}='x'")).collect::<String>()
    ));
    assert!(
        matches!(err, Some(StreamError::PolicyViolation(_))),
        "{err:?}"
    );
}

#[test]
fn self_closed_header_opens_and_closes() {
    let (events, err) = run(
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>",
    );
    assert_eq!(err, None);
    assert!(matches!(
        events.as_slice(),
        [StreamEvent::Open { .. }, StreamEvent::Close]
    ));
}

#[test]
fn bytes_after_close_are_ignored() {
    let (events, err) = run(&format!("{HEADER}</stream:stream><garbage"));
    assert_eq!(err, None);
    assert_eq!(events.last(), Some(&StreamEvent::Close));
}

#[test]
fn other_prefix_and_server_namespace() {
    let (events, err) = run(
        "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server' \
         xmlns:db='jabber:server:dialback'><db:result to='a' from='b'>key</db:result>\
         <s:features/></s:stream>",
    );
    assert_eq!(err, None);
    assert_eq!(events.len(), 4);
    assert!(stanza(&events[1]).is("result", "jabber:server:dialback"));
    assert!(stanza(&events[2]).is("features", ns::STREAM));
}

#[test]
fn byte_at_a_time_feeding_of_a_large_stanza_is_linear() {
    let mut r = StreamReader::new(Limits::default());
    assert_eq!(r.feed(HEADER.as_bytes()), Ok(()));
    let mut input = b"<message><body>".to_vec();
    input.resize(200 * 1024, b'z');
    input.extend_from_slice(b"</body></message>");
    let start = std::time::Instant::now();
    for b in &input {
        assert_eq!(r.feed(std::slice::from_ref(b)), Ok(()));
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "quadratic feeding?"
    );
    assert!(matches!(r.next_event(), Ok(Some(StreamEvent::Open { .. }))));
    let body = r.next_event().ok().flatten();
    assert!(matches!(body, Some(StreamEvent::Stanza(ref m)) if m.text().is_empty()));
    assert_eq!(r.buffered(), 0);
}

#[test]
fn many_small_stanzas_in_one_feed() {
    let mut input = HEADER.to_string();
    for i in 0..50_000 {
        input.push_str(&format!("<a n='{i}'/>"));
    }
    let (events, err) = run(&input);
    assert_eq!(err, None);
    assert_eq!(events.len(), 50_001);
    assert_eq!(stanza(&events[50_000]).attr("n"), Some("49999"));
}

#[test]
fn mismatched_end_tag_is_refused_at_once() {
    // The end tag closes the wrong element while the stanza is still open: the reader must
    // not wait for more bytes that would bring the depth back to zero.
    let (events, err) = run(&format!("{HEADER}<iq type='get' id='1'><query></iq>"));
    assert_eq!(events.len(), 1, "only the stream header");
    assert!(
        matches!(err, Some(StreamError::NotWellFormed(_))),
        "{err:?}"
    );
    let (_, err) = run(&format!("{HEADER}<a><b:c xmlns:b='u'></b:d></a>"));
    assert!(
        matches!(err, Some(StreamError::NotWellFormed(_))),
        "{err:?}"
    );
    let (events, err) = run(&format!("{HEADER}<a><b:c xmlns:b='u'><d/></b:c ></a>"));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.len(), 2);
}
