//! The 8011 listener: accepts TCP, completes mutual TLS (the client certificate must chain to
//! the pool CA), reads the Hello within the handshake timeout and checks it — same pool id, a
//! configured member, a certificate carrying `<node_id>.palaver-pool`, our protocol
//! version — then answers HelloAck and runs a peer link or an admin session, or answers Refuse
//! with the reason and closes. Every refusal is logged with its reason and counted.

use super::link::{serve_link, FramedIo};
use super::Shared;
use palaver_core::pool::{
    cert_name, AdminRequest, AdminResponse, Frame, FrameError, Hello, HelloAck, LinkKind, Refuse,
    RefuseCode, PROTOCOL_VERSION,
};
use rustls_pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// TLS handshake plus Hello must complete within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// An admin session idle this long is closed.
const ADMIN_IDLE: Duration = Duration::from_secs(30);
/// Inbound connections handled at once (members are at most 8; the rest is admin sessions).
const MAX_INBOUND: usize = 64;

/// Accepts connections until the task is aborted.
pub async fn run(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(MAX_INBOUND));
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "pool listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%addr, "pool listener: too many inbound connections; closing");
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            handle(tcp, addr, shared).await;
            drop(permit);
        });
    }
}

async fn handle(tcp: TcpStream, addr: SocketAddr, shared: Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    let acceptor = tokio_rustls::TlsAcceptor::from(shared.tls.server.clone());
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return refused_early(addr, "tls", &format!("TLS handshake failed: {e}")),
        Err(_) => return refused_early(addr, "tls", "TLS handshake timed out"),
    };
    let chain: Vec<CertificateDer<'static>> = tls
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    let mut io = FramedIo::new(tls, shared.cfg.max_frame_bytes);
    let first = match io.read(HANDSHAKE_TIMEOUT).await {
        Ok(Frame::Hello(h)) => Ok(h),
        Ok(other) => Err((
            RefuseCode::BadHandshake,
            format!("expected Hello, got {:?}", other.frame_type()),
        )),
        Err(super::link::LinkError::Frame(FrameError::UnsupportedVersion(v))) => Err((
            RefuseCode::UnsupportedVersion,
            format!("protocol version {v} not supported (this node speaks {PROTOCOL_VERSION})"),
        )),
        Err(e) => Err((RefuseCode::BadHandshake, format!("bad handshake: {e}"))),
    };
    let hello = match first {
        Ok(h) => h,
        Err((code, reason)) => return refuse(&mut io, addr, None, code, reason, &shared).await,
    };
    if let Err((code, reason)) = check_hello(&hello, &chain, &shared) {
        let claimed = Some(hello.node_id.as_str());
        return refuse(&mut io, addr, claimed, code, reason, &shared).await;
    }
    let ack = Frame::HelloAck(HelloAck {
        version: PROTOCOL_VERSION,
        pool_id: shared.cfg.pool_id.clone(),
        node_id: shared.cfg.node_id.clone(),
        incarnation: shared.membership.incarnation,
    });
    if let Err(e) = io.write(&ack).await {
        tracing::info!(%addr, node = %hello.node_id, error = %e, "pool: could not acknowledge Hello");
        return;
    }
    match hello.kind {
        LinkKind::Peer => {
            serve_link(io, hello.node_id, hello.incarnation, &shared).await;
        }
        LinkKind::Admin => admin_session(io, addr, &hello.node_id, &shared).await,
    }
}

/// The checks of a Hello after TLS; `Err` carries the refusal.
fn check_hello(
    hello: &Hello,
    chain: &[CertificateDer<'static>],
    shared: &Shared,
) -> Result<(), (RefuseCode, String)> {
    let cfg = &shared.cfg;
    if hello.pool_id != cfg.pool_id {
        return Err((
            RefuseCode::WrongPool,
            format!(
                "wrong pool id {:?} (this pool is {:?})",
                hello.pool_id, cfg.pool_id
            ),
        ));
    }
    if cfg.member(&hello.node_id).is_none() {
        return Err((
            RefuseCode::UnknownNode,
            format!(
                "{:?} is not a member of pool {}",
                hello.node_id, cfg.pool_id
            ),
        ));
    }
    let name = cert_name(&hello.node_id);
    shared
        .tls
        .check_peer_name(chain, &name)
        .map_err(|e| (RefuseCode::CertMismatch, e))?;
    if hello.kind == LinkKind::Peer && hello.node_id == cfg.node_id {
        return Err((RefuseCode::Other, "a peer link from our own node id".into()));
    }
    Ok(())
}

async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut FramedIo<S>,
    addr: SocketAddr,
    claimed: Option<&str>,
    code: RefuseCode,
    reason: String,
    shared: &Shared,
) {
    tracing::warn!(%addr, node = claimed.unwrap_or("?"), code = code.as_str(), %reason, "pool: refused a link");
    metrics::counter!("palaver_pool_links_refused_total", "reason" => code.as_str()).increment(1);
    if let Some(node) = claimed {
        shared
            .membership
            .record_error(node, &format!("refused its link: {reason}"));
    }
    let _ = io.write(&Frame::Refuse(Refuse { code, reason })).await;
    io.shutdown().await;
}

fn refused_early(addr: SocketAddr, label: &'static str, reason: &str) {
    tracing::warn!(%addr, %reason, "pool: refused a connection");
    metrics::counter!("palaver_pool_links_refused_total", "reason" => label).increment(1);
}

/// Answers admin requests until the client closes or idles.
async fn admin_session<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: FramedIo<S>,
    addr: SocketAddr,
    node: &str,
    shared: &Shared,
) {
    tracing::debug!(%addr, node, "pool admin session");
    loop {
        let response = match io.read(ADMIN_IDLE).await {
            Ok(Frame::AdminRequest { id, request }) => {
                let response = match request {
                    AdminRequest::Status => AdminResponse::Status(shared.membership.report()),
                    AdminRequest::Drain | AdminRequest::Undrain => {
                        let draining = request == AdminRequest::Drain;
                        tracing::warn!(%addr, by = node, draining, "pool drain requested");
                        shared.membership.set_draining(draining);
                        AdminResponse::Status(shared.membership.report())
                    }
                };
                Frame::AdminResponse { id, response }
            }
            Ok(other) => {
                tracing::info!(%addr, frame = ?other.frame_type(), "pool admin session: unexpected frame");
                break;
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "pool admin session ended");
                break;
            }
        };
        if io.write(&response).await.is_err() {
            break;
        }
    }
    io.shutdown().await;
}
