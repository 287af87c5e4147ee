//! Criterion benchmarks of the room fan-out (issue 4, "Make it fast"): one room with 1,000
//! occupants whose sinks are atomic counters, driven end to end through the public
//! `Engine` API on an in-memory SQLite store.
//!
//! * `post_1000`: one `Post` → numbered → group commit (one INSERT transaction) → broadcast to
//!   1,000 sinks → reply (the room answers after the broadcast), one message at a time.
//! * `post_1_occupant`: the same post in a room of one, so `post_1000 - post_1_occupant` is
//!   what the 1,000-way fan-out adds.
//! * `post_64_in_flight_1000`: 64 posts sent at once, so the commit queue batches them.
//! * `nick_change_1000`: a nick change broadcasts two presences to every occupant without
//!   touching the store: the engine's broadcast path with no commit in front of it.
//! * `sink_loop_1000`: the floor — just 1,000 `deliver` calls through `Arc<dyn EventSink>`.
//!
//! `cargo bench -p palaver-core`. Results: docs/benchmarks.md, "Micro-benchmarks".

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palaver_core::engine::{
    ClientProtocol, ClientRef, DeliveryFlags, Engine, EngineConfig, EventSink, HistoryRequest,
    JoinRequest, RoomCommand, RoomEvent, RoomEventKind, SinkClosed,
};
use palaver_core::{open_store, RoomConfig, UserId};
use tokio::runtime::Runtime;

const OCCUPANTS: u64 = 1000;
const ROOM: &str = "bench";
/// A second room with a single occupant: the same post without the fan-out.
const SOLO: &str = "solo";
const SOLO_CLIENT: u64 = 1_000_000;
/// A ~200-byte chat line.
const BODY: &str = "Hi all, the build on main is green again after the SQLite upgrade. I'll \
     rerun the load test tonight on the 2-core box and post the p99 numbers here before \
     tomorrow's standup, ok?";

/// The cheapest possible session: counts what it is given.
#[derive(Default)]
struct Counter(AtomicU64);

impl EventSink for Counter {
    fn deliver(&self, event: &Arc<RoomEvent>, _flags: DeliveryFlags) -> Result<(), SinkClosed> {
        black_box(event);
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct Setup {
    engine: Engine,
    sinks: Vec<Arc<Counter>>,
}

impl Setup {
    fn delivered(&self) -> u64 {
        self.sinks.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

/// Two worker threads, like the server on the 2-core target machine.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An engine on `sqlite::memory:` with one room and `OCCUPANTS` occupants (client ids 1..=N,
/// nicks u1..uN), each with its own counter sink.
async fn setup() -> Setup {
    let store = open_store("sqlite::memory:").await.expect("store");
    let engine = Engine::new(store, EngineConfig::default());
    engine
        .create_room(ROOM, RoomConfig::default(), None, None)
        .await
        .expect("room");
    engine
        .create_room(SOLO, RoomConfig::default(), None, None)
        .await
        .expect("room");
    let mut sinks = Vec::new();
    for id in 1..=OCCUPANTS {
        sinks.push(join(&engine, ROOM, id).await);
    }
    join(&engine, SOLO, SOLO_CLIENT).await;
    Setup { engine, sinks }
}

/// Joins client `id` to `room` as `u<id>` with a fresh counter sink.
async fn join(engine: &Engine, room: &str, id: u64) -> Arc<Counter> {
    let sink = Arc::new(Counter::default());
    let req = JoinRequest {
        client: ClientRef {
            id,
            user: UserId::parse(&format!("user{id}@localhost")).expect("user"),
            resource: Arc::from("bench"),
            protocol: ClientProtocol::Xmpp,
            sink: sink.clone(),
        },
        nick: format!("u{id}"),
        password: None,
        history: HistoryRequest::default(),
        payload: None,
        create: false,
        instant: true,
    };
    engine
        .ask(room, |reply| RoomCommand::Join { req, reply })
        .await
        .expect("join");
    sink
}

async fn post(engine: &Engine, room: &str, client: u64) {
    engine
        .ask(room, |reply| RoomCommand::Post {
            client,
            body: BODY.to_string(),
            extra: None,
            origin_id: String::new(),
            reply,
        })
        .await
        .expect("post");
}

async fn change_nick(engine: &Engine, client: u64, nick: String) {
    engine
        .ask(ROOM, |reply| RoomCommand::ChangeNick {
            client,
            nick,
            reply,
        })
        .await
        .expect("nick change");
}

fn fanout(c: &mut Criterion) {
    let rt = runtime();
    let s = rt.block_on(setup());
    assert_eq!(
        rt.block_on(s.engine.room_info(ROOM)).map(|i| i.occupants),
        Some(OCCUPANTS as u32)
    );
    // Sanity: one post reaches every sink exactly once.
    let before = s.delivered();
    rt.block_on(post(&s.engine, ROOM, 1));
    assert_eq!(s.delivered() - before, OCCUPANTS);

    let mut g = c.benchmark_group("fanout");
    g.throughput(Throughput::Elements(OCCUPANTS));
    g.bench_function("post_1000", |b| {
        b.to_async(&rt).iter(|| post(&s.engine, ROOM, 1));
    });

    g.throughput(Throughput::Elements(1));
    g.bench_function("post_1_occupant", |b| {
        b.to_async(&rt).iter(|| post(&s.engine, SOLO, SOLO_CLIENT));
    });

    const IN_FLIGHT: u64 = 64;
    g.throughput(Throughput::Elements(OCCUPANTS * IN_FLIGHT));
    g.bench_function("post_64_in_flight_1000", |b| {
        b.to_async(&rt).iter(|| async {
            let posts = (0..IN_FLIGHT).map(|i| post(&s.engine, ROOM, 1 + i % OCCUPANTS));
            futures::future::join_all(posts).await;
        });
    });

    // Occupant 2 toggles between two nicks: 2 presence broadcasts per iteration.
    g.throughput(Throughput::Elements(2 * OCCUPANTS));
    g.bench_function("nick_change_1000", |b| {
        let mut flip = false;
        b.to_async(&rt).iter(|| {
            flip = !flip;
            let nick = if flip { "u2-away" } else { "u2" };
            change_nick(&s.engine, 2, nick.to_string())
        });
    });

    let sinks: Vec<Arc<dyn EventSink>> = s
        .sinks
        .iter()
        .map(|x| x.clone() as Arc<dyn EventSink>)
        .collect();
    let event = RoomEvent::new(
        Arc::from(ROOM),
        RoomEventKind::Notice {
            text: BODY.to_string(),
        },
    );
    g.throughput(Throughput::Elements(OCCUPANTS));
    g.bench_function("sink_loop_1000", |b| {
        b.iter(|| {
            for sink in &sinks {
                let flags = DeliveryFlags::default();
                sink.deliver(black_box(&event), flags).expect("counter");
            }
        });
    });
    g.finish();
    rt.block_on(s.engine.shutdown());
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = fanout
}
criterion_main!(benches);
