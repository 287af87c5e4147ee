//! SIP transports: a [`Flow`] is the path back to one peer — a UDP socket and the peer's
//! address, or one TCP/TLS connection's write queue — so requests to a registered contact go
//! out the way its REGISTER came in (RFC 5626 flows; works through NAT). Listeners for UDP
//! and for TCP/TLS connections live here too; every message read is handed to
//! [`super::inbound`]. A connection ends on EOF, a framing error (answered first when
//! possible), `sip.idle_timeout_secs` of silence or shutdown: its queue is then flushed and
//! closed, so flows other tasks still hold report it closed, and the socket is dropped.

use super::SipService;
use bytes::Bytes;
use palaver_dialects::sip::{FrameEvent, StreamFramer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

/// Messages queued towards one TCP/TLS connection before it counts as stuck.
const STREAM_QUEUE: usize = 1024;
/// Time allowed for a TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Time allowed for one write to a connection before it is closed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed to flush a closing connection's queue before the socket is dropped.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// Largest UDP datagram read.
const MAX_DATAGRAM: usize = 65_535;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// A SIP transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// Lowercase name (`udp`, `tcp`, `tls`), as stored with registrations.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// The Via transport token.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// TCP and TLS are reliable: no retransmissions.
    pub fn reliable(self) -> bool {
        self != Transport::Udp
    }
}

#[derive(Clone)]
enum Path {
    Udp(Arc<UdpSocket>),
    Stream { id: u64, tx: mpsc::Sender<Bytes> },
}

/// The way back to one peer.
#[derive(Clone)]
pub struct Flow {
    pub transport: Transport,
    pub peer: SocketAddr,
    /// Our `host:port` for Via sent-by and Contact on requests sent over this flow.
    pub local: Arc<str>,
    path: Path,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.transport.as_str(), self.peer)
    }
}

impl Flow {
    /// Sends one message; false when it could not be handed to the socket or connection (a
    /// stream connection that is closed or whose queue is full).
    pub async fn send(&self, bytes: Bytes) -> bool {
        match &self.path {
            Path::Udp(socket) => socket.send_to(&bytes, self.peer).await.is_ok(),
            Path::Stream { tx, .. } => tx.try_send(bytes).is_ok(),
        }
    }

    /// False once a stream connection has closed (UDP flows never close).
    pub fn is_open(&self) -> bool {
        match &self.path {
            Path::Udp(_) => true,
            Path::Stream { tx, .. } => !tx.is_closed(),
        }
    }

    /// Whether both are the same path (same connection, or same UDP socket and peer).
    pub fn same(&self, other: &Flow) -> bool {
        match (&self.path, &other.path) {
            (Path::Udp(a), Path::Udp(b)) => Arc::ptr_eq(a, b) && self.peer == other.peer,
            (Path::Stream { id: a, .. }, Path::Stream { id: b, .. }) => a == b,
            _ => false,
        }
    }

    /// The connection id of a stream flow.
    pub fn connection(&self) -> Option<u64> {
        match &self.path {
            Path::Stream { id, .. } => Some(*id),
            Path::Udp(_) => None,
        }
    }
}

/// `host:port` to advertise for a listener bound to `local`: the address itself, or the
/// domain with the port when bound to the unspecified address.
fn advertised(local: SocketAddr, domain: &str) -> Arc<str> {
    if local.ip().is_unspecified() {
        Arc::from(format!("{domain}:{}", local.port()))
    } else {
        Arc::from(local.to_string())
    }
}

