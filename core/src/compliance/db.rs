//! The compliance database: its own URL (`sqlite://…`, `sqlite::memory:`, `postgres://…`, with
//! the same `schema=NAME` parameter as the main store), its own migrations
//! (`core/migrations/compliance/{sqlite,postgres}`), append in batches, verification of the hash
//! chain, purge. The SQL text is the same on both backends; `on_pool!` writes each method's body
//! once and instantiates it for the backend's pool type.

use super::chain::row_hash;
use super::event::{ComplianceEvent, EventKind, StoredEvent};
use super::ComplianceError;
use futures::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Connection, Row};
use std::str::FromStr;
use std::time::Duration;

/// Result of [`ComplianceDb::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The chain holds: `count` rows checked, the last one `last_seq` (the chain start's seq
    /// when empty).
    Ok { count: u64, last_seq: i64 },
    /// The first row that does not fit the chain, and why.
    Broken { seq: i64, reason: String },
}

/// Which rows an export or a purge reads: `at` in `[from, to)`, one room or all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub room: Option<String>,
}

const GET_HEAD: &str = "SELECT seq, hash FROM compliance_head WHERE id = 1";
/// Takes the writers' lock (row lock on PostgreSQL; SQLite holds the write lock already).
const LOCK_HEAD: &str = "UPDATE compliance_head SET seq = seq WHERE id = 1";
const SET_HEAD: &str = "UPDATE compliance_head SET seq = $1, hash = $2 WHERE id = 1";
const GET_START: &str = "SELECT seq, hash FROM compliance_chain_start WHERE id = 1";
const SET_START: &str = "UPDATE compliance_chain_start SET seq = $1, hash = $2 WHERE id = 1";
const INSERT: &str = "INSERT INTO compliance_events \
     (seq, at, room, actor, protocol, kind, detail, prev_hash, hash, origin_source, origin_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
/// Binds: source, lowest and highest outbox id of a batch. Which of them are archived already.
const ARCHIVED_ORIGINS: &str = "SELECT origin_id FROM compliance_events \
     WHERE origin_source = $1 AND origin_id >= $2 AND origin_id <= $3";
const ALL_ROWS: &str = "SELECT seq, at, room, actor, protocol, kind, detail, prev_hash, hash \
     FROM compliance_events ORDER BY seq";
const FILTERED_ROWS: &str = "SELECT seq, at, room, actor, protocol, kind, detail, prev_hash, \
     hash FROM compliance_events WHERE at >= $1 AND at < $2 AND ($3 = '' OR room = $3) \
     ORDER BY seq";
const COUNT_FILTERED: &str = "SELECT COUNT(*) FROM compliance_events \
     WHERE at >= $1 AND at < $2 AND ($3 = '' OR room = $3)";
/// Binds: before. The first seq that stays (rows are purged as a prefix of the chain).
const FIRST_KEPT: &str = "SELECT MIN(seq) FROM compliance_events WHERE at >= $1";
const HASH_OF: &str = "SELECT hash FROM compliance_events WHERE seq = $1";
const DELETE_UPTO: &str = "DELETE FROM compliance_events WHERE seq <= $1";

/// The compliance database.
#[derive(Debug, Clone)]
pub enum ComplianceDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the backend's pool (the body is compiled once per backend).
macro_rules! on_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match $self {
            ComplianceDb::Sqlite($p) => $body,
            ComplianceDb::Postgres($p) => $body,
        }
    };
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ComplianceError {
    ComplianceError::Corrupt(format!("{what}: {e}"))
}

fn stored_from_row<R: Row>(r: &R) -> Result<StoredEvent, ComplianceError>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let i = |n: usize| r.try_get::<i64, _>(n).map_err(|e| corrupt("column", e));
    let s = |n: usize| r.try_get::<String, _>(n).map_err(|e| corrupt("column", e));
    let kind = s(5)?;
    Ok(StoredEvent {
        seq: i(0)?,
        event: ComplianceEvent {
            at: i(1)?,
            room: s(2)?,
            actor: s(3)?,
            protocol: s(4)?,
            kind: EventKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
            detail: s(6)?,
        },
        prev_hash: s(7)?,
        hash: s(8)?,
    })
}

