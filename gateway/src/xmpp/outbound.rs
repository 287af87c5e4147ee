//! What a session's outbound queue carries, and the `EventSink` rooms use to fill it: a bounded
//! `try_send`, and on overflow the session is flagged as a slow consumer and closed.

use bytes::Bytes;
use palaver_core::engine::{DeliveryFlags, EventSink, RoomEvent, SinkClosed};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// An item for a session to write.
pub enum Outbound {
    /// A room event, encoded (once per view) when written.
    Room(Arc<RoomEvent>, DeliveryFlags),
    /// A stanza routed from elsewhere, encoded without `to` (the session adds it).
    Raw(Bytes),
}

/// The room-facing side of a session's outbound queue.
pub struct SessionSink {
    pub tx: mpsc::Sender<Outbound>,
    pub overflowed: Arc<AtomicBool>,
    pub wake: Arc<Notify>,
}

impl EventSink for SessionSink {
    fn deliver(&self, event: &Arc<RoomEvent>, flags: DeliveryFlags) -> Result<(), SinkClosed> {
        match self.tx.try_send(Outbound::Room(event.clone(), flags)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.overflowed.swap(true, Ordering::SeqCst) {
                    metrics::counter!("palaver_slow_consumers_total").increment(1);
                }
                self.wake.notify_one();
                Err(SinkClosed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SinkClosed),
        }
    }
}
