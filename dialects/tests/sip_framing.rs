//! The TCP/TLS framer: messages and RFC 5626 keep-alives come out the same whatever the read
//! boundaries (every 2-way and 3-way split of a stream), Content-Length is required and
//! checked, header section and message sizes are bounded, and errors are sticky.

use palaver_dialects::sip::{parse, FrameEvent, SipError, StreamFramer};

fn message(body: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:lobby@conference.localhost SIP/2.0\r\n\
         Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
         From: <sip:alice@localhost>;tag=a\r\n\
         To: <sip:lobby@conference.localhost>\r\n\
         Call-ID: c1\r\n\
         CSeq: 1 MESSAGE\r\n\
         l: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A stream: ping, message with a body containing CRLFCRLF, pong, message without body,
/// LF-only message, ping.
fn stream() -> (Vec<u8>, Vec<FrameEvent>) {
    let m1 = message("hi\r\n\r\nthere");
    let m2 = message("");
    let m3 = message("x")
        .iter()
        .filter(|b| **b != b'\r')
        .copied()
        .collect::<Vec<u8>>();
    let mut bytes = b"\r\n\r\n".to_vec();
    bytes.extend_from_slice(&m1);
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(&m2);
    bytes.extend_from_slice(&m3);
    bytes.extend_from_slice(b"\r\n\r\n");
    let events = vec![
        FrameEvent::Ping,
        FrameEvent::Message(m1),
        FrameEvent::Pong,
        FrameEvent::Message(m2),
        FrameEvent::Message(m3),
        FrameEvent::Ping,
    ];
    (bytes, events)
}

fn run(chunks: &[&[u8]], max: usize) -> Result<Vec<FrameEvent>, SipError> {
    let mut framer = StreamFramer::new(max);
    let mut events = Vec::new();
    for chunk in chunks {
        framer.feed(chunk);
        while let Some(event) = framer.next_event()? {
            events.push(event);
        }
    }
    Ok(events)
}

#[test]
fn whole_stream() {
    let (bytes, expected) = stream();
    let events = run(&[&bytes], 4096).expect("should succeed");
    assert_eq!(events, expected);
    for event in events {
        if let FrameEvent::Message(m) = event {
            parse(&m, 4096).expect("should succeed");
        }
    }
}

#[test]
fn every_two_way_split() {
    let (bytes, expected) = stream();
    for i in 0..=bytes.len() {
        let (a, b) = bytes.split_at(i);
        assert_eq!(
            run(&[a, b], 4096).expect("should succeed"),
            expected,
            "split at {i}"
        );
    }
}

/// Three chunks, the middle one up to 48 bytes long: every pair of nearby cut points (where
/// a blank line, a ping or a Content-Length value straddles two reads).
#[test]
fn every_nearby_three_way_split() {
    let (bytes, expected) = stream();
    for i in 0..=bytes.len() {
        for j in i..=bytes.len().min(i + 48) {
            let (a, rest) = bytes.split_at(i);
            let (b, c) = rest.split_at(j - i);
            assert_eq!(
                run(&[a, b, c], 4096).expect("should succeed"),
                expected,
                "split at {i},{j}"
            );
        }
    }
}

#[test]
fn byte_at_a_time() {
    let (bytes, expected) = stream();
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run(&chunks, 4096).expect("should succeed"), expected);
}

