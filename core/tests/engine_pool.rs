//! Rooms across a pool at the engine level: three engines (n1, n2, n3) on one shared SQLite
//! file, linked by an in-process router that carries every room frame through the real 8011
//! codec. Commands for a room homed elsewhere are forwarded, events come back to each node's
//! sessions, history is the same from every node; when the home dies its room moves, the
//! survivors' sessions follow it (and see the dead node's occupants leave) and the sequence
//! goes on without a gap or a fork; when a node joins, rooms it now homes are handed over.
//! The real sockets, TLS and processes are covered by the e2e tests (`tests/tests/pool_*`).

mod engine_common;

use bytes::BytesMut;
use engine_common::*;
use palaver_core::engine::*;
use palaver_core::pool::{encode, home, Frame, FrameDecoder, DEFAULT_MAX_FRAME};
use palaver_core::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// Which nodes are live (every node sees the same view here).
struct Net {
    live: Mutex<Vec<&'static str>>,
    /// Bumped when a node "restarts".
    incarnations: Mutex<HashMap<&'static str, u64>>,
    /// Bumped when the link with a node is "lost and made again".
    links: Mutex<HashMap<&'static str, u64>>,
    /// Room events towards this node are lost (a broken link).
    drop_events_to: Mutex<Option<&'static str>>,
    /// Every room event frame with several recipients goes out as one frame per recipient (as
    /// the home's per-node queue may cut one event's deliveries over several frames).
    split_events: std::sync::atomic::AtomicBool,
    inboxes: Mutex<HashMap<&'static str, mpsc::UnboundedSender<(&'static str, Frame)>>>,
}

struct Router {
    me: &'static str,
    net: Arc<Net>,
}

fn origin(node: &str) -> u16 {
    NODES
        .iter()
        .position(|n| *n == node)
        .map_or(0, |p| p as u16 + 1)
}

impl PoolRouter for Router {
    fn route(&self, room: &str) -> Route {
        let live = self.net.live.lock().expect("lock").clone();
        if live.len() * 2 <= NODES.len() || !live.contains(&self.me) {
            return Route::Unavailable;
        }
        match home(room, live.iter().copied()) {
            Some(h) if h == self.me => Route::Local,
            Some(h) => Route::Remote(Arc::from(h)),
            None => Route::Unavailable,
        }
    }

    fn send(&self, node: &str, frame: Frame) -> bool {
        let live = self.net.live.lock().expect("lock").clone();
        if !live.contains(&node) || !live.contains(&self.me) {
            return false;
        }
        let dropped = *self.net.drop_events_to.lock().expect("lock");
        if dropped == Some(node) && matches!(frame, Frame::RoomEvent { .. }) {
            return true;
        }
        if self
            .net
            .split_events
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            if let Frame::RoomEvent { recipients, body } = &frame {
                if recipients.len() > 1 {
                    return recipients.iter().all(|r| {
                        self.send(
                            node,
                            Frame::RoomEvent {
                                recipients: vec![*r],
                                body: body.clone(),
                            },
                        )
                    });
                }
            }
        }
        // Through the real codec, as on the wire.
        let bytes = encode(&frame, DEFAULT_MAX_FRAME).expect("encodes");
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = FrameDecoder::new(DEFAULT_MAX_FRAME)
            .decode(&mut buf)
            .expect("decodes")
            .expect("whole frame");
        let inboxes = self.net.inboxes.lock().expect("lock");
        inboxes
            .get(node)
            .is_some_and(|tx| tx.send((self.me, frame)).is_ok())
    }

    fn live_peers(&self) -> Vec<Peer> {
        let live = self.net.live.lock().expect("lock").clone();
        live.into_iter()
            .filter(|n| *n != self.me)
            .map(|n| Peer {
                id: Arc::from(n),
                origin: origin(n),
                incarnation: self
                    .net
                    .incarnations
                    .lock()
                    .expect("lock")
                    .get(n)
                    .copied()
                    .unwrap_or(1),
                link: self
                    .net
                    .links
                    .lock()
                    .expect("lock")
                    .get(n)
                    .copied()
                    .unwrap_or(1),
            })
            .collect()
    }
}

