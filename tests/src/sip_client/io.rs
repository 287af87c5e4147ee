//! The wire under a [`super::SipClient`]: one UDP socket (bound to loopback or a chosen
//! address, port 0) or one
//! TCP / TLS connection, and a background reader task that owns the receiving side.
//!
//! The reader parses every message ([`palaver_dialects::sip::parse`]; TCP/TLS framed by
//! [`StreamFramer`]) and
//! * hands responses to the client transaction waiting on their Via branch, dropping late
//!   retransmissions of finished ones;
//! * answers every request from the server at once with the configured [`AutoReply`]
//!   (retransmissions get the same answer again and are not queued twice), then queues it in
//!   the inbox;
//! * counts the server's RFC 5626 keep-alive pongs (each CRLF between messages);
//! * queues everything else — unparsable bytes, responses nobody waits for — as raw frames.
//!
//! When the connection ends (EOF, a framing error, a read error) it records why, and closes the
//! inbox, the raw queue and every waiting transaction, so no waiter hangs until its timeout.

use super::{reason_phrase, AutoReply, InboundRequest, Response, SipTransport};
use anyhow::{Context as _, Result};
use palaver_dialects::sip::request::new_tag;
use palaver_dialects::sip::{is_keepalive, parse, response_to, FrameEvent, SipMessage};
use palaver_dialects::sip::{Method, StreamFramer};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Largest message the client accepts (conference-info documents of big rooms included).
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// How many finished transactions and answered requests are remembered for retransmissions.
const REMEMBERED: usize = 512;
/// Bound on connecting (TCP handshake plus TLS handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A frame nobody was waiting for: unparsable bytes, or a response matching no transaction.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub bytes: Vec<u8>,
    pub from: SocketAddr,
    /// Why it was not handled (`unparsable: …`, `response to no transaction`).
    pub note: String,
}

/// The sending side, shared by the client and the reader task.
pub(super) enum Writer {
    Udp {
        socket: Arc<UdpSocket>,
        server: SocketAddr,
    },
    Stream(tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>),
}

impl Writer {
    /// Sends to the server (UDP: to its listener address).
    pub(super) async fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Udp { server, .. } => self.send_to(bytes, *server).await,
            Writer::Stream(_) => self.send_to(bytes, None).await,
        }
    }

    /// Sends to `dest` over UDP (responses go back where the request came from); on a stream
    /// `dest` is ignored.
    async fn send_to(
        &self,
        bytes: &[u8],
        dest: impl Into<Option<SocketAddr>>,
    ) -> std::io::Result<()> {
        match self {
            Writer::Udp { socket, server } => {
                let dest = dest.into().unwrap_or(*server);
                socket.send_to(bytes, dest).await.map(|_| ())
            }
            Writer::Stream(w) => {
                let mut w = w.lock().await;
                w.write_all(bytes).await?;
                w.flush().await
            }
        }
    }

    /// Closes a stream (TLS: close_notify); nothing for UDP.
    pub(super) async fn shutdown(&self) -> std::io::Result<()> {
        match self {
            Writer::Udp { .. } => Ok(()),
            Writer::Stream(w) => w.lock().await.shutdown().await,
        }
    }
}

/// State shared by the client and its reader task.
pub(super) struct Shared {
    pub(super) writer: Writer,
    /// Via branch → the transaction waiting for responses.
    pending: Mutex<HashMap<String, mpsc::UnboundedSender<Response>>>,
    /// Branches of finished transactions (late retransmitted responses are dropped).
    finished: Mutex<VecDeque<String>>,
    auto_reply: Mutex<AutoReply>,
    /// Requests already answered: (branch, CSeq) → the answer sent (`None`: not answered).
    answered: Mutex<VecDeque<(String, Option<Vec<u8>>)>>,
    retransmits: AtomicUsize,
    pongs: AtomicUsize,
}

/// A poisoned lock only means another thread panicked; the data is still usable here.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn remember<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() >= REMEMBERED {
        q.pop_front();
    }
    q.push_back(item);
}

