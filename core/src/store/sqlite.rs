//! SQLite backend of the `Store` trait: `sqlite://path/to/file.db` (file and parent directory
//! created when missing) or `sqlite::memory:`.
//!
//! Connections use WAL journaling, `synchronous = FULL` (a commit, and so the acknowledgement of
//! a message, survives power loss, not only a process crash), foreign keys on and a 5 s busy
//! timeout. An in-memory database lives in a pool of exactly one connection that is never
//! recycled, so every query sees the same database.
//!
//! The SQL text, bound values and row mapping are shared with the PostgreSQL backend
//! (`rows.rs`); only connection setup and the batch insert are SQLite specific.

use super::rows::*;
use super::rows_compliance::*;
use super::rows_files::*;
use super::rows_sip::*;
use super::shared_impl::found;
use super::{Store, StoreError, StoreResult};
use crate::compliance::ComplianceEvent;
use crate::model::*;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

type Q<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Connections in the pool of a file database (readers run in parallel under WAL; writers take
/// turns, waiting up to the busy timeout).
const FILE_POOL_SIZE: u32 = 8;

/// Largest number of rows in one multi-row INSERT (10 parameters each).
const MAX_INSERT_ROWS: usize = 64;

/// `INSERT INTO messages ... VALUES (...), (...)` for 1, 2, 4, ... `MAX_INSERT_ROWS` rows: a
/// batch is cut into power-of-two chunks, so at most 7 distinct statements are ever prepared.
static INSERT_MESSAGES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut out = Vec::new();
    let mut n = 1;
    while n <= MAX_INSERT_ROWS {
        let mut sql = format!("INSERT INTO messages ({MESSAGE_COLS}) VALUES ");
        for row in 0..n {
            if row > 0 {
                sql.push_str(", ");
            }
            let b = row * 10;
            sql.push('(');
            for col in 1..=10 {
                if col > 1 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&(b + col).to_string());
            }
            sql.push(')');
        }
        out.push(sql);
        n *= 2;
    }
    out
});

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) and migrates the database named by `url`.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let bad_url = || StoreError::BadUrl(url.to_string());
        if !url.starts_with("sqlite:") {
            return Err(bad_url());
        }
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| bad_url())?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = if memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?
        } else {
            if let Some(dir) = options.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(sqlx::Error::Io)?;
                }
            }
            SqlitePoolOptions::new()
                .max_connections(FILE_POOL_SIZE)
                .connect_with(options)
                .await?
        };
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// The underlying pool (tests, maintenance).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn bind_vals<'q>(mut q: Q<'q>, vals: Vec<Val<'_>>) -> Q<'q> {
    for v in vals {
        q = match v {
            Val::I64(x) => q.bind(x),
            Val::Bool(x) => q.bind(x),
            Val::Text(s) => q.bind(s.into_owned()),
            Val::OptText(s) => q.bind(s.map(|s| s.into_owned())),
            Val::OptI64(v) => q.bind(v),
            Val::Bytes(b) => q.bind(b.to_vec()),
        };
    }
    q
}

fn query(sql: &'static str) -> Q<'static> {
    sqlx::query(sql)
}

impl SqliteStore {
    /// Inserts a batch of messages in one transaction (see `Store::append_messages`).
    /// `outbox` rows go in the same transaction.
    async fn append_batch(
        &self,
        batch: &[StoredMessage],
        outbox: &[ComplianceEvent],
    ) -> StoreResult<()> {
        if batch.is_empty() && outbox.is_empty() {
            return Ok(());
        }
        // IMMEDIATE takes the write lock up front (waiting up to the busy timeout) instead of
        // failing on a read-to-write upgrade.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut rest = batch;
        while !rest.is_empty() {
            // Largest power of two not above min(rest.len(), MAX_INSERT_ROWS).
            let limit = rest.len().min(MAX_INSERT_ROWS);
            let index = usize::BITS - 1 - limit.leading_zeros();
            let (chunk, tail) = rest.split_at(1 << index);
            let sql = INSERT_MESSAGES
                .get(index as usize)
                .ok_or_else(|| StoreError::Corrupt("insert statement table".into()))?;
            let mut q = sqlx::query(AssertSqlSafe(sql.as_str()));
            for m in chunk {
                q = q
                    .bind(m.room_id)
                    .bind(m.seq)
                    .bind(m.stanza_id.as_str())
                    .bind(m.origin_id.as_str())
                    .bind(m.sender.as_str())
                    .bind(m.nick.as_str())
                    .bind(m.occupant_id.as_str())
                    .bind(m.body.as_str())
                    .bind(m.extra.as_deref())
                    .bind(m.ts);
            }
            // On error `tx` is dropped, which rolls the whole batch back.
            q.execute(&mut *tx).await.map_err(append_err)?;
            rest = tail;
        }
        for event in outbox {
            bind_vals(query(OUTBOX_PUSH), outbox_vals(event))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl_driver_helpers!(SqliteStore, SqliteRow);
impl_store!(SqliteStore, "sqlite");
