//! In-order handling of UDP requests per source: each source address gets a small queue and a
//! worker that handles its requests one after another, so `#join` then a post (or two posts)
//! sent back to back reach the room in the order they were sent, as on TCP. Responses (to our
//! MESSAGEs and NOTIFYs) bypass the queues. A worker ends after a quiet period; the table is
//! bounded, and past the bound requests are handled unordered rather than refused.

use super::transport::Flow;
use super::SipService;
use dashmap::DashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Requests queued per source before further ones are dropped (UDP clients retransmit).
const QUEUE: usize = 64;
/// A worker with nothing to do for this long ends.
const IDLE: Duration = Duration::from_secs(30);
/// Most sources with a worker at once.
const MAX_PEERS: usize = 50_000;

/// Per-source request queues.
#[derive(Default)]
pub struct UdpPeers {
    queues: DashMap<SocketAddr, mpsc::Sender<(Vec<u8>, Flow)>>,
}

impl UdpPeers {
    /// Queues a request from `flow.peer` behind that source's earlier ones.
    pub fn dispatch(&self, svc: &Arc<SipService>, datagram: Vec<u8>, flow: Flow) {
        let peer = flow.peer;
        let mut item = (datagram, flow);
        if let Some(tx) = self.queues.get(&peer).map(|q| q.clone()) {
            match tx.try_send(item) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    metrics::counter!("palaver_sip_udp_queue_full_total").increment(1);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(back)) => item = back,
            }
        }
        if self.queues.len() >= MAX_PEERS {
            let svc = svc.clone();
            tokio::spawn(async move { super::inbound::on_message(&svc, item.0, &item.1).await });
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let _ = tx.try_send(item);
        self.queues.insert(peer, tx.clone());
        tokio::spawn(worker(svc.clone(), peer, tx, rx));
    }
}

async fn worker(
    svc: Arc<SipService>,
    peer: SocketAddr,
    me: mpsc::Sender<(Vec<u8>, Flow)>,
    mut rx: mpsc::Receiver<(Vec<u8>, Flow)>,
) {
    loop {
        match tokio::time::timeout(IDLE, rx.recv()).await {
            Ok(Some((datagram, flow))) => super::inbound::on_message(&svc, datagram, &flow).await,
            Ok(None) => break,
            Err(_) => {
                svc.udp_peers
                    .queues
                    .remove_if(&peer, |_, q| q.same_channel(&me));
                // Whatever slipped in before the removal is still handled, in order.
                rx.close();
                while let Some((datagram, flow)) = rx.recv().await {
                    super::inbound::on_message(&svc, datagram, &flow).await;
                }
                break;
            }
        }
    }
}
