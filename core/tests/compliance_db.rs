//! The compliance database on SQLite and PostgreSQL: append and verify, a tampered row is named
//! by verify, exports parse back, purge keeps the chain verifiable.
//!
//! PostgreSQL comes from `PALAVER_TEST_PG`, else `DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1/test`; unreachable fails the test. Each test uses a fresh
//! schema, dropped afterwards.

use palaver_core::compliance::*;
use sqlx::Connection;

fn pg_base() -> String {
    std::env::var("PALAVER_TEST_PG")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".to_string())
}

/// A fresh database of the backend: the URL and the schema to drop (PostgreSQL).
fn fresh(backend: &str, dir: &tempfile::TempDir) -> (String, Option<String>) {
    if backend == "sqlite" {
        let path = dir.path().join("compliance.db");
        (format!("sqlite://{}", path.display()), None)
    } else {
        let schema = format!("c_{}", uuid::Uuid::new_v4().simple());
        let base = pg_base();
        let sep = if base.contains('?') { '&' } else { '?' };
        (format!("{base}{sep}schema={schema}"), Some(schema))
    }
}

async fn drop_schema(schema: Option<String>) {
    let Some(schema) = schema else { return };
    if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_base()).await {
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

fn ev(i: i64, room: &str, kind: EventKind, detail: &str) -> ComplianceEvent {
    ComplianceEvent {
        at: 1_000 + i,
        room: room.to_string(),
        actor: format!("user{i}@localhost"),
        protocol: if i % 2 == 0 { "xmpp" } else { "sip" }.to_string(),
        kind,
        detail: detail.to_string(),
    }
}

fn sample(n: i64) -> Vec<ComplianceEvent> {
    (1..=n)
        .map(|i| {
            let kind = EventKind::ALL[usize::try_from(i).unwrap_or(0) % EventKind::ALL.len()];
            let detail = serde_json::json!({"body": format!("hi, \"{i}\"\n<b>&</b>")}).to_string();
            ev(i, if i % 3 == 0 { "ops" } else { "lobby" }, kind, &detail)
        })
        .collect()
}

async fn exec(db: &ComplianceDb, sql: &str) {
    match db {
        ComplianceDb::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(p)
            .await
            .map(|_| ()),
        ComplianceDb::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(p)
            .await
            .map(|_| ()),
    }
    .expect("raw sql");
}

async fn append_verify_tamper(db: ComplianceDb) {
    assert_eq!(
        db.verify().await.expect("verify"),
        Verdict::Ok {
            count: 0,
            last_seq: 0
        }
    );
    let events = sample(10);
    assert_eq!(db.append(&events[..4]).await.expect("append"), 4);
    assert_eq!(db.append(&events[4..]).await.expect("append"), 10);
    assert_eq!(db.append(&[]).await.expect("append"), 10);
    assert_eq!(
        db.verify().await.expect("verify"),
        Verdict::Ok {
            count: 10,
            last_seq: 10
        }
    );

    exec(
        &db,
        "UPDATE compliance_events SET detail = '{\"body\":\"forged\"}' WHERE seq = 7",
    )
    .await;
    match db.verify().await.expect("verify") {
        Verdict::Broken { seq, .. } => assert_eq!(seq, 7),
        other => panic!("tampering not seen: {other:?}"),
    }
}

async fn deleted_row_and_cut_tail(db: ComplianceDb) {
    db.append(&sample(5)).await.expect("append");
    exec(&db, "DELETE FROM compliance_events WHERE seq = 5").await;
    assert!(matches!(
        db.verify().await.expect("verify"),
        Verdict::Broken { seq: 5, .. }
    ));
    exec(&db, "DELETE FROM compliance_events WHERE seq = 3").await;
    assert!(matches!(
        db.verify().await.expect("verify"),
        Verdict::Broken { seq: 3, .. }
    ));
}

async fn exports_parse_back(db: ComplianceDb) {
    let events = sample(12);
    db.append(&events).await.expect("append");
    let mut seen = Vec::new();
    let filter = Filter::default();
    let mut out = Vec::new();
    let n = export(&db, &filter, Format::Jsonl, &mut out, &mut |k| seen.push(k))
        .await
        .expect("export");
    assert_eq!(n, 12);
    assert_eq!(seen.last(), Some(&12));
    let text = String::from_utf8(out).expect("utf8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 12);
    for (i, (line, e)) in lines.iter().zip(&events).enumerate() {
        assert_eq!(line["seq"], serde_json::json!(i + 1));
        assert_eq!(line["kind"], e.kind.as_str());
        assert_eq!(line["actor"], e.actor.as_str());
        let detail: serde_json::Value = serde_json::from_str(&e.detail).expect("detail");
        assert_eq!(line["detail"], detail);
    }

    // CSV: a small RFC 4180 reader (quoted fields with "" and embedded newlines).
    let mut out = Vec::new();
    let room = Filter {
        room: Some("ops".into()),
        from: Some(1_004),
        to: Some(1_012),
    };
    export(&db, &room, Format::Csv, &mut out, &mut |_| {})
        .await
        .expect("export");
    let records = parse_csv(&String::from_utf8(out).expect("utf8"));
    assert_eq!(
        records[0].join(","),
        "seq,at,room,actor,protocol,kind,detail,prev_hash,hash"
    );
    let rows = &records[1..];
    let want: Vec<&ComplianceEvent> = events
        .iter()
        .filter(|e| e.room == "ops" && e.at >= 1_004 && e.at < 1_012)
        .collect();
    assert_eq!(rows.len(), want.len());
    assert_eq!(rows.len(), 2);
    for (r, e) in rows.iter().zip(want) {
        assert_eq!(r[2], e.room);
        assert_eq!(r[6], e.detail);
        assert_eq!(r[1], e.at.to_string());
    }

    let mut out = Vec::new();
    export(&db, &filter, Format::Xml, &mut out, &mut |_| {})
        .await
        .expect("export");
    let xml = String::from_utf8(out).expect("utf8");
    assert_eq!(xml.matches("<event ").count(), 12);
    assert!(xml.contains("&lt;b&gt;&amp;&lt;/b&gt;"));
    assert!(!xml.contains("<b>"));
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

async fn purge_then_verify(db: ComplianceDb) {
    db.append(&sample(10)).await.expect("append");
    // Rows at 1001..=1010; purge before 1005 removes seq 1..=4.
    assert_eq!(db.purge(1_005).await.expect("purge"), 4);
    assert_eq!(db.chain_start().await.expect("start").0, 4);
    assert_eq!(
        db.verify().await.expect("verify"),
        Verdict::Ok {
            count: 6,
            last_seq: 10
        }
    );
    assert_eq!(db.purge(1_005).await.expect("purge"), 0);
    db.append(&sample(2)).await.expect("append more");
    assert_eq!(
        db.verify().await.expect("verify"),
        Verdict::Ok {
            count: 8,
            last_seq: 12
        }
    );
    // Everything goes; the chain continues from the tail.
    assert_eq!(db.purge(i64::MAX).await.expect("purge"), 8);
    assert_eq!(
        db.verify().await.expect("verify"),
        Verdict::Ok {
            count: 0,
            last_seq: 12
        }
    );
    assert_eq!(db.append(&sample(1)).await.expect("append"), 13);
    assert_eq!(
        db.verify().await.expect("verify"),
        Verdict::Ok {
            count: 1,
            last_seq: 13
        }
    );
    // Deleting the first kept row is still seen.
    exec(&db, "DELETE FROM compliance_events WHERE seq = 13").await;
    assert!(matches!(
        db.verify().await.expect("verify"),
        Verdict::Broken { seq: 13, .. }
    ));
}

macro_rules! on_both {
    ($($name:ident),*) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let dir = tempfile::tempdir().expect("tempdir");
                let (url, _) = super::fresh("sqlite", &dir);
                let db = super::ComplianceDb::open(&url).await.expect("open");
                super::$name(db).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                let dir = tempfile::tempdir().expect("tempdir");
                let (url, schema) = super::fresh("postgres", &dir);
                let db = match super::ComplianceDb::open(&url).await {
                    Ok(db) => db,
                    Err(e) => panic!("PostgreSQL at {} is required: {e}", super::pg_base()),
                };
                assert_eq!(db.backend(), "postgres");
                let outcome = futures::FutureExt::catch_unwind(
                    std::panic::AssertUnwindSafe(super::$name(db)),
                ).await;
                super::drop_schema(schema).await;
                if let Err(p) = outcome {
                    std::panic::resume_unwind(p);
                }
            })*
        }
    };
}

