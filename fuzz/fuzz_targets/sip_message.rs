//! Fuzzes the SIP decoder: arbitrary bytes through `parse`, the stateless error answers, the
//! stream framer (whole and split in two at a data-chosen point, which must agree), and the
//! digest verifier. Whatever parses as a request must yield a response that parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_dialects::sip::digest::DigestServer;
use palaver_dialects::sip::{
    bad_request_response, error_response, parse, response_to, FrameEvent, SipError, StreamFramer,
};

const MAX: usize = 16 * 1024;

fn frame(chunks: &[&[u8]]) -> (Vec<FrameEvent>, Option<SipError>) {
    let mut framer = StreamFramer::new(MAX);
    let mut events = Vec::new();
    for chunk in chunks {
        framer.feed(chunk);
        loop {
            match framer.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    (events, None)
}

fuzz_target!(|data: &[u8]| {
    let _ = bad_request_response(data);
    match parse(data, MAX) {
        Ok(message) => {
            if message.is_request() {
                let answer = response_to(&message, 200, "OK", Some("fuzz")).to_bytes();
                let reparsed = parse(&answer, MAX).expect("answer to a parsed request parses");
                assert_eq!(reparsed.call_id(), message.call_id());
                assert_eq!(reparsed.cseq(), message.cseq());
            }
        }
        Err(error) => {
            let _ = error_response(data, &error, "MESSAGE, OPTIONS");
        }
    }

    let (whole, whole_err) = frame(&[data]);
    let cut = data.first().map_or(0, |b| *b as usize * data.len() / 256);
    let (a, b) = data.split_at(cut.min(data.len()));
    let (split, split_err) = frame(&[a, b]);
    assert_eq!(whole, split, "framing depends on read boundaries");
    assert_eq!(
        whole_err.map(|e| e.status_code()),
        split_err.map(|e| e.status_code())
    );
    for event in whole {
        if let FrameEvent::Message(m) = event {
            let _ = parse(&m, MAX);
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        let mut server = DigestServer::new([1; 32], "localhost", 60);
        let _ = server.verify("REGISTER", Some(text), 1, |_, _| Some("00".repeat(16)));
    }
});
