//! The store behaviour suite, shared by `store_sqlite.rs` and `store_postgres.rs` so both
//! backends are held to exactly the same semantics.
//!
//! Each test is an async fn taking a [`Ctx`] (a freshly opened, empty store and the URL it was
//! opened from). A backend's test file provides `run(test)`, which makes a fresh database,
//! opens it, runs the test and cleans up, and instantiates every test with
//! `common::store_suite!(run);`.

#![allow(dead_code)]

use futures::future::BoxFuture;
use palaver_core::*;
use std::sync::Arc;

mod catalog;
mod files;
mod messages;
mod sip;
pub use catalog::*;
pub use files::*;
pub use messages::*;
pub use sip::*;

/// What a test gets: an empty, migrated store and the URL that opens it again.
pub struct Ctx {
    pub url: String,
    pub store: Arc<dyn Store>,
}

/// One suite test.
pub type TestFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, ()>;

/// Declares one `#[tokio::test]` per suite test, each run through `$run(test).await`.
macro_rules! store_suite {
    ($run:path) => {
        common::store_suite!(@each $run;
            users_crud, users_bulk_create, categories_crud, rooms_crud, room_config_round_trip,
            delete_room_cascades, delete_category_keeps_rooms, affiliations,
            append_batches_and_conflicts, last_seq_and_large_batches, history_queries,
            count_messages, large_archive_time_bounds_and_counts, message_by_stanza_id, reopen_keeps_data,
            users_sip_digest, passwd_sets_sip_digest, registrations_upsert_and_list,
            registrations_expire, registrations_remove, files_metadata, shared_secrets, messages_commit_with_outbox);

        #[tokio::test]
        #[ignore = "timing only: cargo test -- --ignored --nocapture"]
        async fn append_timing() {
            fn f<'a>(cx: &'a common::Ctx) -> futures::future::BoxFuture<'a, ()> {
                Box::pin(common::append_timing(cx))
            }
            $run(f).await
        }
    };
    (@each $run:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                fn f<'a>(cx: &'a common::Ctx) -> futures::future::BoxFuture<'a, ()> {
                    Box::pin(common::$name(cx))
                }
                $run(f).await
            }
        )*
    };
}
pub(crate) use store_suite;

// ---- fixtures ----

fn uid(s: &str) -> UserId {
    UserId::parse(s).expect("user id")
}

fn cred(tag: u8, iterations: u32) -> ScramCredential {
    ScramCredential {
        salt: vec![tag, 0, 255, 1],
        iterations,
        stored_key: vec![tag; 20],
        server_key: vec![tag.wrapping_add(1); 32],
    }
}

/// A user with SCRAM credentials and a SIP digest, all derived from `tag` (fake values).
pub fn user(name: &str, tag: u8) -> UserRecord {
    let user = uid(name);
    let sip_digest = Some(SipDigest {
        realm: user.domain().to_string(),
        ha1_md5: format!("{tag:02x}").repeat(16),
        ha1_sha256: format!("{:02x}", tag.wrapping_add(7)).repeat(32),
    });
    UserRecord {
        user,
        scram_sha1: cred(tag, 4096),
        scram_sha256: cred(tag.wrapping_add(100), 10_000),
        sip_digest,
        created_at: 1_700_000_000_000 + i64::from(tag),
    }
}

/// [`user`] without SIP digest credentials, like an account made before palaver kept them.
pub fn legacy_user(name: &str, tag: u8) -> UserRecord {
    UserRecord {
        sip_digest: None,
        ..user(name, tag)
    }
}

pub fn category(name: &str) -> Category {
    Category {
        id: uuid::Uuid::new_v4(),
        name: name.to_string(),
        description: format!("about {name}"),
        creators: vec![
            Principal::User(uid("boss@example.com")),
            Principal::Domain("example.com".into()),
        ],
        members: vec![Principal::Anyone],
        created_at: 1_700_000_000_123,
    }
}

pub fn room(name: &str) -> RoomRecord {
    RoomRecord {
        id: 0,
        name: name.to_string(),
        category: None,
        config: RoomConfig::default(),
        subject: String::new(),
        subject_nick: String::new(),
        locked: false,
        created_at: 1_700_000_000_456,
    }
}

pub fn msg(room: RoomId, seq: i64, sender: &str) -> StoredMessage {
    StoredMessage {
        room_id: room,
        seq,
        stanza_id: format!("s-{room}-{seq}"),
        origin_id: format!("o-{seq}"),
        sender: uid(sender),
        nick: sender.split('@').next().unwrap_or_default().to_string(),
        occupant_id: format!("occ-{sender}"),
        body: format!("message {seq} in {room} ✓"),
        extra: (seq % 3 == 0).then(|| format!("<x seq='{seq}'/>")),
        ts: 1_000 + seq * 10,
    }
}

async fn new_room(s: &dyn Store, name: &str) -> RoomId {
    s.create_room(&room(name)).await.expect("create room")
}

fn seqs(rows: &[StoredMessage]) -> Vec<i64> {
    rows.iter().map(|m| m.seq).collect()
}

/// A history query with room for every row (limit 100), to narrow with [`QueryExt`].
pub fn hq() -> HistoryQuery {
    HistoryQuery {
        limit: 100,
        ..Default::default()
    }
}

/// Builder-style setters for `HistoryQuery`, so test tables stay one line per case.
pub trait QueryExt {
    fn after(self, seq: i64) -> Self;
    fn before(self, seq: i64) -> Self;
    fn start(self, ts: Millis) -> Self;
    fn end(self, ts: Millis) -> Self;
    fn sender(self, user: &str) -> Self;
    fn limit(self, n: u32) -> Self;
    /// `from_end = true`: the newest `limit` rows.
    fn newest(self) -> Self;
}

impl QueryExt for HistoryQuery {
    fn after(self, seq: i64) -> Self {
        HistoryQuery {
            after_seq: Some(seq),
            ..self
        }
    }
    fn before(self, seq: i64) -> Self {
        HistoryQuery {
            before_seq: Some(seq),
            ..self
        }
    }
    fn start(self, ts: Millis) -> Self {
        HistoryQuery {
            start: Some(ts),
            ..self
        }
    }
    fn end(self, ts: Millis) -> Self {
        HistoryQuery {
            end: Some(ts),
            ..self
        }
    }
    fn sender(self, user: &str) -> Self {
        HistoryQuery {
            sender: Some(uid(user)),
            ..self
        }
    }
    fn limit(self, limit: u32) -> Self {
        HistoryQuery { limit, ..self }
    }
    fn newest(self) -> Self {
        HistoryQuery {
            from_end: true,
            ..self
        }
    }
}