impl Shared {
    /// Registers a client transaction; responses with `branch` go to the returned receiver
    /// until [`Shared::finish`].
    pub(super) fn start_transaction(&self, branch: &str) -> mpsc::UnboundedReceiver<Response> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.pending).insert(branch.to_string(), tx);
        rx
    }

    pub(super) fn finish(&self, branch: &str) {
        lock(&self.pending).remove(branch);
        remember(&mut lock(&self.finished), branch.to_string());
    }

    pub(super) fn set_auto_reply(&self, reply: AutoReply) {
        *lock(&self.auto_reply) = reply;
    }

    pub(super) fn retransmits(&self) -> usize {
        self.retransmits.load(Ordering::Relaxed)
    }

    pub(super) fn pongs(&self) -> usize {
        self.pongs.load(Ordering::Relaxed)
    }
}

/// What [`open`] returns besides the shared state.
pub(super) struct Opened {
    pub(super) shared: Arc<Shared>,
    pub(super) local: SocketAddr,
    pub(super) inbox: mpsc::UnboundedReceiver<InboundRequest>,
    pub(super) raw: mpsc::UnboundedReceiver<RawFrame>,
    /// `Some(why)` once the connection is over.
    pub(super) closed: watch::Receiver<Option<String>>,
    pub(super) reader: JoinHandle<()>,
}

enum ReadSide {
    Udp(Arc<UdpSocket>),
    Stream(Box<dyn AsyncRead + Send + Unpin>),
}

/// Binds (UDP) or connects (TCP, TLS trusting only `ca`) to `server` and starts the reader.
/// The local end is `local_ip` (port 0) when given, else loopback.
pub(super) async fn open(
    transport: SipTransport,
    server: SocketAddr,
    ca: &Path,
    local_ip: Option<IpAddr>,
) -> Result<Opened> {
    let loopback: SocketAddr = match local_ip {
        Some(ip) => (ip, 0).into(),
        None if server.is_ipv4() => ([127, 0, 0, 1], 0).into(),
        None => (std::net::Ipv6Addr::LOCALHOST, 0).into(),
    };
    let (writer, read_side, local) = match transport {
        SipTransport::Udp => {
            let socket = Arc::new(
                UdpSocket::bind(loopback)
                    .await
                    .with_context(|| format!("binding a UDP socket on {loopback}"))?,
            );
            let local = socket.local_addr()?;
            let writer = Writer::Udp {
                socket: socket.clone(),
                server,
            };
            (writer, ReadSide::Udp(socket), local)
        }
        SipTransport::Tcp | SipTransport::Tls => {
            let socket = if server.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if local_ip.is_some() {
                socket
                    .bind(loopback)
                    .with_context(|| format!("binding a TCP socket on {loopback}"))?;
            }
            let tcp = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(server))
                .await
                .map_err(|_| anyhow::anyhow!("connecting to {server} timed out"))?
                .with_context(|| format!("connecting to SIP {transport} {server}"))?;
            tcp.set_nodelay(true)?;
            let local = tcp.local_addr()?;
            if transport == SipTransport::Tcp {
                let (r, w) = tcp.into_split();
                let w: Box<dyn AsyncWrite + Send + Unpin> = Box::new(w);
                let r: Box<dyn AsyncRead + Send + Unpin> = Box::new(r);
                (
                    Writer::Stream(tokio::sync::Mutex::new(w)),
                    ReadSide::Stream(r),
                    local,
                )
            } else {
                let config = crate::tls::client_config(ca)?;
                let connector = tokio_rustls::TlsConnector::from(config);
                let tls = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    connector.connect(crate::tls::server_name(), tcp),
                )
                .await
                .map_err(|_| anyhow::anyhow!("TLS handshake with {server} timed out"))?
                .with_context(|| format!("TLS handshake with SIP TLS {server}"))?;
                let (r, w) = tokio::io::split(tls);
                let w: Box<dyn AsyncWrite + Send + Unpin> = Box::new(w);
                let r: Box<dyn AsyncRead + Send + Unpin> = Box::new(r);
                (
                    Writer::Stream(tokio::sync::Mutex::new(w)),
                    ReadSide::Stream(r),
                    local,
                )
            }
        }
    };
    let shared = Arc::new(Shared {
        writer,
        pending: Mutex::new(HashMap::new()),
        finished: Mutex::new(VecDeque::new()),
        auto_reply: Mutex::new(AutoReply::Status(200)),
        answered: Mutex::new(VecDeque::new()),
        retransmits: AtomicUsize::new(0),
        pongs: AtomicUsize::new(0),
    });
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let (raw_tx, raw) = mpsc::unbounded_channel();
    let (closed_tx, closed) = watch::channel(None);
    let reader = Reader {
        shared: shared.clone(),
        server,
        inbox: inbox_tx,
        raw: raw_tx,
    };
    let reader = tokio::spawn(async move {
        let why = reader.run(read_side).await;
        // Wake every waiting transaction: their senders go away.
        lock(&reader.shared.pending).clear();
        let _ = closed_tx.send(Some(why));
    });
    Ok(Opened {
        shared,
        local,
        inbox,
        raw,
        closed,
        reader,
    })
}

