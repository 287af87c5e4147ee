//! Local session registry: routes stanzas addressed to a user (bare JID: every available
//! session; full JID: that session) to the sessions' outbound queues.

use super::outbound::Outbound;
use bytes::Bytes;
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One registered session.
#[derive(Clone)]
pub struct RoutedSession {
    pub client: u64,
    pub resource: Arc<str>,
    pub tx: mpsc::Sender<Outbound>,
    pub available: bool,
}

/// Carries stanzas for users to the other nodes of a pool (their sessions there).
pub trait PeerDelivery: Send + Sync {
    /// Sends the stanza to every live peer; returns how many were reached.
    fn forward(&self, bare: &str, resource: Option<&str>, stanza: &Bytes) -> usize;
}

/// Sessions by bare JID (`alice@localhost`), and in a pool the way to the other nodes'.
#[derive(Default)]
pub struct Router {
    users: DashMap<String, Vec<RoutedSession>>,
    peers: std::sync::OnceLock<Arc<dyn PeerDelivery>>,
}

impl Router {
    /// Registers a session; returns false when the resource is taken.
    pub fn register(&self, bare: &str, session: RoutedSession) -> bool {
        let mut list = self.users.entry(bare.to_string()).or_default();
        if list.iter().any(|s| s.resource == session.resource) {
            return false;
        }
        list.push(session);
        true
    }

    /// Users with at least one session here.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    pub fn unregister(&self, bare: &str, client: u64) {
        let mut empty = false;
        if let Some(mut list) = self.users.get_mut(bare) {
            list.retain(|s| s.client != client);
            empty = list.is_empty();
        }
        if empty {
            self.users.remove_if(bare, |_, l| l.is_empty());
        }
    }

    pub fn set_available(&self, bare: &str, client: u64, available: bool) {
        if let Some(mut list) = self.users.get_mut(bare) {
            for s in list.iter_mut().filter(|s| s.client == client) {
                s.available = available;
            }
        }
    }

    /// Items waiting in the sessions' outbound queues: the total and the deepest queue (sampled
    /// for metrics off the delivery path).
    pub fn queue_depths(&self) -> (usize, usize) {
        let mut total = 0;
        let mut deepest = 0;
        for list in self.users.iter() {
            for s in list.iter() {
                let queued = s.tx.max_capacity() - s.tx.capacity();
                total += queued;
                deepest = deepest.max(queued);
            }
        }
        (total, deepest)
    }

    /// In a pool: stanzas for users also go to the other nodes (set once).
    pub fn set_peers(&self, peers: Arc<dyn PeerDelivery>) {
        let _ = self.peers.set(peers);
    }

    /// Delivers a stanza (encoded without `to`) to a full JID's session, or to every available
    /// session of a bare JID, here and (in a pool) on the other nodes. Returns how many
    /// sessions here got it, plus one when at least one other node was reached (whether the
    /// user has a session there is not known here).
    pub fn deliver(&self, bare: &str, resource: Option<&str>, stanza: Bytes) -> usize {
        let peers = match self.peers.get() {
            Some(p) => p.forward(bare, resource, &stanza).min(1),
            None => 0,
        };
        self.deliver_local(bare, resource, stanza) + peers
    }

    /// [`Router::deliver`] to this node's sessions only (a stanza another node forwarded).
    pub fn deliver_local(&self, bare: &str, resource: Option<&str>, stanza: Bytes) -> usize {
        let targets: Vec<mpsc::Sender<Outbound>> = match self.users.get(bare) {
            None => return 0,
            Some(list) => list
                .iter()
                .filter(|s| match resource {
                    Some(r) => &*s.resource == r,
                    None => s.available,
                })
                .map(|s| s.tx.clone())
                .collect(),
        };
        targets
            .into_iter()
            .filter(|tx| tx.try_send(Outbound::Raw(stanza.clone())).is_ok())
            .count()
    }
}
