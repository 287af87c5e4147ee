//! Unit tests of [`super::Membership`]: heartbeats bring a member up, silence takes it down
//! after `dead_after_ms` and promotes the standby, a full peer queue drops the link.

use super::Membership;
use crate::config::Config;
use palaver_core::pool::{Frame, MemberState, Role};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

fn membership() -> Arc<Membership> {
    let mut c = Config::from_toml(
        r#"
[pool]
node_id = "n1"
heartbeat_ms = 100
dead_after_ms = 500
peer_queue = 16
members = [
  { id = "n1", address = "127.0.0.1:1" },
  { id = "n2", address = "127.0.0.2:1" },
  { id = "n3", address = "127.0.0.3:1" },
  { id = "s1", address = "127.0.0.4:1", role = "standby" },
]
"#,
    )
    .expect("parses");
    c.validate().expect("valid");
    Membership::new(
        Arc::new(c.pool.expect("pool")),
        7,
        tokio::sync::watch::Sender::new(None),
    )
}

fn info(m: &Membership, id: &str) -> palaver_core::pool::MemberInfo {
    m.report()
        .members
        .into_iter()
        .find(|e| e.id == id)
        .expect("member")
}

fn member(m: &Membership, id: &str) -> (MemberState, Role) {
    let e = info(m, id);
    (e.state, e.effective)
}

#[test]
fn heartbeats_bring_up_and_silence_takes_down_with_promotion() {
    let m = membership();
    assert_eq!(member(&m, "n1"), (MemberState::Up, Role::Active));
    assert_eq!(member(&m, "n2").0, MemberState::Down);
    assert!(!m.report().majority, "only itself of three actives");
    for id in ["n2", "n3", "s1"] {
        m.seen(id, 1);
    }
    assert!(m.report().majority);
    assert_eq!(member(&m, "s1"), (MemberState::Up, Role::Standby));
    let v1 = m.summary().version;

    m.check(Instant::now());
    assert_eq!(member(&m, "n2").0, MemberState::Up, "fresh heartbeat");
    m.check(Instant::now() + Duration::from_millis(600));
    for id in ["n2", "n3", "s1"] {
        assert_eq!(
            member(&m, id).0,
            MemberState::Down,
            "{id} silent for 600 ms"
        );
    }
    assert!(m.summary().version > v1);
    assert!(!m.report().majority);

    m.seen("n3", 1);
    m.seen("s1", 1);
    assert_eq!(
        member(&m, "s1"),
        (MemberState::Up, Role::Active),
        "stands in for n2"
    );
    assert!(m.report().majority);
    m.seen("n2", 2);
    assert_eq!(member(&m, "s1"), (MemberState::Up, Role::Standby));
    let n2 = info(&m, "n2");
    assert_eq!(n2.incarnation, 2);
}

#[test]
fn a_full_queue_drops_the_link() {
    let m = membership();
    let (tx, mut rx) = mpsc::channel(2);
    let id = m.register_link("n2", tx);
    assert!(
        matches!(rx.try_recv(), Ok(Frame::MembershipView(_))),
        "view first"
    );
    let hb = Frame::AdminRequest {
        id: 0,
        request: palaver_core::pool::AdminRequest::Status,
    };
    m.broadcast(&hb);
    m.broadcast(&hb);
    m.broadcast(&hb); // queue of 2 is full: the link is dropped
    let mut got = 0;
    while rx.try_recv().is_ok() {
        got += 1;
    }
    assert_eq!(got, 2);
    assert!(matches!(
        rx.try_recv(),
        Err(mpsc::error::TryRecvError::Disconnected)
    ));
    m.unregister_link("n2", id);
    let n2 = info(&m, "n2");
    assert_eq!(n2.links, 1);
}

#[test]
fn errors_are_reported_once() {
    let m = membership();
    assert!(m.record_error("n2", "refused"));
    assert!(!m.record_error("n2", "refused"));
    assert!(m.record_error("n2", "timeout"));
    m.seen("n2", 1);
    let n2 = info(&m, "n2");
    assert_eq!(n2.last_error, "", "cleared when it comes up");
}

#[test]
fn draining_moves_homes_and_sends_clients_to_an_up_member() {
    use palaver_core::engine::{PoolRouter, Route};
    let mut c = Config::from_toml(
        r#"
[pool]
node_id = "n1"
members = [
  { id = "n1", address = "127.0.0.1:1", xmpp = "n1.example:5222" },
  { id = "n2", address = "127.0.0.2:1" },
  { id = "n3", address = "127.0.0.3:1", xmpp = "n3.example:5222" },
]
"#,
    )
    .expect("parses");
    c.validate().expect("valid");
    let (tx, rx) = tokio::sync::watch::channel(None);
    let m = Membership::new(Arc::new(c.pool.expect("pool")), 7, tx);
    assert_eq!(m.route("any"), Route::Unavailable, "no majority alone");
    m.seen("n2", 1);
    m.seen("n3", 1);
    let homed_here: Vec<String> = (0..60)
        .map(|i| format!("room-{i}"))
        .filter(|r| m.route(r) == Route::Local)
        .collect();
    assert!(!homed_here.is_empty());
    assert_eq!(*rx.borrow(), None);

    m.set_draining(true);
    assert!(m.is_draining());
    assert_eq!(member(&m, "n1").0, MemberState::Draining);
    assert!(
        m.report().majority,
        "a draining member still counts for the majority"
    );
    for r in &homed_here {
        assert!(
            matches!(m.route(r), Route::Remote(_)),
            "{r} must leave the draining node"
        );
    }
    // n2 (first up by id) has no xmpp address: the first one that has one, n3.
    assert_eq!(rx.borrow().as_deref(), Some("n3.example:5222"));

    m.set_draining(false);
    assert_eq!(member(&m, "n1").0, MemberState::Up);
    assert_eq!(*rx.borrow(), None);
    for r in &homed_here {
        assert_eq!(m.route(r), Route::Local, "{r} comes back");
    }

    // A peer's heartbeat flag drains it in this node's view.
    let on_n2: Vec<String> = (0..60)
        .map(|i| format!("room-{i}"))
        .filter(|r| m.route(r) == Route::Remote(Arc::from("n2")))
        .collect();
    m.peer_draining("n2", true);
    assert_eq!(member(&m, "n2").0, MemberState::Draining);
    for r in &on_n2 {
        assert_ne!(m.route(r), Route::Remote(Arc::from("n2")));
    }
    m.peer_draining("n2", false);
    assert_eq!(member(&m, "n2").0, MemberState::Up);
}