/// Reads datagrams until shutdown: responses are handled on their own task, requests in
/// order per source (see [`super::udp_peers`]).
pub async fn run_udp(svc: Arc<SipService>, socket: UdpSocket) {
    let socket = Arc::new(socket);
    let local = match socket.local_addr() {
        Ok(addr) => advertised(addr, &svc.domain),
        Err(e) => {
            tracing::error!(error = %e, "UDP socket has no local address");
            return;
        }
    };
    let mut shutdown = svc.ctx.shutdown.clone();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, peer)) => {
                    let Some(datagram) = buf.get(..n) else { continue };
                    if datagram.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
                        continue; // keep-alive
                    }
                    if !is_response(datagram) && !svc.limiter.allow(peer.ip()) {
                        metrics::counter!("palaver_sip_rate_limited_total").increment(1);
                        continue;
                    }
                    let flow = Flow {
                        transport: Transport::Udp,
                        peer,
                        local: local.clone(),
                        path: Path::Udp(socket.clone()),
                    };
                    let datagram = datagram.to_vec();
                    if is_response(&datagram) {
                        let svc = svc.clone();
                        tokio::spawn(async move {
                            super::inbound::on_message(&svc, datagram, &flow).await
                        });
                    } else {
                        svc.udp_peers.dispatch(&svc, datagram, flow);
                    }
                }
                Err(e) => {
                    // ICMP port unreachable surfaces here on some systems; keep serving.
                    tracing::debug!(error = %e, "UDP receive failed");
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

/// Accepts TCP (or, with `tls`, TLS) connections until shutdown.
pub async fn run_stream(svc: Arc<SipService>, listener: TcpListener, tls: bool) {
    let mut shutdown = svc.ctx.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Some(permit) = svc.conn_limit.try_acquire(peer.ip()) else {
                        metrics::counter!("palaver_connections_refused_total", "protocol" => "sip")
                            .increment(1);
                        tracing::debug!(%peer, "too many SIP connections from this address");
                        continue;
                    };
                    let svc = svc.clone();
                    tokio::spawn(async move {
                        serve_connection(svc, tcp, peer, tls).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SIP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
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

async fn serve_connection(svc: Arc<SipService>, tcp: TcpStream, peer: SocketAddr, tls: bool) {
    let _ = tcp.set_nodelay(true);
    let local = match tcp.local_addr() {
        Ok(addr) => advertised(addr, &svc.domain),
        Err(_) => return,
    };
    if tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(svc.ctx.tls.clone());
        match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => run_connection(svc, stream, peer, local, Transport::Tls).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "SIP TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "SIP TLS handshake timed out"),
        }
    } else {
        run_connection(svc, tcp, peer, local, Transport::Tcp).await;
    }
}

async fn run_connection<S>(
    svc: Arc<SipService>,
    stream: S,
    peer: SocketAddr,
    local: Arc<str>,
    transport: Transport,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Bytes>(STREAM_QUEUE);
    let flow = Flow {
        transport,
        peer,
        local,
        path: Path::Stream { id, tx },
    };
    metrics::gauge!("palaver_sip_connections").increment(1.0);
    tracing::debug!(%peer, transport = transport.as_str(), "SIP connection open");
    // Told when reading ends: other tasks may still hold clones of the flow (subscriptions,
    // deliveries in flight), so the queue is closed rather than waited on until they let go.
    let (reading_done, mut done) = oneshot::channel::<()>();
    let mut write_task = tokio::spawn(async move {
        let mut closing = false;
        loop {
            let next = if closing {
                rx.recv().await
            } else {
                tokio::select! {
                    biased;
                    next = rx.recv() => next,
                    _ = &mut done => {
                        // Send what is queued (such as the answer to a bad message), then end.
                        rx.close();
                        closing = true;
                        continue;
                    }
                }
            };
            let Some(bytes) = next else { break };
            match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&bytes)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
        let _ = writer.shutdown().await;
    });
    let idle = svc.idle_timeout;
    let mut framer = StreamFramer::new(svc.config.max_message_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    let mut shutdown = svc.ctx.shutdown.clone();
    'conn: loop {
        let n = tokio::select! {
            read = tokio::time::timeout(idle, reader.read(&mut buf)) => match read {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => n,
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() { break } else { continue }
            }
        };
        framer.feed(buf.get(..n).unwrap_or_default());
        loop {
            match framer.next_event() {
                Ok(None) => break,
                Ok(Some(FrameEvent::Ping)) => {
                    flow.send(Bytes::from_static(b"\r\n")).await;
                }
                Ok(Some(FrameEvent::Pong)) => {}
                Ok(Some(FrameEvent::Message(raw))) => {
                    if !is_response(&raw) && !svc.limiter.allow(peer.ip()) {
                        metrics::counter!("palaver_sip_rate_limited_total").increment(1);
                        let busy = palaver_dialects::sip::stateless_response(
                            &raw,
                            503,
                            "Service Unavailable",
                            &[("Retry-After", "5")],
                        );
                        if let Some(busy) = busy {
                            flow.send(Bytes::from(busy)).await;
                        }
                        continue;
                    }
                    super::inbound::on_message(&svc, raw, &flow).await;
                }
                Err(err) => {
                    // The framer stays failed: answer what can be answered, then close.
                    let partial = framer.failed_head().and_then(|head| {
                        palaver_dialects::sip::error_response(head, &err, super::inbound::ALLOW)
                    });
                    tracing::debug!(%peer, error = %err, "closing SIP connection");
                    if let Some(resp) = partial {
                        flow.send(Bytes::from(resp)).await;
                    }
                    break 'conn;
                }
            }
        }
    }
    let _ = reading_done.send(());
    drop(flow);
    svc.on_connection_closed(id).await;
    if tokio::time::timeout(CLOSE_FLUSH, &mut write_task)
        .await
        .is_err()
    {
        // The peer does not read: drop what is left so the socket closes.
        write_task.abort();
    }
    metrics::gauge!("palaver_sip_connections").decrement(1.0);
    tracing::debug!(%peer, "SIP connection closed");
}

/// Responses answer requests we sent (MESSAGE, NOTIFY): they are not rate-limited, or a busy
/// room would drop its occupants' 200s and retransmit. Garbage posing as a response costs a
/// parse and a table lookup.
fn is_response(bytes: &[u8]) -> bool {
    bytes.starts_with(b"SIP/2.0 ")
}
