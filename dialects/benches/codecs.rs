//! Criterion micro-benchmarks of the hot codecs (issue 4, "Make it fast"): the XMPP stream
//! reader on a typical groupchat `<message>`, the groupchat encode and per-recipient `to`
//! splicing, SIP MESSAGE parse/build, responses and stream framing, and the pager dialect
//! (command parsing, conference-info documents).
//!
//! `cargo bench -p palaver-dialects` (add a filter such as `-- xmpp/` to run a subset).
//! Results and how to read them: docs/benchmarks.md, "Micro-benchmarks".

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use palaver_core::engine::{DeliveryFlags, RoomEvent, RoomEventKind};
use palaver_core::model::Role;
use palaver_core::{StoredMessage, UserId};
use palaver_dialects::pager::command::{parse_command, PagerCommand};
use palaver_dialects::pager::conference_info::{
    full_document, ConfUser, ConferenceState, EndpointStatus,
};
use palaver_dialects::sip::request::new_tag;
use palaver_dialects::sip::{parse, response_to, FrameEvent, RequestBuilder, StreamFramer};
use palaver_dialects::xmpp::escape::escape_attr;
use palaver_dialects::xmpp::muc::{encode_event, encode_slot};
use palaver_dialects::xmpp::reader::{Limits, StreamEvent, StreamReader};

/// A ~200-byte chat line (plain ASCII, one apostrophe: escaped on output as `&apos;`).
const BODY: &str = "Hi all, the build on main is green again after the SQLite upgrade. I'll \
     rerun the load test tonight on the 2-core box and post the p99 numbers here before \
     tomorrow's standup, ok?";

const MUC_DOMAIN: &str = "conference.localhost";
/// Largest SIP message the gateway accepts by default (`[sip] max_message_bytes`).
const SIP_MAX: usize = 65_535;
/// The SIP gateway's TCP read size (gateway/src/sip/transport.rs).
const SIP_READ: usize = 16 * 1024;

fn stream_header() -> &'static [u8] {
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
      xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' \
      xml:lang='en'>"
}

/// What a client (Conversations, Gajim) sends to a room: body and XEP-0359 origin-id.
fn groupchat_stanza() -> Vec<u8> {
    let body = BODY.replace('\'', "&apos;");
    format!(
        "<message to='lobby@conference.localhost' type='groupchat' \
         id='9f1c2b7e-4d3a-4c55-9a1e-0b6f2d8e7c11' xml:lang='en'><body>{body}</body>\
         <origin-id xmlns='urn:xmpp:sid:0' id='9f1c2b7e-4d3a-4c55-9a1e-0b6f2d8e7c11'/>\
         </message>"
    )
    .into_bytes()
}

/// A reader that has consumed the stream header, as a session's after login.
fn open_reader() -> StreamReader {
    let mut reader = StreamReader::new(Limits::default());
    reader.feed(stream_header()).expect("header fits");
    match reader.next_event() {
        Ok(Some(StreamEvent::Open { .. })) => reader,
        other => panic!("expected the stream header, got {other:?}"),
    }
}

/// Feeds `bytes` and drains every complete event, as gateway/src/xmpp/session.rs does per read.
fn read_stanzas(reader: &mut StreamReader, bytes: &[u8], events: &mut Vec<StreamEvent>) {
    reader.feed(bytes).expect("feed");
    while let Some(ev) = reader.next_event().expect("well-formed") {
        events.push(ev);
    }
}

fn stored_message() -> Arc<StoredMessage> {
    Arc::new(StoredMessage {
        room_id: 1,
        seq: 4242,
        stanza_id: "0192d3c1a7e24f3b8c9d0e1f2a3b4c5d".into(),
        origin_id: "9f1c2b7e-4d3a-4c55-9a1e-0b6f2d8e7c11".into(),
        sender: UserId::parse("alice@localhost").expect("user"),
        nick: "alice".into(),
        occupant_id: "5f0c8e1d2b3a49687766554433221100".into(),
        body: BODY.into(),
        // What gateway/src/xmpp/muc.rs `message_extra` keeps of the stanza above.
        extra: Some(
            "<origin-id xmlns='urn:xmpp:sid:0' id='9f1c2b7e-4d3a-4c55-9a1e-0b6f2d8e7c11'/>".into(),
        ),
        ts: 1_795_000_000_000,
    })
}

fn live_event(message: &Arc<StoredMessage>) -> Arc<RoomEvent> {
    RoomEvent::new(
        Arc::from("lobby"),
        RoomEventKind::Message {
            message: message.clone(),
            history: false,
        },
    )
}

