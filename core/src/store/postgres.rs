//! PostgreSQL backend of the `Store` trait: `postgres://...` / `postgresql://...`, a pool of
//! `POOL_SIZE` connections.
//!
//! A URL may carry `schema=NAME` (NAME: `[a-z0-9_]+`): the parameter is removed from the URL,
//! the schema is created when missing and every pooled connection runs with
//! `search_path = NAME`, so tables and the migration ledger live in that schema (tests use one
//! schema each and run in parallel).
//!
//! The SQL text, bound values and row mapping are shared with the SQLite backend (`rows.rs`);
//! only connection setup and the batch insert (`INSERT ... SELECT FROM UNNEST(arrays)`: one
//! statement, one round trip, atomic by itself) are PostgreSQL specific.

use super::rows::*;
use super::rows_compliance::*;
use super::rows_files::*;
use super::rows_sip::*;
use super::shared_impl::found;
use super::{Store, StoreError, StoreResult};
use crate::compliance::ComplianceEvent;
use crate::model::*;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Postgres, Row};
use std::str::FromStr;

type Q<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// Connections in the pool.
const POOL_SIZE: u32 = 10;

/// The whole batch as ten arrays (one per column), in one statement.
const INSERT_MESSAGES: &str = "INSERT INTO messages \
     (room_id, seq, stanza_id, origin_id, sender, nick, occupant_id, body, extra, ts) \
     SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])";

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// Removes a `schema=NAME` parameter from `url`; returns the remaining URL and NAME. `None` when
/// NAME is not `[a-z0-9_]+` (at most 63 bytes) or given twice.
pub(crate) fn split_schema(url: &str) -> Option<(String, Option<String>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Some((url.to_string(), None));
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("schema=") {
            Some(name) => {
                let valid = !name.is_empty()
                    && name.len() <= 63
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !valid || schema.is_some() {
                    return None;
                }
                schema = Some(name.to_string());
            }
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Some((url, schema))
}

impl PgStore {
    /// Connects, creates the `schema=` schema when given, and migrates.
    pub async fn open(url: &str) -> StoreResult<PgStore> {
        let bad_url = || StoreError::BadUrl(url.to_string());
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad_url());
        }
        let (plain, schema) = split_schema(url).ok_or_else(bad_url)?;
        let mut options = PgConnectOptions::from_str(&plain).map_err(|_| bad_url())?;
        if let Some(schema) = &schema {
            let mut conn = PgConnection::connect_with(&options).await?;
            // NAME is [a-z0-9_]+, so quoting it is enough.
            let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            let created = sqlx::query(AssertSqlSafe(create)).execute(&mut conn).await;
            conn.close().await?;
            if let Err(e) = created {
                // Two openers racing on the same new schema: the loser sees a unique violation.
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
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// The underlying pool (tests, maintenance).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn bind_vals<'q>(mut q: Q<'q>, vals: Vec<Val<'_>>) -> Q<'q> {
    for v in vals {
        q = match v {
            Val::I64(x) => q.bind(x),
            Val::Bool(x) => q.bind(x),
            Val::Text(s) => q.bind(s.as_ref()),
            Val::OptText(s) => q.bind(s.as_deref()),
            Val::OptI64(v) => q.bind(v),
            Val::Bytes(b) => q.bind(b),
        };
    }
    q
}

fn query(sql: &'static str) -> Q<'static> {
    sqlx::query(sql)
}

impl PgStore {
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
        let col = |f: fn(&StoredMessage) -> &str| batch.iter().map(f).collect::<Vec<&str>>();
        let room_ids: Vec<i64> = batch.iter().map(|m| m.room_id).collect();
        let seqs: Vec<i64> = batch.iter().map(|m| m.seq).collect();
        let extras: Vec<Option<&str>> = batch.iter().map(|m| m.extra.as_deref()).collect();
        let ts: Vec<i64> = batch.iter().map(|m| m.ts).collect();
        // One statement is one implicit transaction: a duplicate (room_id, seq) anywhere in the
        // batch aborts it and nothing is written. With outbox rows, an explicit one holds both.
        let insert = query(INSERT_MESSAGES)
            .bind(room_ids)
            .bind(seqs)
            .bind(col(|m| &m.stanza_id))
            .bind(col(|m| &m.origin_id))
            .bind(col(|m| m.sender.as_str()))
            .bind(col(|m| &m.nick))
            .bind(col(|m| &m.occupant_id))
            .bind(col(|m| &m.body))
            .bind(extras)
            .bind(ts);
        if outbox.is_empty() {
            insert.execute(&self.pool).await.map_err(append_err)?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        if !batch.is_empty() {
            insert.execute(&mut *tx).await.map_err(append_err)?;
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

impl_driver_helpers!(PgStore, PgRow);
impl_store!(PgStore, "postgres");

#[cfg(test)]
mod tests {
    use super::split_schema;

    #[test]
    fn schema_parameter() {
        let s = |u: &str| split_schema(u);
        assert_eq!(s("postgres://h/db"), Some(("postgres://h/db".into(), None)));
        assert_eq!(
            s("postgres://h/db?schema=t_1&sslmode=disable"),
            Some(("postgres://h/db?sslmode=disable".into(), Some("t_1".into())))
        );
        assert_eq!(
            s("postgres://h/db?schema=abc"),
            Some(("postgres://h/db".into(), Some("abc".into())))
        );
        assert_eq!(s("postgres://h/db?schema=Bad"), None);
        assert_eq!(s("postgres://h/db?schema=a\"b"), None);
        assert_eq!(s("postgres://h/db?schema="), None);
        assert_eq!(s("postgres://h/db?schema=a&schema=b"), None);
    }
}
