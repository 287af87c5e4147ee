//! The shared store behaviour suite (`common/mod.rs`) on the SQLite backend, each test on a
//! fresh file database in its own temporary directory (whose parent directories `open` has to
//! create), plus SQLite-only checks: `sqlite::memory:` and URL handling.

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