on_both!(
    append_verify_tamper,
    deleted_row_and_cut_tail,
    exports_parse_back,
    purge_then_verify
);

#[tokio::test]
async fn memory_and_bad_urls() {
    let db = ComplianceDb::open("sqlite::memory:").await.expect("memory");
    db.append(&sample(3)).await.expect("append");
    assert_eq!(
        db.verify().await.expect("verify"),
        Verdict::Ok {
            count: 3,
            last_seq: 3
        }
    );
    assert!(matches!(
        ComplianceDb::open("mysql://x").await,
        Err(ComplianceError::BadUrl(_))
    ));
}

/// Export rate of 1M events from a SQLite compliance database (no assertion on time):
/// `cargo test --release -p palaver-core --test compliance_db -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn export_rate_1m() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _) = fresh("sqlite", &dir);
    let db = ComplianceDb::open(&url).await.expect("open");
    let total = 1_000_000i64;
    let started = std::time::Instant::now();
    for chunk in 0..total / 10_000 {
        let events: Vec<_> = (0..10_000)
            .map(|i| {
                let n = chunk * 10_000 + i;
                ev(
                    n,
                    "lobby",
                    EventKind::Message,
                    &format!("{{\"body\":\"message {n}\"}}"),
                )
            })
            .collect();
        db.append(&events).await.expect("append");
    }
    let appended = started.elapsed();
    let started = std::time::Instant::now();
    let mut out = std::io::BufWriter::new(std::io::sink());
    let n = export(
        &db,
        &Filter::default(),
        Format::Jsonl,
        &mut out,
        &mut |_| {},
    )
    .await
    .expect("export");
    let exported = started.elapsed();
    assert_eq!(n, 1_000_000);
    println!(
        "append: {:.0} events/s; export jsonl: {:.0} events/s ({n} events in {:.2?})",
        n as f64 / appended.as_secs_f64(),
        n as f64 / exported.as_secs_f64(),
        exported
    );
}
