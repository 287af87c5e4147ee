//! Fuzzes the XMPP stream reader: arbitrary bytes, fed in arbitrary chunks, must never panic,
//! and every stanza it yields must serialize and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::reader::{Limits, StreamEvent, StreamReader};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let chunk = usize::from(split).max(1);
    let mut reader = StreamReader::new(Limits { max_stanza_bytes: 16 * 1024, ..Limits::default() });
    for part in rest.chunks(chunk) {
        if reader.feed(part).is_err() {
            return;
        }
        loop {
            match reader.next_event() {
                Ok(Some(StreamEvent::Stanza(el))) => {
                    let bytes = el.to_bytes("");
                    let back = Element::parse(&bytes).expect("our own output parses");
                    assert_eq!(back, el);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