#[test]
fn next_message_skips_keepalives() {
    let (bytes, _) = stream();
    let mut framer = StreamFramer::new(4096);
    framer.feed(&bytes);
    let mut n = 0;
    while let Some(m) = framer.next_message().expect("should succeed") {
        parse(&m, 4096).expect("should succeed");
        n += 1;
    }
    assert_eq!(n, 3);
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn partial_ping_waits() {
    let mut framer = StreamFramer::new(4096);
    framer.feed(b"\r\n");
    assert_eq!(framer.next_event(), Ok(None), "could be half a ping");
    framer.feed(b"\r");
    assert_eq!(framer.next_event(), Ok(None));
    framer.feed(b"\n");
    assert_eq!(framer.next_event(), Ok(Some(FrameEvent::Ping)));
    framer.feed(b"\r\nM");
    assert_eq!(framer.next_event(), Ok(Some(FrameEvent::Pong)));
    assert_eq!(framer.next_event(), Ok(None));
    assert_eq!(framer.buffered(), 1);
}

#[test]
fn a_client_framer_reports_each_pong_at_once() {
    let mut framer = StreamFramer::for_client(4096);
    framer.feed(b"\r\n");
    assert_eq!(framer.next_event(), Ok(Some(FrameEvent::Pong)));
    assert_eq!(framer.next_event(), Ok(None));
    framer.feed(b"\r\n\r\n\r");
    assert_eq!(framer.next_event(), Ok(Some(FrameEvent::Pong)));
    assert_eq!(framer.next_event(), Ok(Some(FrameEvent::Pong)));
    assert_eq!(framer.next_event(), Ok(None), "half a pong");
    framer.feed(b"\n");
    assert_eq!(framer.next_event(), Ok(Some(FrameEvent::Pong)));
    let msg = message("hi");
    framer.feed(&msg);
    assert_eq!(framer.next_event(), Ok(Some(FrameEvent::Message(msg))));
}

#[test]
fn missing_content_length_is_an_error() {
    let m = String::from_utf8(message(""))
        .expect("should succeed")
        .replace("l: 0\r\n", "");
    assert_eq!(
        run(&[m.as_bytes()], 4096),
        Err(SipError::MissingContentLength)
    );
    let bad = String::from_utf8(message(""))
        .expect("should succeed")
        .replace("l: 0", "l: zero");
    assert_eq!(
        run(&[bad.as_bytes()], 4096)
            .expect_err("should fail")
            .status_code(),
        400
    );
    let conflict = String::from_utf8(message("ab"))
        .expect("should succeed")
        .replace("l: 2", "l: 2\r\nContent-Length: 3");
    assert_eq!(
        run(&[conflict.as_bytes()], 4096)
            .expect_err("should fail")
            .status_code(),
        400
    );
}

#[test]
fn limits() {
    let m = message("0123456789");
    // Exactly at the limit is fine; one byte less is 513.
    assert_eq!(run(&[&m], m.len()).expect("should succeed").len(), 1);
    let err = run(&[&m], m.len() - 1).expect_err("should fail");
    assert_eq!(err.status_code(), 513);
    // A body announced bigger than the limit fails before it arrives.
    let huge = String::from_utf8(message(""))
        .expect("should succeed")
        .replace("l: 0", "l: 100000000");
    assert!(matches!(
        run(&[huge.as_bytes()], 4096),
        Err(SipError::TooLarge { limit: 4096, .. })
    ));
    // A header section that never ends fails once it passes the header limit.
    let mut framer = StreamFramer::with_limits(256, 4096);
    framer.feed(b"MESSAGE sip:a@b SIP/2.0\r\n");
    assert_eq!(framer.next_event(), Ok(None));
    framer.feed(&b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(5));
    let err = framer.next_event().expect_err("should fail");
    assert_eq!(err.status_code(), 513);
    // Sticky: more input does not revive it.
    framer.feed(&message(""));
    assert_eq!(framer.next_event(), Err(err));
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn many_small_messages_compact_the_buffer() {
    let m = message("payload");
    let mut framer = StreamFramer::new(4096);
    let mut count = 0;
    for _ in 0..500 {
        framer.feed(&m);
        framer.feed(&m[..10]);
        while let Some(FrameEvent::Message(_)) = framer.next_event().expect("should succeed") {
            count += 1;
        }
        framer.feed(&m[10..]);
        while let Some(FrameEvent::Message(_)) = framer.next_event().expect("should succeed") {
            count += 1;
        }
        assert!(framer.buffered() < m.len());
    }
    assert_eq!(count, 1000);
}