struct Pool {
    net: Arc<Net>,
    engines: HashMap<&'static str, Engine>,
    _dir: tempfile::TempDir,
}

impl Pool {
    async fn start(live: &[&'static str]) -> Pool {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("pool.db").display());
        let net = Arc::new(Net {
            live: Mutex::new(live.to_vec()),
            incarnations: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
            drop_events_to: Mutex::new(None),
            split_events: std::sync::atomic::AtomicBool::new(false),
            inboxes: Mutex::new(HashMap::new()),
        });
        let mut engines = HashMap::new();
        for node in NODES {
            let store = open_store(&url).await.expect("store");
            let engine = Engine::new(store, EngineConfig::default());
            engine.attach_pool(Arc::new(Router {
                me: node,
                net: net.clone(),
            }));
            let (tx, mut rx) = mpsc::unbounded_channel::<(&'static str, Frame)>();
            net.inboxes.lock().expect("lock").insert(node, tx);
            let e = engine.clone();
            tokio::spawn(async move {
                while let Some((from, frame)) = rx.recv().await {
                    e.pool_frame(from, frame).await;
                }
            });
            engines.insert(node, engine);
        }
        Pool {
            net,
            engines,
            _dir: dir,
        }
    }

    fn e(&self, node: &str) -> &Engine {
        &self.engines[node]
    }

    fn set_live(&self, live: &[&'static str]) {
        *self.net.live.lock().expect("lock") = live.to_vec();
        for e in self.engines.values() {
            e.pool_view_changed();
        }
    }

    /// A room name whose home, with every node live, is `node`.
    fn room_homed_on(&self, node: &str, tag: &str) -> String {
        (0..)
            .map(|i| format!("{tag}-{i}"))
            .find(|r| home(r, NODES) == Some(node))
            .expect("some name hashes there")
    }
}

/// A client of `node` (its id carries the node's origin number, as the gateway makes them).
fn client_of(node: &str, n: u64, user: &str) -> Client {
    let id = (u64::from(origin(node)) << CLIENT_ORIGIN_SHIFT) + n;
    client(id, user)
}

/// Joins each `(node, client, nick)` to `room` through its node.
async fn join_all(pool: &Pool, room: &str, who: &[(&str, &Client, &str)]) {
    for (node, c, nick) in who {
        join(pool.e(node), room, c, nick, true).await.expect("join");
    }
}

/// A room homed on `home` with alice (n1) and bob (n2) in it, once alice sees bob.
async fn alice_sees_bob(pool: &Pool, home: &str, tag: &str) -> (String, Client, Client) {
    let room = pool.room_homed_on(home, tag);
    let alice = client_of("n1", 1, "alice@localhost");
    let bob = client_of("n2", 1, "bob@localhost");
    join_all(pool, &room, &[("n1", &alice, "alice"), ("n2", &bob, "bob")]).await;
    collect_until(&alice, "bob", |ev| present(ev, "bob")).await;
    (room, alice, bob)
}

/// Waits (bounded) until `sink` has collected events that satisfy `done`; returns them all.
async fn collect_until(
    c: &Client,
    what: &str,
    done: impl Fn(&[(Arc<RoomEvent>, DeliveryFlags)]) -> bool,
) -> Vec<(Arc<RoomEvent>, DeliveryFlags)> {
    let mut all = Vec::new();
    for _ in 0..200 {
        all.extend(c.sink.take());
        if done(&all) {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "timed out waiting for {what}; got {:?}",
        all.iter().map(|(e, _)| &e.kind).collect::<Vec<_>>()
    );
}

fn bodies(events: &[(Arc<RoomEvent>, DeliveryFlags)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(e, _)| match &e.kind {
            RoomEventKind::Message { message, .. } => Some(message.body.clone()),
            _ => None,
        })
        .collect()
}

fn left(events: &[(Arc<RoomEvent>, DeliveryFlags)], nick: &str) -> bool {
    presences(events)
        .iter()
        .any(|(n, k, _, _)| n == nick && *k == PresenceKind::Unavailable)
}

fn present(events: &[(Arc<RoomEvent>, DeliveryFlags)], nick: &str) -> bool {
    presences(events)
        .iter()
        .any(|(n, k, _, _)| n == nick && *k == PresenceKind::Available)
}

async fn archive(e: &Engine, room: &str, who: &str) -> Vec<(i64, String)> {
    let page = e
        .ask(room, |reply| RoomCommand::QueryArchive {
            actor_user: UserId::parse(who).expect("user"),
            query: HistoryQuery {
                limit: 100,
                ..Default::default()
            },
            after_id: None,
            before_id: None,
            reply,
        })
        .await
        .expect("archive");
    page.messages
        .iter()
        .map(|m| (m.seq, m.body.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_three_nodes_share_a_room_homed_on_one() {
    let pool = Pool::start(&NODES).await;
    let room = pool.room_homed_on("n2", "lobby");
    let alice = client_of("n1", 1, "alice@localhost");
    let bob = client_of("n2", 1, "bob@localhost");
    let carol = client_of("n3", 1, "carol@localhost");
    join(pool.e("n1"), &room, &alice, "alice", true)
        .await
        .expect("alice joins through n1");
    join(pool.e("n2"), &room, &bob, "bob", true)
        .await
        .expect("bob joins on the home");
    join(pool.e("n3"), &room, &carol, "carol", true)
        .await
        .expect("carol joins through n3");
    collect_until(&alice, "alice sees bob and carol", |ev| {
        present(ev, "bob") && present(ev, "carol")
    })
    .await;
    let stored = post(pool.e("n1"), &room, &alice, "from n1")
        .await
        .expect("acknowledged after the home committed it");
    assert_eq!(stored.seq, 1);
    post(pool.e("n3"), &room, &carol, "from n3")
        .await
        .expect("carol posts");
    for c in [&bob, &carol] {
        let ev = collect_until(c, "both messages", |ev| bodies(ev).len() >= 2).await;
        assert_eq!(bodies(&ev), ["from n1", "from n3"]);
    }
    // History reads the same through every node.
    for node in NODES {
        assert_eq!(
            archive(pool.e(node), &room, "alice@localhost").await,
            [(1, "from n1".to_string()), (2, "from n3".to_string())],
            "archive through {node}"
        );
    }
    // Leaving through a forwarding node is seen by the others.
    pool.e("n3")
        .send(
            &room,
            RoomCommand::Leave {
                client: carol.r.id,
                status: None,
            },
        )
        .await;
    collect_until(&alice, "carol leaving", |ev| left(ev, "carol")).await;
    let info = pool.e("n1").room_info(&room).await.expect("info");
    assert_eq!(info.occupants, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_home_dies_the_room_moves_and_its_sessions_leave() {
    let pool = Pool::start(&NODES).await;
    let room = pool.room_homed_on("n2", "dies");
    let alice = client_of("n1", 1, "alice@localhost");
    let bob = client_of("n2", 1, "bob@localhost");
    let carol = client_of("n3", 1, "carol@localhost");
    join_all(
        &pool,
        &room,
        &[
            ("n1", &alice, "alice"),
            ("n2", &bob, "bob"),
            ("n3", &carol, "carol"),
        ],
    )
    .await;
    post(pool.e("n1"), &room, &alice, "before")
        .await
        .expect("posted");
    collect_until(&carol, "the first message", |ev| bodies(ev).len() == 1).await;
    // alice's own copy too, so what follows is only what the move brings.
    collect_until(&alice, "her own message", |ev| !bodies(ev).is_empty()).await;

    pool.set_live(&["n1", "n3"]);
    // alice sees bob (on the dead node) go; carol goes and comes back at the new home.
    let ev = collect_until(&alice, "bob leaving and carol back", |ev| {
        left(ev, "bob") && present(ev, "carol")
    })
    .await;
    assert!(bodies(&ev).is_empty(), "no history replayed on the move");
    let after = post(pool.e("n3"), &room, &carol, "after")
        .await
        .expect("the new home takes posts");
    assert_eq!(after.seq, 2, "the sequence goes on from the store");
    let ev = collect_until(&alice, "the message after the move", |ev| {
        !bodies(ev).is_empty()
    })
    .await;
    assert_eq!(bodies(&ev), ["after"]);
    assert_eq!(
        archive(pool.e("n1"), &room, "alice@localhost").await,
        [(1, "before".to_string()), (2, "after".to_string())]
    );
    let info = pool.e("n3").room_info(&room).await.expect("info");
    assert_eq!(info.occupants, 2, "alice and carol, not bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_sessions_leave_rooms_homed_elsewhere() {
    let pool = Pool::start(&NODES).await;
    let (room, alice, _bob) = alice_sees_bob(&pool, "n1", "stays").await;
    pool.set_live(&["n1", "n3"]);
    collect_until(&alice, "bob leaving with his node", |ev| left(ev, "bob")).await;
    let info = pool.e("n1").room_info(&room).await.expect("info");
    assert_eq!(info.occupants, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_nodes_old_sessions_leave() {
    let pool = Pool::start(&NODES).await;
    let (room, alice, _bob) = alice_sees_bob(&pool, "n1", "restart").await;
    // n2 came back so fast it was never seen down: only its incarnation tells.
    pool.net.incarnations.lock().expect("lock").insert("n2", 2);
    pool.e("n1").pool_view_changed();
    collect_until(&alice, "bob's old session leaving", |ev| left(ev, "bob")).await;
    let info = pool.e("n1").room_info(&room).await.expect("info");
    assert_eq!(info.occupants, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_takes_over_its_rooms() {
    let pool = Pool::start(&["n1", "n3"]).await;
    let room = pool.room_homed_on("n2", "moves");
    let alice = client_of("n1", 1, "alice@localhost");
    let carol = client_of("n3", 1, "carol@localhost");
    join_all(
        &pool,
        &room,
        &[("n1", &alice, "alice"), ("n3", &carol, "carol")],
    )
    .await;
    post(pool.e("n1"), &room, &alice, "one")
        .await
        .expect("post");
    collect_until(&carol, "one", |ev| bodies(ev).len() == 1).await;

    pool.set_live(&NODES);
    collect_until(&carol, "alice back after the move", |ev| {
        left(ev, "alice") && present(ev, "alice")
    })
    .await;
    let two = post(pool.e("n3"), &room, &carol, "two")
        .await
        .expect("post");
    assert_eq!(two.seq, 2);
    let ev = collect_until(&alice, "two", |ev| bodies(ev).contains(&"two".to_string())).await;
    assert_eq!(bodies(&ev).last().map(String::as_str), Some("two"));
    let info = pool
        .e("n2")
        .room_info(&room)
        .await
        .expect("n2 homes it now");
    assert_eq!(info.occupants, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_majority_rooms_are_unavailable() {
    let pool = Pool::start(&["n1"]).await;
    let alice = client_of("n1", 1, "alice@localhost");
    let err = join(pool.e("n1"), "lonely", &alice, "alice", true)
        .await
        .expect_err("a minority homes nothing");
    assert_eq!(err, RoomError::ServiceUnavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_that_finds_its_seq_taken_fails_loudly_then_resyncs() {
    let pool = Pool::start(&NODES).await;
    let room = pool.room_homed_on("n1", "race");
    let alice = client_of("n1", 1, "alice@localhost");
    join(pool.e("n1"), &room, &alice, "alice", true)
        .await
        .expect("join");
    let first = post(pool.e("n1"), &room, &alice, "one")
        .await
        .expect("post");
    // Another writer (a home that was still handing over) takes the next seq.
    let store = pool.e("n2").store().clone();
    let mut other = (*first).clone();
    other.seq = first.seq + 1;
    other.stanza_id = "written-elsewhere".into();
    other.body = "from the old home".into();
    store.append_messages(&[other]).await.expect("appended");

    let err = post(pool.e("n1"), &room, &alice, "two")
        .await
        .expect_err("the duplicate seq is refused, not forked");
    assert_eq!(err, RoomError::Internal);
    let three = post(pool.e("n1"), &room, &alice, "three")
        .await
        .expect("the room took the sequence from the store again");
    assert_eq!(three.seq, first.seq + 2);
    let seqs: Vec<i64> = archive(pool.e("n1"), &room, "alice@localhost")
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
}

/// `alice` (on n1) gets a first message from `poster`, then misses `lost`: the events towards
/// n1 are dropped while `poster` posts them (each acknowledged: committed by the home).
async fn alice_misses(
    pool: &Pool,
    room: &str,
    alice: &Client,
    (node, poster): (&str, &Client),
    lost: &[&str],
) {
    post(pool.e(node), room, poster, "seen")
        .await
        .expect("post");
    collect_until(alice, "the first message", |ev| bodies(ev).len() == 1).await;
    *pool.net.drop_events_to.lock().expect("lock") = Some("n1");
    for body in lost {
        post(pool.e(node), room, poster, body)
            .await
            .expect("acknowledged");
    }
    *pool.net.drop_events_to.lock().expect("lock") = None;
}

/// Waits until `alice` got `last_lost`, then has `poster` post `next` and waits for it too;
/// returns everything `alice` got meanwhile.
async fn then_one_more(
    pool: &Pool,
    room: &str,
    alice: &Client,
    (node, poster): (&str, &Client),
    last_lost: &str,
    next: &str,
) -> Vec<(Arc<RoomEvent>, DeliveryFlags)> {
    let mut all = collect_until(alice, "the missed messages", |ev| {
        bodies(ev).iter().any(|b| b == last_lost)
    })
    .await;
    post(pool.e(node), room, poster, next).await.expect("post");
    all.extend(
        collect_until(alice, "the next message", |ev| {
            bodies(ev).iter().any(|b| b == next)
        })
        .await,
    );
    all
}

fn count_body(events: &[(Arc<RoomEvent>, DeliveryFlags)], body: &str) -> usize {
    bodies(events).iter().filter(|b| *b == body).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_the_dead_home_committed_but_never_sent_arrive_once_after_the_move() {
    let pool = Pool::start(&NODES).await;
    let room = pool.room_homed_on("n2", "catchup");
    let alice = client_of("n1", 1, "alice@localhost");
    let carol = client_of("n3", 1, "carol@localhost");
    join_all(
        &pool,
        &room,
        &[("n1", &alice, "alice"), ("n3", &carol, "carol")],
    )
    .await;
    alice_misses(&pool, &room, &alice, ("n3", &carol), &["lost 1", "lost 2"]).await;
    pool.set_live(&["n1", "n3"]);
    let all = then_one_more(&pool, &room, &alice, ("n3", &carol), "lost 2", "after").await;
    for body in ["lost 1", "lost 2", "after"] {
        assert_eq!(
            count_body(&all, body),
            1,
            "{body} exactly once: {:?}",
            bodies(&all)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_lost_link_the_messages_sent_meanwhile_arrive_once() {
    let pool = Pool::start(&NODES).await;
    let (room, alice, bob) = alice_sees_bob(&pool, "n2", "relink").await;
    alice_misses(&pool, &room, &alice, ("n2", &bob), &["gap"]).await;
    pool.net.links.lock().expect("lock").insert("n2", 2);
    pool.e("n1").pool_view_changed();
    let all = then_one_more(&pool, &room, &alice, ("n2", &bob), "gap", "next").await;
    assert_eq!(bodies(&all), ["gap", "next"]);
    // alice stayed in the room all along: nobody left, nobody re-joined.
    assert!(!left(&all, "bob") && !left(&all, "alice"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_in_several_frames_reaches_every_recipient_once() {
    let pool = Pool::start(&NODES).await;
    pool.net
        .split_events
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let room = pool.room_homed_on("n2", "split");
    let alice = client_of("n1", 1, "alice@localhost");
    let dave = client_of("n1", 2, "dave@localhost");
    let bob = client_of("n2", 1, "bob@localhost");
    join_all(
        &pool,
        &room,
        &[
            ("n1", &alice, "alice"),
            ("n1", &dave, "dave"),
            ("n2", &bob, "bob"),
        ],
    )
    .await;
    for i in 0..5 {
        post(pool.e("n2"), &room, &bob, &format!("m{i}"))
            .await
            .expect("post");
    }
    for c in [&alice, &dave] {
        let ev = collect_until(c, "five messages", |ev| bodies(ev).len() >= 5).await;
        assert_eq!(bodies(&ev), ["m0", "m1", "m2", "m3", "m4"]);
    }
}
