//! XMPP client-to-server (RFC 6120/6121) and the MUC service (XEP-0045, XEP-0313): listeners,
//! stream negotiation, sessions and the stanza handlers that translate to the room engine.

mod backoff;
mod conn;
mod dispatch;
pub mod invitation;
mod local;
mod mam;
mod muc;
mod muc_iq;
mod negotiate;
mod outbound;
mod router;
mod service;
mod session;
mod stanza_error;
mod upload;

pub use backoff::AuthBackoff;
pub use router::PeerDelivery;
pub use service::XmppService;

use std::sync::Arc;
use tokio::net::TcpListener;

/// Accepts c2s connections on `listener` until shutdown (`direct_tls`: XEP-0368 port).
pub async fn run_c2s(svc: Arc<XmppService>, listener: TcpListener, direct_tls: bool) {
    let mut shutdown = svc.ctx.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Some(permit) = svc.conn_limit.try_acquire(peer.ip()) else {
                        metrics::counter!("palaver_connections_refused_total", "protocol" => "xmpp")
                            .increment(1);
                        tracing::debug!(%peer, "too many connections from this address");
                        continue;
                    };
                    let svc = svc.clone();
                    tokio::spawn(async move {
                        negotiate::handle_connection(svc, tcp, peer, direct_tls).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
}

/// Samples the sessions' outbound queues every few seconds into `palaver_outbound_queued`
/// (items waiting, all sessions) and `palaver_outbound_queue_deepest` (the fullest session),
/// until shutdown.
pub async fn sample_queues(svc: Arc<XmppService>) {
    let mut shutdown = svc.ctx.shutdown.clone();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let (total, deepest) = svc.router.queue_depths();
        metrics::gauge!("palaver_outbound_queued", "protocol" => "xmpp").set(total as f64);
        metrics::gauge!("palaver_outbound_queue_deepest", "protocol" => "xmpp").set(deepest as f64);
    }
}