/// Runs migrations, again after a pause when they fail: the server's drainer and a
/// `palaver compliance` command may open a new database at the same moment, and the loser of
/// that race sees the winner's tables before its ledger row.
async fn migrate_retrying<F, Fut>(run: F) -> Result<(), ComplianceError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), sqlx::migrate::MigrateError>>,
{
    let mut tries = 0;
    loop {
        match run().await {
            Ok(()) => return Ok(()),
            Err(e) if tries >= 4 => return Err(e.into()),
            Err(e) => {
                tracing::debug!(error = %e, "compliance migration failed; retrying");
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

impl ComplianceDb {
    /// Opens (creating when needed) and migrates the compliance database named by `url`.
    pub async fn open(url: &str) -> Result<ComplianceDb, ComplianceError> {
        let bad_url = || ComplianceError::BadUrl(url.to_string());
        if url.starts_with("sqlite:") {
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|_| bad_url())?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5));
            if !memory {
                if let Some(dir) = options.get_filename().parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir)?;
                    }
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(if memory { 1 } else { 4 })
                .min_connections(u32::from(memory))
                .idle_timeout(if memory {
                    None
                } else {
                    Some(Duration::from_secs(600))
                })
                .max_lifetime(if memory {
                    None
                } else {
                    Some(Duration::from_secs(1800))
                })
                .connect_with(options)
                .await?;
            migrate_retrying(|| async {
                sqlx::migrate!("./migrations/compliance/sqlite")
                    .run(&pool)
                    .await
            })
            .await?;
            Ok(ComplianceDb::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (plain, schema) = crate::store::postgres::split_schema(url).ok_or_else(bad_url)?;
            let mut options = PgConnectOptions::from_str(&plain).map_err(|_| bad_url())?;
            if let Some(schema) = &schema {
                let mut conn = sqlx::PgConnection::connect_with(&options).await?;
                // NAME is [a-z0-9_]+ (split_schema checked), so quoting it is enough.
                let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
                let created = sqlx::query(AssertSqlSafe(create)).execute(&mut conn).await;
                conn.close().await?;
                if let Err(e) = created {
                    if !e
                        .as_database_error()
                        .is_some_and(|d| d.is_unique_violation())
                    {
                        return Err(e.into());
                    }
                }
                options = options.options([("search_path", schema.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            migrate_retrying(|| async {
                sqlx::migrate!("./migrations/compliance/postgres")
                    .run(&pool)
                    .await
            })
            .await?;
            Ok(ComplianceDb::Postgres(pool))
        } else {
            Err(bad_url())
        }
    }

    /// Short name of the backend.
    pub fn backend(&self) -> &'static str {
        match self {
            ComplianceDb::Sqlite(_) => "sqlite",
            ComplianceDb::Postgres(_) => "postgres",
        }
    }

    /// Appends `events` in order, in one transaction that reads the chain's tail under the
    /// writers' lock. Returns the seq of the last row (the tail's when `events` is empty).
    pub async fn append(&self, events: &[ComplianceEvent]) -> Result<i64, ComplianceError> {
        let tagged: Vec<(Option<i64>, &ComplianceEvent)> =
            events.iter().map(|e| (None, e)).collect();
        Ok(self.append_tagged(None, &tagged).await?.0)
    }

    /// Appends events copied from the outbox of the main store `source`, each with its outbox
    /// id, skipping (under the writers' lock) those already archived from that outbox. Returns
    /// the tail's seq and how many rows were added.
    pub async fn append_from_outbox(
        &self,
        source: &str,
        events: &[(i64, ComplianceEvent)],
    ) -> Result<(i64, u64), ComplianceError> {
        let tagged: Vec<(Option<i64>, &ComplianceEvent)> =
            events.iter().map(|(id, e)| (Some(*id), e)).collect();
        self.append_tagged(Some(source), &tagged).await
    }

    async fn append_tagged(
        &self,
        source: Option<&str>,
        events: &[(Option<i64>, &ComplianceEvent)],
    ) -> Result<(i64, u64), ComplianceError> {
        let ids = || events.iter().filter_map(|(id, _)| *id);
        let range = ids().min().zip(ids().max());
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK_HEAD).execute(&mut *tx).await?;
            let head = sqlx::query(GET_HEAD).fetch_one(&mut *tx).await?;
            let mut seq: i64 = head.try_get(0)?;
            let mut prev: String = head.try_get(1)?;
            let mut archived = std::collections::HashSet::new();
            if let (Some(source), Some((low, high))) = (source, range) {
                let mut rows = sqlx::query(ARCHIVED_ORIGINS)
                    .bind(source)
                    .bind(low)
                    .bind(high)
                    .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    archived.insert(row.try_get::<i64, _>(0)?);
                }
            }
            let mut added = 0u64;
            for (id, event) in events {
                if id.is_some_and(|id| archived.contains(&id)) {
                    continue;
                }
                seq += 1;
                let hash = row_hash(&prev, seq, event)
                    .ok_or_else(|| corrupt("head hash", &prev))?;
                sqlx::query(INSERT)
                    .bind(seq)
                    .bind(event.at)
                    .bind(event.room.as_str())
                    .bind(event.actor.as_str())
                    .bind(event.protocol.as_str())
                    .bind(event.kind.as_str())
                    .bind(event.detail.as_str())
                    .bind(prev.as_str())
                    .bind(hash.as_str())
                    .bind(id.and(source))
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
                prev = hash;
                added += 1;
            }
            sqlx::query(SET_HEAD).bind(seq).bind(prev.as_str()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok((seq, added))
        })
    }

    /// Walks the whole chain from its start (see [`ComplianceDb::purge`]) and recomputes every
    /// hash; reports the first row that does not fit (also a missing row or a cut tail).
    pub async fn verify(&self) -> Result<Verdict, ComplianceError> {
        on_pool!(self, pool => {
            let start = sqlx::query(GET_START).fetch_one(pool).await?;
            let mut expect_seq: i64 = start.try_get::<i64, _>(0)? + 1;
            let mut prev: String = start.try_get(1)?;
            let mut count = 0u64;
            let mut rows = sqlx::query(ALL_ROWS).fetch(pool);
            while let Some(row) = rows.try_next().await? {
                let seq: i64 = row.try_get(0)?;
                let stored = match stored_from_row(&row) {
                    Ok(s) => s,
                    Err(e) => return Ok(Verdict::Broken { seq, reason: e.to_string() }),
                };
                if let Some(v) = check_row(&stored, expect_seq, &prev) {
                    return Ok(v);
                }
                prev = stored.hash;
                expect_seq = seq + 1;
                count += 1;
            }
            drop(rows);
            let head = sqlx::query(GET_HEAD).fetch_one(pool).await?;
            let head_seq: i64 = head.try_get(0)?;
            let head_hash: String = head.try_get(1)?;
            if head_seq != expect_seq - 1 || head_hash != prev {
                return Ok(Verdict::Broken {
                    seq: expect_seq,
                    reason: format!("rows after {} are missing (the tail is {head_seq})", expect_seq - 1),
                });
            }
            Ok(Verdict::Ok { count, last_seq: expect_seq - 1 })
        })
    }

    /// How many rows match `filter` (for an export's progress bar).
    pub async fn count(&self, filter: &Filter) -> Result<u64, ComplianceError> {
        let from = filter.from.unwrap_or(i64::MIN);
        let to = filter.to.unwrap_or(i64::MAX);
        let room = filter.room.clone().unwrap_or_default();
        on_pool!(self, pool => {
            let n: i64 = sqlx::query(COUNT_FILTERED)
                .bind(from)
                .bind(to)
                .bind(room.as_str())
                .fetch_one(pool)
                .await?
                .try_get(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Streams the rows matching `filter` in seq order to `each` (export).
    pub async fn for_each(
        &self,
        filter: &Filter,
        mut each: impl FnMut(StoredEvent) -> Result<(), ComplianceError>,
    ) -> Result<u64, ComplianceError> {
        let from = filter.from.unwrap_or(i64::MIN);
        let to = filter.to.unwrap_or(i64::MAX);
        let room = filter.room.clone().unwrap_or_default();
        on_pool!(self, pool => {
            let mut n = 0u64;
            let mut rows = sqlx::query(FILTERED_ROWS)
                .bind(from)
                .bind(to)
                .bind(room.as_str())
                .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                each(stored_from_row(&row)?)?;
                n += 1;
            }
            Ok(n)
        })
    }

    /// Deletes the oldest rows, up to (not including) the first row at or after `before`, and
    /// records the last deleted row's seq and hash as the chain's start so `verify` still
    /// holds. Returns how many rows went.
    pub async fn purge(&self, before: i64) -> Result<u64, ComplianceError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK_HEAD).execute(&mut *tx).await?;
            let head_seq: i64 = sqlx::query(GET_HEAD).fetch_one(&mut *tx).await?.try_get(0)?;
            let start_seq: i64 = sqlx::query(GET_START).fetch_one(&mut *tx).await?.try_get(0)?;
            let first_kept: Option<i64> =
                sqlx::query(FIRST_KEPT).bind(before).fetch_one(&mut *tx).await?.try_get(0)?;
            let cut = first_kept.map_or(head_seq, |s| s - 1);
            if cut <= start_seq {
                return Ok(0);
            }
            let hash: String = sqlx::query(HASH_OF).bind(cut).fetch_one(&mut *tx).await?.try_get(0)?;
            let gone = sqlx::query(DELETE_UPTO).bind(cut).execute(&mut *tx).await?.rows_affected();
            sqlx::query(SET_START).bind(cut).bind(hash.as_str()).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(gone)
        })
    }

    /// The seq and hash the stored chain starts after (0 and zeros until a purge).
    pub async fn chain_start(&self) -> Result<(i64, String), ComplianceError> {
        on_pool!(self, pool => {
            let r = sqlx::query(GET_START).fetch_one(pool).await?;
            Ok((r.try_get(0)?, r.try_get(1)?))
        })
    }
}

/// `Some(Broken)` when `row` is not the row expected at `expect_seq` after hash `prev`.
fn check_row(row: &StoredEvent, expect_seq: i64, prev: &str) -> Option<Verdict> {
    let broken = |reason: String| {
        Some(Verdict::Broken {
            seq: row.seq,
            reason,
        })
    };
    if row.seq != expect_seq {
        return Some(Verdict::Broken {
            seq: expect_seq,
            reason: format!("row {expect_seq} is missing (next is {})", row.seq),
        });
    }
    if row.prev_hash != prev {
        return broken("its previous hash does not match the row before".into());
    }
    match row_hash(prev, row.seq, &row.event) {
        Some(h) if h == row.hash => None,
        _ => broken("its content does not match its hash".into()),
    }
}
