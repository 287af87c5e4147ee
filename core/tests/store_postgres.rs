//! The shared store behaviour suite (`common/mod.rs`) on the PostgreSQL backend.
//!
//! The server comes from `PALAVER_TEST_PG`, else `DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1/test`. An unreachable server fails the tests (they never
//! skip). Each test runs in its own schema (`schema=t_<random>`), so tests run in parallel; the
//! schema is dropped afterwards, also when the test fails (best effort). PostgreSQL-only checks:
//! schema names and isolation, and upgrading a schema made by an older palaver.

mod common;

use common::Ctx;
use futures::FutureExt;
use palaver_core::*;
use sqlx::Connection;
use std::panic::AssertUnwindSafe;

fn base_url() -> String {
    std::env::var("PALAVER_TEST_PG")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".to_string())
}

fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

async fn drop_schema(schema: &str) {
    match sqlx::PgConnection::connect(&base_url()).await {
        Ok(mut conn) => {
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
            {
                eprintln!("could not drop schema {schema}: {e}");
            }
            let _ = conn.close().await;
        }
        Err(e) => eprintln!("could not drop schema {schema}: {e}"),
    }
}

async fn run(test: common::TestFn) {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let url = with_param(&base_url(), &format!("schema={schema}"));
    let store = match open_store(&url).await {
        Ok(store) => store,
        Err(e) => {
            drop_schema(&schema).await;
            panic!(
                "PostgreSQL at {} is required for these tests: {e}",
                base_url()
            );
        }
    };
    assert_eq!(store.backend(), "postgres");
    let cx = Ctx { url, store };
    let outcome = AssertUnwindSafe(test(&cx)).catch_unwind().await;
    drop(cx);
    drop_schema(&schema).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

common::store_suite!(run);

#[tokio::test]
async fn bad_schema_names_are_refused() {
    for schema in ["Upper", "semi;colon", "quo\"te", ""] {
        let url = with_param(&base_url(), &format!("schema={schema}"));
        assert!(
            matches!(open_store(&url).await, Err(StoreError::BadUrl(_))),
            "{schema:?}"
        );
    }
}

#[tokio::test]
async fn schemas_are_isolated() {
    let one = format!("t_{}", uuid::Uuid::new_v4().simple());
    let two = format!("t_{}", uuid::Uuid::new_v4().simple());
    let a = open_store(&with_param(&base_url(), &format!("schema={one}")))
        .await
        .expect("open");
    let b = open_store(&with_param(&base_url(), &format!("schema={two}")))
        .await
        .expect("open");
    a.create_room(&common::room("isolated"))
        .await
        .expect("room");
    let seen = b.get_room("isolated").await.expect("get");
    drop((a, b));
    drop_schema(&one).await;
    drop_schema(&two).await;
    assert!(seen.is_none());
}

/// A schema migrated only to 0001 (users without SIP columns) opens, migrates and keeps its
/// users, with no SIP digest until their password is set again.
#[tokio::test]
async fn upgrade_from_0001_keeps_users_without_sip_digest() {
    use sqlx::postgres::PgConnectOptions;
    use std::str::FromStr;

    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let outcome = AssertUnwindSafe(async {
        let mut conn = sqlx::PgConnection::connect(&base_url())
            .await
            .expect("connect");
        let create = format!("CREATE SCHEMA \"{schema}\"");
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut conn)
            .await
            .expect("schema");
        conn.close().await.expect("close");
        let options = PgConnectOptions::from_str(&base_url())
            .expect("url")
            .options([("search_path", schema.as_str())]);
        let mut conn = sqlx::PgConnection::connect_with(&options)
            .await
            .expect("connect");
        let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
        sqlx::migrate::Migrator::new(std::path::Path::new(migrations))
            .await
            .expect("migrations")
            .run_to(1, &mut conn)
            .await
            .expect("migrate to 0001");
        sqlx::query(
            "INSERT INTO users (user_id, sha1_salt, sha1_iter, sha1_stored, sha1_server, \
             sha256_salt, sha256_iter, sha256_stored, sha256_server, created_at) \
             VALUES ('old@example.com', '\\x01', 4096, '\\x02', '\\x03', '\\x04', 4096, \
             '\\x05', '\\x06', 7)",
        )
        .execute(&mut conn)
        .await
        .expect("legacy user");
        conn.close().await.expect("close");

        let store = open_store(&with_param(&base_url(), &format!("schema={schema}")))
            .await
            .expect("open and migrate");
        let old = UserId::parse("old@example.com").expect("id");
        common::legacy_rows_after_upgrade(&*store, &old).await;
    })
    .catch_unwind()
    .await;
    drop_schema(&schema).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
