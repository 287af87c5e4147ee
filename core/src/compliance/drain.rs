//! The drainer: moves events from the main store's compliance outbox into the compliance
//! database, oldest first, a batch per transaction. An outbox row is deleted only after the
//! compliance database has committed it, so an outage of the compliance database queues events
//! (they stay in the outbox) and loses none; the drainer retries with exponential backoff and
//! reopens the database. Each archived row remembers its origin (this store's id and the outbox
//! id), and a batch skips rows archived already, so a crash between the compliance commit and
//! the outbox delete, or two pool nodes draining the same shared outbox at once, archive every
//! event exactly once.

use super::db::ComplianceDb;
use super::ComplianceError;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// The id this main store's outbox rows carry as their origin in the compliance database: made
/// once, kept in the store, so every node of a pool sharing the store uses the same one.
pub async fn source_id(store: &Arc<dyn Store>) -> Result<String, ComplianceError> {
    let fresh: [u8; 16] = rand::random();
    let fresh_hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    let stored = store
        .shared_secret("compliance-source", fresh_hex.as_bytes())
        .await?;
    String::from_utf8(stored).map_err(|e| ComplianceError::Corrupt(format!("source id: {e}")))
}

/// Copies the outbox into the compliance database.
pub struct Drainer {
    store: Arc<dyn Store>,
    url: String,
    db: Option<ComplianceDb>,
    /// This main store's id as an origin (read from its `secrets` table on first use).
    source: Option<String>,
    /// Events per compliance transaction.
    pub batch: u32,
    /// Wait when the outbox is empty.
    pub idle: Duration,
    /// First and largest wait after a failure.
    pub backoff: (Duration, Duration),
}

impl Drainer {
    /// A drainer from `store`'s outbox to the compliance database at `url` (opened lazily, so
    /// the server starts while the compliance database is down).
    pub fn new(store: Arc<dyn Store>, url: &str) -> Drainer {
        Drainer {
            store,
            url: url.to_string(),
            db: None,
            source: None,
            batch: 500,
            idle: Duration::from_millis(200),
            backoff: (Duration::from_millis(100), Duration::from_secs(30)),
        }
    }

    /// Moves at most one batch; returns how many events moved.
    pub async fn drain_once(&mut self) -> Result<u64, ComplianceError> {
        let batch = self.store.outbox_peek(self.batch).await?;
        if batch.is_empty() {
            return Ok(0);
        }
        if self.source.is_none() {
            self.source = Some(source_id(&self.store).await?);
        }
        if self.db.is_none() {
            self.db = Some(ComplianceDb::open(&self.url).await?);
        }
        let n = batch.len() as u64;
        if let (Some(db), Some(source)) = (&self.db, &self.source) {
            if let Err(e) = db.append_from_outbox(source, &batch).await {
                self.db = None;
                return Err(e);
            }
        }
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        self.store.outbox_delete(&ids).await?;
        metrics::counter!("palaver_compliance_drained_total").increment(n);
        Ok(n)
    }

    /// Drains until the outbox is empty (stops at the first error).
    pub async fn drain_all(&mut self) -> Result<u64, ComplianceError> {
        let mut total = 0;
        loop {
            let n = self.drain_once().await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// Runs until `stop` resolves: drains, waits `idle` when there is nothing, backs off after
    /// failures (logged, counted in `palaver_compliance_drain_errors_total`).
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut wait = self.backoff.0;
        loop {
            let pause = match self.drain_once().await {
                Ok(n) => {
                    wait = self.backoff.0;
                    if n == u64::from(self.batch) {
                        Duration::ZERO
                    } else {
                        self.idle
                    }
                }
                Err(e) => {
                    metrics::counter!("palaver_compliance_drain_errors_total").increment(1);
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64,
                        "compliance: cannot drain the outbox; events stay queued");
                    let this = wait;
                    wait = (wait * 2).min(self.backoff.1);
                    this
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
