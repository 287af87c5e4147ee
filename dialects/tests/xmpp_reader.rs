//! Property tests for the XMPP stream reader and element serializer: chunking invariance over
//! every 2- and 3-way split of a corpus, random chunkings, no panics on arbitrary input, and
//! write/parse round trips.

use palaver_dialects::xmpp::element::{Element, Node};
use palaver_dialects::xmpp::reader::{Limits, StreamError, StreamEvent, StreamReader};
use proptest::prelude::*;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

/// Valid streams (some closed, some not).
fn corpus() -> Vec<String> {
    vec![
        format!("{HEADER}<presence/>"),
        format!(
            "{HEADER}\n<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features> \
             <message to='r@m.x' type='groupchat'><body>h\u{e9}\u{1F600} &amp;&lt;&#x41;\r\n\
             <![CDATA[<x>]]]]></body><x xmlns='urn:x' a=\"'>\"/></message></stream:stream>"
        ),
        format!(
            "{HEADER}<iq type='get' id='1'><query xmlns='http://jabber.org/protocol/disco#info'/>\
             </iq>\t \r\n<presence to='r@m.x/n\u{e9}'><x xmlns='http://jabber.org/protocol/muc'>\
             <history maxstanzas='0'/></x></presence>"
        ),
        "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server'>\
         <s:features/><a:b xmlns:a='urn:a' a:c='1'>\u{263A}</a:b></s:stream>"
            .to_string(),
    ]
}

/// Invalid streams: the events before the error and the error must not depend on chunking.
fn bad_corpus() -> Vec<String> {
    vec![
        format!("{HEADER}<a/><!-- c --><b/>"),
        format!("{HEADER}<a>&nbsp;</a>"),
        format!("{HEADER}<a><b></a></b>"),
        format!("{HEADER}<a/>text"),
        format!("{HEADER}<a>\u{e9}\u{1}</a>"),
        "<!DOCTYPE stream><stream:stream>".to_string(),
        "<stream:stream xmlns='jabber:client' xmlns:stream='urn:bad'><a/>".to_string(),
    ]
}

type Outcome = (Vec<StreamEvent>, Option<StreamError>);

fn drain(r: &mut StreamReader, events: &mut Vec<StreamEvent>) -> Option<StreamError> {
    loop {
        match r.next_event() {
            Ok(Some(ev)) => events.push(ev),
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

/// Feeds `chunks` one after another, draining events after each.
fn run_chunks<'a>(limits: &Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut r = StreamReader::new(limits.clone());
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(e) = r.feed(chunk) {
            return (events, Some(e));
        }
        if let Some(e) = drain(&mut r, &mut events) {
            return (events, Some(e));
        }
    }
    (events, None)
}

fn run_whole(input: &[u8]) -> Outcome {
    run_chunks(&Limits::default(), [input])
}

#[test]
fn corpus_is_valid() {
    for s in corpus() {
        let (events, err) = run_whole(s.as_bytes());
        assert_eq!(err, None, "{s}");
        assert!(events.len() >= 2, "{s}");
    }
    for s in bad_corpus() {
        assert!(run_whole(s.as_bytes()).1.is_some(), "{s}");
    }
}

#[test]
fn every_two_way_split_gives_the_same_events() {
    for s in corpus().iter().chain(bad_corpus().iter()) {
        let bytes = s.as_bytes();
        let expected = run_whole(bytes);
        for i in 0..=bytes.len() {
            let got = run_chunks(&Limits::default(), [&bytes[..i], &bytes[i..]]);
            assert_eq!(got, expected, "split at {i} of {s}");
        }
    }
}

#[test]
fn every_three_way_split_gives_the_same_events() {
    for s in corpus().iter().chain(bad_corpus().iter()) {
        let bytes = s.as_bytes();
        let expected = run_whole(bytes);
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let got = run_chunks(&Limits::default(), [&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(got, expected, "split at {i},{j} of {s}");
            }
        }
    }
}

#[test]
fn one_byte_chunks_give_the_same_events() {
    for s in corpus().iter().chain(bad_corpus().iter()) {
        let bytes = s.as_bytes();
        assert_eq!(
            run_chunks(&Limits::default(), bytes.chunks(1)),
            run_whole(bytes)
        );
    }
}

/// Splits `bytes` at the given (unsorted, possibly out of range) cut points.
fn cut<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in points {
        chunks.push(&bytes[last..p]);
        last = p;
    }
    chunks.push(&bytes[last..]);
    chunks
}

fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>().prop_filter("XML char", |c| {
            !matches!(*c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
        }),
        2 => prop::sample::select(vec!['<', '>', '&', '"', '\'', '\r', '\n', '\t', ' ', ']', ';', '#']),
        2 => prop::char::range('a', 'z'),
    ]
}

fn xml_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(xml_char(), 0..max).prop_map(|v| v.into_iter().collect())
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_\u{e9}\u{4e2d}][a-zA-Z0-9_.\u{b7}-]{0,6}".prop_filter("not xmlns", |n| n != "xmlns")
}

fn namespace() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        String::new(),
        "jabber:client".to_string(),
        "urn:a".to_string(),
        "urn:\u{e9}&<'\"".to_string(),
        "http://jabber.org/protocol/muc#user".to_string(),
    ])
}

fn leaf() -> impl Strategy<Value = Element> {
    (
        name(),
        namespace(),
        prop::collection::vec((name(), xml_string(12)), 0..4),
        prop::option::of(xml_string(6)),
        prop::option::of(xml_string(20)),
    )
        .prop_map(|(name, ns, attrs, lang, text)| {
            let mut e = Element::new(name, ns);
            for (k, v) in attrs {
                e.set_attr(k, v);
            }
            if let Some(lang) = lang {
                e.set_attr("xml:lang", lang);
            }
            if let Some(text) = text {
                e.append_text(text);
            }
            e
        })
}

fn element() -> impl Strategy<Value = Element> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        (
            leaf(),
            prop::collection::vec(
                prop_oneof![
                    inner.prop_map(Node::Element),
                    xml_string(10).prop_map(Node::Text)
                ],
                0..5,
            ),
        )
            .prop_map(|(mut e, children)| {
                for child in children {
                    match child {
                        Node::Element(c) => e.append_child(c),
                        Node::Text(t) => e.append_text(t),
                    }
                }
                e
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_chunkings_give_the_same_events(
        which in 0usize..11,
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let all: Vec<String> = corpus().into_iter().chain(bad_corpus()).collect();
        let bytes = all[which % all.len()].as_bytes();
        prop_assert_eq!(run_chunks(&Limits::default(), cut(bytes, &cuts)), run_whole(bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let _ = run_chunks(&Limits::default(), cut(&data, &cuts));
        let mut with_header = HEADER.as_bytes().to_vec();
        with_header.extend_from_slice(&data);
        let _ = run_chunks(&Limits::default(), cut(&with_header, &cuts));
        let _ = Element::parse(&data);
    }

    #[test]
    fn xml_like_input_never_panics(
        tokens in prop::collection::vec(prop::sample::select(vec![
            "<", ">", "/", "</", "/>", "<?", "?>", "<!", "<![CDATA[", "]]>", "--", "'", "\"",
            "=", " ", "\n", "&", ";", "&amp;", "&#", "x", "a", "b:c", "xmlns", "xmlns:p",
            "stream:stream", "xml", "\u{e9}", "\u{FFFF}", "\u{1}", "\u{80}",
        ]), 0..80),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        tight in any::<bool>(),
    ) {
        let body: String = tokens.concat();
        let limits = if tight {
            Limits { max_stanza_bytes: 40, max_depth: 3, max_attrs: 2, max_stream_header_bytes: 200 }
        } else {
            Limits::default()
        };
        let input = format!("{HEADER}{body}");
        let whole = run_chunks(&limits, [input.as_bytes()]);
        let chunked = run_chunks(&limits, cut(input.as_bytes(), &cuts));
        // Chunking only matters for the immediate size error.
        if !matches!(whole.1, Some(StreamError::PolicyViolation(_))) {
            prop_assert_eq!(chunked, whole);
        }
        let _ = run_chunks(&limits, cut(body.as_bytes(), &cuts));
        let _ = Element::parse_with_limits(body.as_bytes(), &limits);
    }

    #[test]
    fn parse_of_write_is_identity(e in element()) {
        let bytes = e.to_bytes("");
        prop_assert_eq!(Element::parse(&bytes), Ok(e.clone()));
        prop_assert_eq!(Element::parse(e.to_string().as_bytes()), Ok(e));
    }

    #[test]
    fn stanzas_round_trip_through_the_stream(e in element(), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let mut input = HEADER.as_bytes().to_vec();
        e.write_to(&mut input, "jabber:client");
        input.extend_from_slice(b"</stream:stream>");
        let (events, err) = run_chunks(&Limits::default(), cut(&input, &cuts));
        prop_assert_eq!(err, None);
        prop_assert_eq!(events.len(), 3);
        prop_assert_eq!(&events[1], &StreamEvent::Stanza(e));
    }
}