/// A copy of `Session::write_spliced` (gateway/src/xmpp/session.rs, private there): the shared
/// encoding, with ` to='<recipient>'` inserted after the element name.
fn write_spliced(wbuf: &mut Vec<u8>, jid_attr: &[u8], bytes: &[u8]) {
    let pos = bytes
        .iter()
        .skip(1)
        .position(|b| matches!(b, b' ' | b'>' | b'/'))
        .map(|p| p + 1)
        .unwrap_or(bytes.len());
    wbuf.extend_from_slice(&bytes[..pos]);
    wbuf.extend_from_slice(b" to='");
    wbuf.extend_from_slice(jid_attr);
    wbuf.push(b'\'');
    wbuf.extend_from_slice(&bytes[pos..]);
}

fn jid_attr(i: usize) -> Vec<u8> {
    let mut out = Vec::new();
    escape_attr(&format!("user{i}@localhost/res-{i:04}"), &mut out);
    out
}

fn xmpp(c: &mut Criterion) {
    let stanza = groupchat_stanza();
    let mut g = c.benchmark_group("xmpp");

    // Sanity: the stanza parses into a groupchat message with its body.
    {
        let mut reader = open_reader();
        let mut events = Vec::new();
        read_stanzas(&mut reader, &stanza, &mut events);
        match events.as_slice() {
            [StreamEvent::Stanza(el)] => {
                assert_eq!(el.attr("type"), Some("groupchat"));
                assert_eq!(
                    el.child_text("body", "jabber:client").as_deref(),
                    Some(BODY)
                );
            }
            other => panic!("expected one stanza, got {other:?}"),
        }
    }

    g.throughput(Throughput::Elements(1));
    g.bench_function("read_groupchat_stanza", |b| {
        let mut reader = open_reader();
        let mut events = Vec::with_capacity(1);
        b.iter(|| {
            read_stanzas(&mut reader, black_box(&stanza), &mut events);
            black_box(events.drain(..).next());
        });
    });

    let batch: Vec<u8> = (0..100).flat_map(|_| stanza.iter().copied()).collect();
    g.throughput(Throughput::Elements(100));
    g.bench_function("read_100_stanzas_one_feed", |b| {
        let mut reader = open_reader();
        let mut events = Vec::with_capacity(100);
        b.iter(|| {
            read_stanzas(&mut reader, black_box(&batch), &mut events);
            assert_eq!(events.len(), 100);
            events.clear();
        });
    });

    let message = stored_message();
    let event = live_event(&message);
    let flags = DeliveryFlags::default();
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_groupchat", |b| {
        b.iter(|| encode_event(black_box(&event), flags, MUC_DOMAIN, None));
    });

    let encoded = encode_event(&event, flags, MUC_DOMAIN, None);
    let me = jid_attr(7);
    g.bench_function("splice_to", |b| {
        let mut wbuf = Vec::with_capacity(1024);
        b.iter(|| {
            wbuf.clear();
            write_spliced(&mut wbuf, &me, black_box(&encoded));
            black_box(wbuf.len());
        });
    });

    // The gateway's per-recipient work for one room message to 1,000 XMPP sessions: the event's
    // encode cache (one encode per view; 1% moderators see real addresses, so two views) and
    // one splice into each session's write buffer.
    const RECIPIENTS: usize = 1000;
    let jids: Vec<Vec<u8>> = (0..RECIPIENTS).map(jid_attr).collect();
    let mut wbufs: Vec<Vec<u8>> = (0..RECIPIENTS).map(|_| Vec::with_capacity(1024)).collect();
    g.throughput(Throughput::Elements(RECIPIENTS as u64));
    g.bench_function("deliver_1000_encode_once_splice", |b| {
        b.iter(|| {
            let event = live_event(&message);
            for (i, (jid, wbuf)) in jids.iter().zip(wbufs.iter_mut()).enumerate() {
                let flags = DeliveryFlags {
                    is_self: false,
                    sees_real_address: i % 100 == 0,
                };
                let bytes = event.encoded(encode_slot(&event, flags), |e| {
                    encode_event(e, flags, MUC_DOMAIN, None)
                });
                wbuf.clear();
                write_spliced(wbuf, jid, &bytes);
            }
            black_box(&wbufs);
        });
    });
    g.finish();
}

