//! The compliance outbox in the main store (SQLite and PostgreSQL) and the drainer: with the
//! compliance database unreachable nothing is lost, and once it is reachable every event arrives
//! in order.

use palaver_core::compliance::*;
use palaver_core::open_store;

fn pg_base() -> String {
    std::env::var("PALAVER_TEST_PG")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".to_string())
}

fn ev(i: i64) -> ComplianceEvent {
    ComplianceEvent {
        at: i,
        room: "lobby".into(),
        actor: "alice@localhost".into(),
        protocol: "xmpp".into(),
        kind: EventKind::Message,
        detail: format!("{{\"n\":{i}}}"),
    }
}

async fn drain_through_outage(store_url: &str) {
    let store = open_store(store_url).await.expect("main store");
    let dir = tempfile::tempdir().expect("tempdir");
    // The compliance database's directory is blocked by a plain file: opening fails.
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, b"x").expect("blocker");
    let url = format!("sqlite://{}", blocker.join("compliance.db").display());

    let events: Vec<_> = (1..=25).map(ev).collect();
    store.outbox_push(&events[..10]).await.expect("push");
    let peek = store.outbox_peek(3).await.expect("peek");
    assert_eq!(
        peek.iter().map(|(_, e)| e.at).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    let mut drainer = Drainer::new(store.clone(), &url);
    drainer.batch = 7;
    assert!(drainer.drain_once().await.is_err());
    assert!(drainer.drain_all().await.is_err());
    store
        .outbox_push(&events[10..])
        .await
        .expect("push while down");
    assert_eq!(store.outbox_peek(100).await.expect("peek").len(), 25);

    std::fs::remove_file(&blocker).expect("unblock");
    assert_eq!(drainer.drain_all().await.expect("drain"), 25);
    assert!(store.outbox_peek(100).await.expect("peek").is_empty());

    let db = ComplianceDb::open(&url).await.expect("compliance db");
    assert_eq!(
        db.verify().await.expect("verify"),
        Verdict::Ok {
            count: 25,
            last_seq: 25
        }
    );
    let mut seen = Vec::new();
    db.for_each(&Filter::default(), |r| {
        seen.push(r.event);
        Ok(())
    })
    .await
    .expect("read");
    assert_eq!(seen, events);
    assert_eq!(
        store
            .outbox_delete(&[1, 2, 3, i64::MAX])
            .await
            .expect("delete"),
        0
    );
}

#[tokio::test]
async fn sqlite_outbox_survives_outage() {
    let dir = tempfile::tempdir().expect("tempdir");
    drain_through_outage(&format!(
        "sqlite://{}",
        dir.path().join("main.db").display()
    ))
    .await;
}

#[tokio::test]
async fn postgres_outbox_survives_outage() {
    let schema = format!("o_{}", uuid::Uuid::new_v4().simple());
    let base = pg_base();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let outcome =
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(drain_through_outage(&url)))
            .await;
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await {
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await;
    }
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}

/// Two drainers on one outbox (two pool nodes), and a batch delivered again after a crash: every
/// event is archived exactly once, in order, and the chain holds.
async fn drain_exactly_once(store_url: &str) {
    let store = open_store(store_url).await.expect("main store");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("compliance.db").display());
    let events: Vec<_> = (1..=300).map(ev).collect();
    store.outbox_push(&events).await.expect("push");
    let replay = store.outbox_peek(40).await.expect("peek");

    let mut a = Drainer::new(store.clone(), &url);
    let mut b = Drainer::new(store.clone(), &url);
    a.batch = 25;
    b.batch = 25;
    let (ra, rb) = tokio::join!(a.drain_all(), b.drain_all());
    ra.expect("drainer a");
    rb.expect("drainer b");
    assert!(store.outbox_peek(10).await.expect("peek").is_empty());

    // A crash after the compliance commit and before the outbox delete copies a batch again.
    let db = ComplianceDb::open(&url).await.expect("compliance db");
    let source = palaver_core::compliance::source_id(&store)
        .await
        .expect("source");
    let (_, added) = db
        .append_from_outbox(&source, &replay)
        .await
        .expect("again");
    assert_eq!(added, 0, "a batch already archived is skipped");

    assert_eq!(
        db.verify().await.expect("verify"),
        Verdict::Ok {
            count: 300,
            last_seq: 300
        }
    );
    let mut seen = Vec::new();
    db.for_each(&Filter::default(), |r| {
        seen.push(r.event);
        Ok(())
    })
    .await
    .expect("read");
    assert_eq!(seen, events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_drains_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    drain_exactly_once(&format!(
        "sqlite://{}",
        dir.path().join("main.db").display()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_drains_exactly_once() {
    let schema = format!("o_{}", uuid::Uuid::new_v4().simple());
    let base = pg_base();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let outcome =
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(drain_exactly_once(&url)))
            .await;
    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await {
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await;
    }
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
