//! Outgoing links. Rule: the member with the lower node id (byte order) dials the higher one,
//! so each pair has exactly one link and no tie-breaking is needed; the listener still
//! accepts a link from any member and a newer link replaces an older one. A dialer retries with
//! exponential backoff (200 ms doubling to 2 s, with jitter) for as long as the node runs.

use super::link::{serve_link, FramedIo, LinkError};
use super::listener::HANDSHAKE_TIMEOUT;
use super::Shared;
use palaver_core::pool::{cert_name, Frame, Hello, LinkKind, PROTOCOL_VERSION};
use rustls_pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Keeps a link to `peer` (id and address) open until the task is aborted.
pub async fn run(peer: String, address: String, shared: Arc<Shared>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match connect(&peer, &address, &shared).await {
            Ok((io, incarnation)) => {
                backoff = MIN_BACKOFF;
                serve_link(io, peer.clone(), incarnation, &shared).await;
            }
            Err(reason) => {
                if shared.membership.record_error(&peer, &reason) {
                    tracing::warn!(member = %peer, %address, %reason, "pool: cannot link to member");
                } else {
                    tracing::debug!(member = %peer, %address, %reason, "pool: cannot link to member");
                }
            }
        }
        let jitter = Duration::from_millis(rand::random::<u64>() % 100);
        tokio::time::sleep(backoff + jitter).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

type ClientIo = FramedIo<tokio_rustls::client::TlsStream<TcpStream>>;

/// TCP, mutual TLS (the server must present `<peer>.palaver-pool`), Hello, HelloAck.
/// Returns the link and the peer's incarnation, or why it failed.
async fn connect(peer: &str, address: &str, shared: &Shared) -> Result<(ClientIo, u64), String> {
    let cfg = &shared.cfg;
    let tcp = match tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => return Err("connect timed out".into()),
    };
    let _ = tcp.set_nodelay(true);
    let expected = cert_name(peer);
    let name = ServerName::try_from(expected.clone())
        .map_err(|e| format!("invalid certificate name: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(shared.tls.client.clone());
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            return Err(format!(
            "TLS handshake failed (expecting a certificate for {expected} from the pool CA): {e}"
        ))
        }
        Err(_) => return Err("TLS handshake timed out".into()),
    };
    let mut io = FramedIo::new(tls, cfg.max_frame_bytes);
    let hello = Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        pool_id: cfg.pool_id.clone(),
        node_id: cfg.node_id.clone(),
        kind: LinkKind::Peer,
        incarnation: shared.membership.incarnation,
    });
    io.write(&hello)
        .await
        .map_err(|e| format!("sending Hello: {e}"))?;
    match io.read(HANDSHAKE_TIMEOUT).await {
        Ok(Frame::HelloAck(ack)) if ack.node_id == peer && ack.pool_id == cfg.pool_id => {
            Ok((io, ack.incarnation))
        }
        Ok(Frame::HelloAck(ack)) => Err(format!(
            "answered as {:?} of pool {:?}, expected {peer:?} of {:?}",
            ack.node_id, ack.pool_id, cfg.pool_id
        )),
        Ok(Frame::Refuse(r)) => Err(format!("refused ({}): {}", r.code.as_str(), r.reason)),
        Ok(other) => Err(format!("expected HelloAck, got {:?}", other.frame_type())),
        Err(LinkError::Closed) => Err("closed during the handshake".into()),
        Err(e) => Err(format!("handshake: {e}")),
    }
}