struct Reader {
    shared: Arc<Shared>,
    server: SocketAddr,
    inbox: mpsc::UnboundedSender<InboundRequest>,
    raw: mpsc::UnboundedSender<RawFrame>,
}

impl Reader {
    /// Reads until the connection ends; returns why it ended.
    async fn run(&self, side: ReadSide) -> String {
        match side {
            ReadSide::Udp(socket) => {
                let mut buf = vec![0u8; 65536];
                loop {
                    match socket.recv_from(&mut buf).await {
                        Ok((n, from)) => self.frame(buf.get(..n).unwrap_or_default(), from).await,
                        // ICMP errors surface on the next receive; keep listening.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }
            ReadSide::Stream(mut stream) => {
                let mut framer = StreamFramer::for_client(MAX_MESSAGE);
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) => return "the server closed the connection".into(),
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            return "the server closed the connection (no TLS close_notify)".into()
                        }
                        Err(e) => return format!("reading failed: {e}"),
                    };
                    framer.feed(buf.get(..n).unwrap_or_default());
                    loop {
                        match framer.next_event() {
                            Ok(Some(FrameEvent::Message(bytes))) => {
                                self.frame(&bytes, self.server).await
                            }
                            Ok(Some(FrameEvent::Ping)) => {
                                let _ = self.shared.writer.send(b"\r\n").await;
                            }
                            Ok(Some(FrameEvent::Pong)) => {
                                self.shared.pongs.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(None) => break,
                            Err(e) => {
                                return format!("the server's byte stream is not valid SIP: {e}")
                            }
                        }
                    }
                }
            }
        }
    }

    fn unhandled(&self, bytes: &[u8], from: SocketAddr, note: String) {
        let _ = self.raw.send(RawFrame {
            bytes: bytes.to_vec(),
            from,
            note,
        });
    }

    async fn frame(&self, bytes: &[u8], from: SocketAddr) {
        if is_keepalive(bytes) {
            return;
        }
        let message = match parse(bytes, MAX_MESSAGE) {
            Ok(m) => m,
            Err(e) => return self.unhandled(bytes, from, format!("unparsable: {e}")),
        };
        if message.is_request() {
            return self.request(message, bytes, from).await;
        }
        let branch = message.branch().unwrap_or_default().to_string();
        let waiting = lock(&self.shared.pending).get(&branch).cloned();
        if let Some(tx) = waiting {
            let _ = tx.send(Response {
                code: message.status().unwrap_or_default(),
                reason: message.reason().unwrap_or_default().to_string(),
                raw: bytes.to_vec(),
                message,
            });
        } else if !lock(&self.shared.finished).contains(&branch) {
            self.unhandled(bytes, from, "a response to no transaction".into());
        }
    }

    async fn request(&self, message: SipMessage, bytes: &[u8], from: SocketAddr) {
        let key = format!(
            "{}|{}|{}",
            message.branch().unwrap_or_default(),
            message.cseq(),
            message.call_id()
        );
        let previous = lock(&self.shared.answered)
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, answer)| answer.clone());
        if let Some(answer) = previous {
            self.shared.retransmits.fetch_add(1, Ordering::Relaxed);
            if let Some(answer) = answer {
                let _ = self.shared.writer.send_to(&answer, from).await;
            }
            return;
        }
        let reply = *lock(&self.shared.auto_reply);
        let answer = match (message.method(), reply) {
            (Some(Method::Ack), _) | (_, AutoReply::Ignore) => None,
            (_, AutoReply::Status(code)) => {
                let tag = new_tag();
                Some(response_to(&message, code, reason_phrase(code), Some(&tag)).to_bytes())
            }
        };
        if let Some(answer) = &answer {
            let _ = self.shared.writer.send_to(answer, from).await;
        }
        let answered = answer.as_ref().map(|_| match reply {
            AutoReply::Status(code) => code,
            AutoReply::Ignore => 0,
        });
        remember(&mut lock(&self.shared.answered), (key, answer));
        let _ = self
            .inbox
            .send(InboundRequest::new(message, bytes, from, answered));
    }
}
