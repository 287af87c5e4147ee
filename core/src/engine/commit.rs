//! Group commit: rooms hand freshly numbered messages to one writer task, which inserts every
//! message waiting at that moment (from any room) in one transaction and then answers each room.
//! If a batch fails, its messages are retried one by one so one bad row cannot sink the others.
//! A message's compliance event (when the archive is on) rides with it into the same
//! transaction, so a committed message is never missing from the compliance outbox.

use crate::compliance::ComplianceEvent;
use crate::model::StoredMessage;
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// The result of committing one message.
pub(super) type CommitResult = Result<(), Arc<StoreError>>;

struct Job {
    message: StoredMessage,
    audit: Option<ComplianceEvent>,
    done: oneshot::Sender<CommitResult>,
}

/// Handle used by rooms to submit messages.
#[derive(Clone)]
pub(super) struct CommitQueue {
    tx: mpsc::Sender<Job>,
}

impl CommitQueue {
    /// Starts the writer task. `max_batch` bounds one transaction.
    pub(super) fn start(store: Arc<dyn Store>, max_batch: usize) -> CommitQueue {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        tokio::spawn(writer(store, rx, max_batch.max(1)));
        CommitQueue { tx }
    }

    /// Queues a message (and its compliance event); the receiver resolves once it is durable
    /// (or failed).
    pub(super) async fn submit(
        &self,
        message: StoredMessage,
        audit: Option<ComplianceEvent>,
    ) -> oneshot::Receiver<CommitResult> {
        let (done, rx) = oneshot::channel();
        let job = Job {
            message,
            audit,
            done,
        };
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job).await {
            let _ = job.done.send(Err(Arc::new(StoreError::Conflict(
                "commit queue closed".into(),
            ))));
        }
        rx
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    // The batch's rows and their completion channels, moved out of the jobs (no copy).
    let mut rows: Vec<StoredMessage> = Vec::with_capacity(max_batch);
    let mut dones: Vec<oneshot::Sender<CommitResult>> = Vec::with_capacity(max_batch);
    let mut audits: Vec<Option<ComplianceEvent>> = Vec::with_capacity(max_batch);
    let mut outbox: Vec<ComplianceEvent> = Vec::new();
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        rows.clear();
        audits.clear();
        for job in jobs.drain(..) {
            rows.push(job.message);
            audits.push(job.audit);
            dones.push(job.done);
        }
        let started = Instant::now();
        let result = if audits.iter().all(Option::is_none) {
            store.append_messages(&rows).await
        } else {
            outbox.clear();
            outbox.extend(audits.iter().flatten().cloned());
            store.append_messages_recorded(&rows, &outbox).await
        };
        metrics::histogram!("palaver_store_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("palaver_store_commits_total").increment(1);
        match result {
            Ok(()) => {
                for done in dones.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            Err(err) if rows.len() == 1 => {
                tracing::error!(error = %err, "message commit failed");
                if let Some(done) = dones.pop() {
                    let _ = done.send(Err(Arc::new(err)));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, batch = rows.len(), "batch commit failed, retrying singly");
                for ((row, audit), done) in rows.iter().zip(&audits).zip(dones.drain(..)) {
                    let res = store
                        .append_messages_recorded(std::slice::from_ref(row), audit.as_slice())
                        .await
                        .map_err(Arc::new);
                    if let Err(e) = &res {
                        tracing::error!(error = %e, room = row.room_id, seq = row.seq, "message commit failed");
                    }
                    let _ = done.send(res);
                }
            }
        }
    }
}
