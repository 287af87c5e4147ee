//! The capture side: rooms hand events to a [`ComplianceSink`] without ever waiting, and one
//! writer task batches them into the main store's outbox (`Store::outbox_push`).
//!
//! The room task must never block and an event must never be dropped, so the sink is a bounded
//! channel backed by an overflow queue: when the channel is full, the event goes to the overflow
//! queue (counted in `palaver_compliance_overflow_total`) and so does every later event until
//! the writer has emptied it, which keeps the order. Only the writer waits (on the store, with
//! backoff when the store fails); memory grows only while the store cannot keep up.

use super::event::ComplianceEvent;
use crate::store::Store;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Capacity of the channel between rooms and the writer.
const CHANNEL: usize = 8192;
/// Most events per outbox transaction.
const BATCH: usize = 1024;

#[derive(Debug, Default)]
struct Overflow {
    queue: Mutex<VecDeque<ComplianceEvent>>,
    notify: Notify,
}

/// Where rooms record compliance events (cheap to clone).
#[derive(Debug, Clone)]
pub struct ComplianceSink {
    tx: mpsc::Sender<ComplianceEvent>,
    overflow: Arc<Overflow>,
}

impl ComplianceSink {
    /// Starts the writer task into `store`'s outbox; returns the sink and the task.
    pub fn start(store: Arc<dyn Store>) -> (ComplianceSink, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let overflow = Arc::new(Overflow::default());
        let task = tokio::spawn(writer(store, rx, overflow.clone()));
        (ComplianceSink { tx, overflow }, task)
    }

    /// Records an event; never waits, never drops.
    pub fn record(&self, event: ComplianceEvent) {
        let mut queue = match self.overflow.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        if queue.is_empty() {
            match self.tx.try_send(event) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(e))
                | Err(mpsc::error::TrySendError::Closed(e)) => {
                    metrics::counter!("palaver_compliance_overflow_total").increment(1);
                    queue.push_back(e);
                }
            }
        } else {
            metrics::counter!("palaver_compliance_overflow_total").increment(1);
            queue.push_back(event);
        }
        drop(queue);
        self.overflow.notify.notify_one();
    }
}

/// Moves events from the channel (then the overflow queue) into the outbox, in order.
async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<ComplianceEvent>,
    overflow: Arc<Overflow>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut open = true;
    loop {
        if batch.is_empty() && open {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => open = n > 0,
                _ = overflow.notify.notified() => {}
            }
        }
        // The channel first, completely: while the overflow queue is not empty nothing new
        // enters the channel, so channel, then overflow is the order of `record`.
        while let Ok(e) = rx.try_recv() {
            batch.push(e);
        }
        {
            let mut queue = match overflow.queue.lock() {
                Ok(q) => q,
                Err(poisoned) => poisoned.into_inner(),
            };
            batch.extend(queue.drain(..));
        }
        if batch.is_empty() {
            if !open {
                return;
            }
            continue;
        }
        let mut wait = Duration::from_millis(50);
        while let Err(e) = store.outbox_push(&batch).await {
            metrics::counter!("palaver_compliance_outbox_errors_total").increment(1);
            tracing::warn!(error = %e, "compliance: cannot write the outbox; retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
        metrics::counter!("palaver_compliance_recorded_total").increment(batch.len() as u64);
        batch.clear();
    }
}
