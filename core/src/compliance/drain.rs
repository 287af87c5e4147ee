//! The drainer: moves events from the main store's compliance outbox into the compliance
//! database, oldest first, a batch per transaction. An outbox row is deleted only after the
//! compliance database has committed it, so an outage of the compliance database queues events
//! (they stay in the outbox) and loses none; the drainer retries with exponential backoff and
//! reopens the database. Delivery is at-least-once: a crash between the compliance commit and the
//! outbox delete appends that batch a second time (each copy chained; exports show both).

use super::db::ComplianceDb;
use super::ComplianceError;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// Copies the outbox into the compliance database.
pub struct Drainer {
    store: Arc<dyn Store>,
    url: String,
    db: Option<ComplianceDb>,
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
            batch: 500,
            idle: Duration::from_millis(200),
            backoff: (Duration::from_millis(100), Duration::from_secs(30)),
        }
    }

    /// Moves at most one batch; returns how many events moved.
    pub async fn drain_once(&mut self) -> Result<u64, ComplianceError> {
        let batch = self.store.outbox_peek(self.batch).await?;
        let Some(&(last_id, _)) = batch.last() else {
            return Ok(0);
        };
        if self.db.is_none() {
            self.db = Some(ComplianceDb::open(&self.url).await?);
        }
        let events: Vec<_> = batch.into_iter().map(|(_, e)| e).collect();
        if let Some(db) = &self.db {
            if let Err(e) = db.append(&events).await {
                self.db = None;
                return Err(e);
            }
        }
        self.store.outbox_delete(last_id).await?;
        let n = events.len() as u64;
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
