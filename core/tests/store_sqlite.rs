//! The shared store behaviour suite (`common/mod.rs`) on the SQLite backend, each test on a
//! fresh file database in its own temporary directory (whose parent directories `open` has to
//! create), plus SQLite-only checks: `sqlite::memory:`, URL handling and upgrading a database
//! made by an older palaver.

mod common;

use common::Ctx;
use palaver_core::*;

async fn run(test: common::TestFn) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/nested/dirs/store.db", dir.path().display());
    let store = open_store(&url).await.expect("open sqlite store");
    assert_eq!(store.backend(), "sqlite");
    test(&Ctx { url, store }).await;
}

common::store_suite!(run);

/// The suite's message tests again on an in-memory database (one shared connection).
async fn run_memory(test: common::TestFn) {
    let url = "sqlite::memory:".to_string();
    let store = open_store(&url).await.expect("open memory store");
    test(&Ctx { url, store }).await;
}

#[tokio::test]
async fn memory_store_behaves_the_same() {
    run_memory(|cx| Box::pin(common::append_batches_and_conflicts(cx))).await;
    run_memory(|cx| Box::pin(common::history_queries(cx))).await;
    run_memory(|cx| Box::pin(common::rooms_crud(cx))).await;
    run_memory(|cx| Box::pin(common::affiliations(cx))).await;
    run_memory(|cx| Box::pin(common::registrations_expire(cx))).await;
}

#[tokio::test]
async fn memory_stores_are_separate() {
    let a = open_store("sqlite::memory:").await.expect("a");
    let b = open_store("sqlite::memory:").await.expect("b");
    a.create_room(&common::room("only-in-a"))
        .await
        .expect("room");
    assert!(b.get_room("only-in-a").await.expect("get").is_none());
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in ["mysql://x/y", "file.db", ""] {
        assert!(
            matches!(open_store(url).await, Err(StoreError::BadUrl(_))),
            "{url}"
        );
    }
    assert!(matches!(
        palaver_core::store::SqliteStore::open("postgres://x/y").await,
        Err(StoreError::BadUrl(_))
    ));
}

/// A database migrated only to 0001 (users without SIP columns) opens, migrates and keeps its
/// users, with no SIP digest until their password is set again.
#[tokio::test]
async fn upgrade_from_0001_keeps_users_without_sip_digest() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    use std::str::FromStr;

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/old.db", dir.path().display());
    let options = SqliteConnectOptions::from_str(&url)
        .expect("url")
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.expect("connect");
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    sqlx::migrate::Migrator::new(std::path::Path::new(migrations))
        .await
        .expect("migrations")
        .run_to(1, &pool)
        .await
        .expect("migrate to 0001");
    sqlx::query(
        "INSERT INTO users (user_id, sha1_salt, sha1_iter, sha1_stored, sha1_server, \
         sha256_salt, sha256_iter, sha256_stored, sha256_server, created_at) \
         VALUES ('old@example.com', X'01', 4096, X'02', X'03', X'04', 4096, X'05', X'06', 7)",
    )
    .execute(&pool)
    .await
    .expect("legacy user");
    pool.close().await;

    let store = open_store(&url).await.expect("open and migrate");
    let old = UserId::parse("old@example.com").expect("id");
    common::legacy_rows_after_upgrade(&*store, &old).await;
}
