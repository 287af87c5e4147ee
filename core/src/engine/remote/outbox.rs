//! The home node's side of remote occupants: a [`RemoteSink`] per remote session queues
//! `(event, client, flags)` on the [`Outbox`] of the session's node without blocking or
//! allocating, and one task per peer node drains the queue, groups the recipients of each
//! event and sends one 8011 frame per event and node — the event encoded once (cached in the
//! event's pool slot), whatever the number of recipients there.

use super::wire::{to_bytes, WireEvent};
use super::PoolRouter;
use crate::engine::commands::ClientId;
use crate::engine::events::{DeliveryFlags, EventSink, RoomEvent, SinkClosed, POOL_SLOT};
use crate::pool::Frame;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Deliveries queued per peer node before its sessions count as too slow.
pub(crate) const OUTBOX_QUEUE: usize = 65_536;
/// Most deliveries taken from the queue at once.
const DRAIN_BATCH: usize = 4_096;

type Delivery = (Arc<RoomEvent>, ClientId, DeliveryFlags);

/// The queue of events for one peer node.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Delivery>,
}

impl Outbox {
    /// Starts the drain task for `node`; it ends when every sender is gone.
    pub(crate) fn start(node: Arc<str>, router: Arc<dyn PoolRouter>) -> Outbox {
        let (tx, rx) = mpsc::channel(OUTBOX_QUEUE);
        tokio::spawn(drain(node, router, rx));
        Outbox { tx }
    }

    /// A sink for `client` (a session on this outbox's node).
    pub(crate) fn sink(&self, client: ClientId) -> Arc<dyn EventSink> {
        Arc::new(RemoteSink {
            tx: self.tx.clone(),
            client,
        })
    }
}

/// A session on another node, as the home room sees it.
struct RemoteSink {
    tx: mpsc::Sender<Delivery>,
    client: ClientId,
}

impl EventSink for RemoteSink {
    fn deliver(&self, event: &Arc<RoomEvent>, flags: DeliveryFlags) -> Result<(), SinkClosed> {
        self.tx
            .try_send((event.clone(), self.client, flags))
            .map_err(|_| {
                metrics::counter!("palaver_pool_outbox_overflow_total").increment(1);
                SinkClosed
            })
    }
}

/// The event's pool encoding, made by its first remote recipient and shared by the rest.
fn encoded(event: &RoomEvent) -> Bytes {
    event.encoded(POOL_SLOT, |e| {
        let body: WireEvent = (e.room.clone(), e.kind.clone());
        to_bytes(&body).unwrap_or_else(|err| {
            tracing::error!(error = %err, "encoding a room event for the pool failed");
            Bytes::new()
        })
    })
}

async fn drain(node: Arc<str>, router: Arc<dyn PoolRouter>, mut rx: mpsc::Receiver<Delivery>) {
    let mut batch: Vec<Delivery> = Vec::with_capacity(DRAIN_BATCH);
    while rx.recv_many(&mut batch, DRAIN_BATCH).await > 0 {
        let mut rest = batch.as_slice();
        while let Some((event, _, _)) = rest.first() {
            let same = rest
                .iter()
                .take_while(|(e, _, _)| Arc::ptr_eq(e, event))
                .count();
            let recipients = rest[..same]
                .iter()
                .map(|(_, client, flags)| (*client, flags.to_bits()))
                .collect();
            let body = encoded(event);
            rest = &rest[same..];
            if body.is_empty() {
                continue;
            }
            if !router.send(&node, Frame::RoomEvent { recipients, body }) {
                metrics::counter!("palaver_pool_events_dropped_total").increment(1);
            }
        }
        batch.clear();
    }
}
