//! SIP requests relayed between pool nodes (`SipRelay` / `SipRelayReply`, see
//! `docs/pool-protocol.md`). A SIP request for a user who has no live binding on the node it
//! reached — its bindings live on the node that took the REGISTER (with the flow and the
//! Path) — is sent to every live peer; each peer proxies it to its own bindings of the user
//! through the SIP front end's handler and answers with the final response, or "not here".
//!
//! The pool side only carries bytes: the SIP front end installs the handler
//! ([`super::Membership::on_sip_relay`]) and reads the answers of a
//! [`SipRelayCall`]. Relays handled at once are bounded; beyond that a peer answers "not here".

use bytes::Bytes;
use dashmap::DashMap;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Proxies a relayed request (`user`, request bytes) to this node's bindings of the user:
/// `None` when it holds none, else the final response with this node's Via removed.
pub type OnSipRelay = Box<dyn Fn(String, Bytes) -> BoxFuture<'static, Option<Bytes>> + Send + Sync>;

/// Relays from peers handled at once; more are answered "not here".
const MAX_IN_FLIGHT: usize = 4096;

/// One peer's answer: its id and the response (`None`: no binding there).
pub type RelayAnswer = (String, Option<Bytes>);

type Pending = Arc<DashMap<u64, mpsc::UnboundedSender<RelayAnswer>>>;

/// Relays this node is waiting on, and the handler for peers' relays.
#[derive(Default)]
pub struct SipRelays {
    next_id: AtomicU64,
    pending: Pending,
    handler: std::sync::OnceLock<OnSipRelay>,
    in_flight: Arc<AtomicUsize>,
}

/// A relay sent to `asked` peers; their answers arrive on [`SipRelayCall::next`]. Dropping it
/// forgets the relay (late answers are ignored).
pub struct SipRelayCall {
    id: u64,
    /// How many peers the request went to (as many answers can come).
    pub asked: usize,
    rx: mpsc::UnboundedReceiver<RelayAnswer>,
    pending: Pending,
}

impl SipRelayCall {
    /// The next answer; `None` once every sender is gone (never, while the relay is known).
    pub async fn next(&mut self) -> Option<RelayAnswer> {
        self.rx.recv().await
    }
}

impl Drop for SipRelayCall {
    fn drop(&mut self) {
        self.pending.remove(&self.id);
    }
}

impl SipRelays {
    /// Installs the SIP front end's handler (once; later calls are ignored).
    pub fn set_handler(&self, f: OnSipRelay) {
        let _ = self.handler.set(f);
    }

    /// A new relay id and its call (with `asked` still 0).
    pub fn start(&self) -> SipRelayCall {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::unbounded_channel();
        self.pending.insert(id, tx);
        SipRelayCall {
            id,
            asked: 0,
            rx,
            pending: self.pending.clone(),
        }
    }

    /// The id of `call`, for the frames.
    pub fn id_of(call: &SipRelayCall) -> u64 {
        call.id
    }

    /// A peer answered the relay `id`.
    pub fn on_reply(&self, peer: &str, id: u64, found: bool, response: Bytes) {
        if let Some(tx) = self.pending.get(&id) {
            let _ = tx.send((peer.to_string(), found.then_some(response)));
        }
    }

    /// Runs a peer's relay through the handler; `None` without one (no SIP front end), or
    /// when too many are in flight.
    pub fn handle(&self, user: String, request: Bytes) -> BoxFuture<'static, Option<Bytes>> {
        let Some(handler) = self.handler.get() else {
            return Box::pin(async { None });
        };
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("palaver_pool_sip_relays_refused_total").increment(1);
            return Box::pin(async { None });
        }
        let run = handler(user, request);
        let in_flight = self.in_flight.clone();
        Box::pin(async move {
            let out = run.await;
            in_flight.fetch_sub(1, Ordering::AcqRel);
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_reach_their_call_until_it_is_dropped() {
        let relays = SipRelays::default();
        let mut call = relays.start();
        let id = SipRelays::id_of(&call);
        relays.on_reply("n2", id, false, Bytes::new());
        relays.on_reply("n3", id, true, Bytes::from_static(b"SIP/2.0 200 OK"));
        relays.on_reply("n3", id + 1, true, Bytes::from_static(b"other"));
        assert_eq!(call.next().await, Some(("n2".to_string(), None)));
        assert_eq!(
            call.next().await,
            Some((
                "n3".to_string(),
                Some(Bytes::from_static(b"SIP/2.0 200 OK"))
            ))
        );
        drop(call);
        assert!(relays.pending.is_empty());
        // A late answer finds nothing and is ignored.
        relays.on_reply("n2", id, true, Bytes::new());
    }

    #[tokio::test]
    async fn relays_without_a_handler_or_over_the_bound_are_not_here() {
        let relays = SipRelays::default();
        assert_eq!(relays.handle("bob@x".into(), Bytes::new()).await, None);
        relays.set_handler(Box::new(|user, request| {
            Box::pin(async move { Some(Bytes::from(format!("{user}:{}", request.len()))) })
        }));
        assert_eq!(
            relays
                .handle("bob@x".into(), Bytes::from_static(b"abc"))
                .await,
            Some(Bytes::from_static(b"bob@x:3"))
        );
        assert_eq!(relays.in_flight.load(Ordering::Acquire), 0);
        relays.in_flight.store(MAX_IN_FLIGHT, Ordering::Release);
        assert_eq!(relays.handle("bob@x".into(), Bytes::new()).await, None);
        assert_eq!(relays.in_flight.load(Ordering::Acquire), MAX_IN_FLIGHT);
    }
}