/// A MESSAGE as baresip sends it to a room over TCP: 15 headers, a 200-byte text body.
fn sip_message() -> Vec<u8> {
    let head = format!(
        "MESSAGE sip:lobby@conference.localhost SIP/2.0\r\n\
         Via: SIP/2.0/TCP 127.0.0.1:40312;branch=z9hG4bK4f2a9c1e7d3b5a60;rport;alias\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:lobby@conference.localhost>\r\n\
         From: \"Alice\" <sip:alice@localhost>;tag=8d2e1f0a9b7c6d5e\r\n\
         Call-ID: 3c1b8e2f7a9d4c6b@127.0.0.1\r\n\
         CSeq: 27 MESSAGE\r\n\
         Contact: <sip:alice-0x55d1@127.0.0.1:40312;transport=tcp>\r\n\
         User-Agent: baresip v3.10.1 (x86_64/Linux)\r\n\
         Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER\r\n\
         Supported: replaces,norefersub,gruu\r\n\
         Accept: text/plain\r\n\
         Accept-Language: en\r\n\
         Date: Mon, 23 Nov 2026 10:15:42 GMT\r\n\
         Content-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\n\r\n",
        BODY.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(BODY.as_bytes());
    out
}

fn sip(c: &mut Criterion) {
    let raw = sip_message();
    let mut g = c.benchmark_group("sip");
    let parsed = parse(&raw, SIP_MAX).expect("the sample MESSAGE parses");
    assert_eq!(parsed.body(), BODY.as_bytes());

    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_message", |b| {
        b.iter(|| parse(black_box(&raw), SIP_MAX).expect("parses"));
    });

    // As gateway/src/sip/outbound.rs `room_message` builds one MESSAGE per SIP recipient
    // (fresh tag, Call-ID and branch each time).
    g.bench_function("build_message", |b| {
        b.iter(|| {
            RequestBuilder::message(black_box("sip:bob@127.0.0.1:5062;transport=tcp"))
                .via("TCP", "127.0.0.1:5060")
                .from("sip:lobby@conference.localhost", Some("alice"), &new_tag())
                .to("sip:bob@localhost", None, None)
                .body(
                    palaver_dialects::pager::text::CONTENT_TYPE,
                    black_box(BODY).as_bytes(),
                )
                .build()
                .expect("builds")
        });
    });

    let mut stamped = parsed.clone();
    let peer: SocketAddr = "127.0.0.1:40312".parse().expect("addr");
    stamped.stamp_source(peer);
    g.bench_function("response_200_to_bytes", |b| {
        b.iter(|| response_to(black_box(&stamped), 200, "OK", Some("a1b2c3d4")).to_bytes());
    });

    // 100 back-to-back messages on a TCP stream, read 16 KiB at a time.
    let stream: Vec<u8> = (0..100).flat_map(|_| raw.iter().copied()).collect();
    g.throughput(Throughput::Elements(100));
    g.bench_function("stream_framer_100_messages", |b| {
        b.iter_batched(
            || StreamFramer::new(SIP_MAX),
            |mut framer| {
                let mut n = 0;
                for chunk in black_box(&stream).chunks(SIP_READ) {
                    framer.feed(chunk);
                    while let Some(ev) = framer.next_event().expect("frames") {
                        if let FrameEvent::Message(m) = ev {
                            black_box(m);
                            n += 1;
                        }
                    }
                }
                assert_eq!(n, 100);
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn pager(c: &mut Criterion) {
    let mut g = c.benchmark_group("pager");
    assert!(matches!(parse_command(BODY), Ok(PagerCommand::Post(_))));
    assert!(matches!(
        parse_command("#join nick"),
        Ok(PagerCommand::Join { nick: Some(_) })
    ));
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_command_post", |b| {
        b.iter(|| parse_command(black_box(BODY)));
    });
    g.bench_function("parse_command_join", |b| {
        b.iter(|| parse_command(black_box("#join nick")));
    });

    let state = ConferenceState {
        entity: "sip:lobby@conference.localhost".into(),
        display_text: "Lobby".into(),
        subject: "Release 0.2 planning — agenda in the wiki".into(),
        users: (0..50)
            .map(|i| ConfUser {
                entity: if i % 2 == 0 {
                    format!("sip:user{i}@localhost")
                } else {
                    format!("xmpp:user{i}@localhost")
                },
                display_text: format!("User {i}"),
                role: if i == 0 {
                    Role::Moderator
                } else {
                    Role::Participant
                },
                status: EndpointStatus::Connected,
            })
            .collect(),
    };
    g.bench_function("conference_info_full_50_users", |b| {
        b.iter(|| full_document(black_box(&state), 7));
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = codecs;
    config = config();
    targets = xmpp, sip, pager
}
criterion_main!(codecs);
