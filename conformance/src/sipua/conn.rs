//! One SIP connection of a case: a UDP socket connected to the server, or a TCP or TLS
//! stream whose bytes are cut into messages by Content-Length ([`StreamFramer`]). Reads are
//! one datagram or one chunk at a time and cancel-safe, so a caller may bound them with a
//! timeout or race them against a retransmission timer; parsed messages wait in a queue.

use anyhow::{anyhow, bail, Context as _, Result};
use palaver_dialects::sip::{parse, SipMessage, StreamFramer};
use rustls_pki_types::ServerName;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Largest message accepted from the server.
const MAX_MESSAGE: usize = 256 * 1024;
/// Read buffer (one TCP/TLS chunk; UDP datagrams up to this size).
const READ_BUF: usize = 64 * 1024;

/// The SIP transport of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The Via token (`UDP`, `TCP`, `TLS`).
    pub fn via(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `transport` URI parameter (`udp`, `tcp`, `tls`).
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

enum Socket {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection to the server.
pub struct Conn {
    socket: Socket,
    framer: StreamFramer,
    pub local: SocketAddr,
    pub transport: Transport,
    buf: Vec<u8>,
    ready: VecDeque<SipMessage>,
}

/// What TLS needs: the client configuration and the name to verify.
#[derive(Clone)]
pub struct TlsSetup {
    pub config: Arc<rustls::ClientConfig>,
    pub name: ServerName<'static>,
}

impl Conn {
    /// Opens a connection to `server` over `transport` (TLS needs `tls`).
    pub async fn open(
        server: SocketAddr,
        transport: Transport,
        tls: Option<&TlsSetup>,
    ) -> Result<Conn> {
        let socket = match transport {
            Transport::Udp => {
                let bind: SocketAddr = if server.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let s = UdpSocket::bind(bind).await.context("UDP bind")?;
                s.connect(server)
                    .await
                    .with_context(|| format!("UDP {server}"))?;
                Socket::Udp(s)
            }
            Transport::Tcp | Transport::Tls => {
                let tcp = TcpStream::connect(server)
                    .await
                    .with_context(|| format!("connecting to {server}"))?;
                let _ = tcp.set_nodelay(true);
                if transport == Transport::Tcp {
                    Socket::Tcp(tcp)
                } else {
                    let tls = tls.context("TLS needs --tls-ca")?;
                    let stream = TlsConnector::from(tls.config.clone())
                        .connect(tls.name.clone(), tcp)
                        .await
                        .with_context(|| format!("TLS handshake with {server}"))?;
                    Socket::Tls(Box::new(stream))
                }
            }
        };
        let local = match &socket {
            Socket::Udp(s) => s.local_addr(),
            Socket::Tcp(s) => s.local_addr(),
            Socket::Tls(s) => s.get_ref().0.local_addr(),
        }?;
        // A UDP socket bound to the wildcard reports 0.0.0.0: use the server's side of the
        // route instead (everything runs on one host or the same network).
        let local = if local.ip().is_unspecified() {
            SocketAddr::new(server.ip(), local.port())
        } else {
            local
        };
        Ok(Conn {
            socket,
            framer: StreamFramer::for_client(MAX_MESSAGE),
            local,
            transport,
            buf: vec![0; READ_BUF],
            ready: VecDeque::new(),
        })
    }

    /// Sends one message.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.socket {
            Socket::Udp(s) => s.send(bytes).await.map(|_| ()),
            Socket::Tcp(s) => write_all(s, bytes).await,
            Socket::Tls(s) => write_all(s.as_mut(), bytes).await,
        }
        .map_err(|e| anyhow!("send: {e}"))
    }

    /// The next parsed message already read, if any.
    pub fn next_buffered(&mut self) -> Option<SipMessage> {
        self.ready.pop_front()
    }

    /// Reads once and parses what that completes. Unparsable datagrams are dropped; a broken
    /// stream is an error. Cancel-safe.
    pub async fn read_more(&mut self) -> Result<()> {
        let n = match &mut self.socket {
            Socket::Udp(s) => {
                let n = s.recv(&mut self.buf).await.context("recv")?;
                if let Some(m) = self.buf.get(..n).and_then(|b| parse(b, MAX_MESSAGE).ok()) {
                    self.ready.push_back(m);
                }
                return Ok(());
            }
            Socket::Tcp(s) => s.read(&mut self.buf).await,
            Socket::Tls(s) => s.read(&mut self.buf).await,
        }
        .context("read")?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        self.framer.feed(self.buf.get(..n).unwrap_or_default());
        while let Some(bytes) = self.framer.next_message()? {
            self.ready.push_back(parse(&bytes, MAX_MESSAGE)?);
        }
        Ok(())
    }

    /// Closes a stream (UDP has nothing to close).
    pub async fn close(&mut self) {
        match &mut self.socket {
            Socket::Udp(_) => {}
            Socket::Tcp(s) => {
                let _ = s.shutdown().await;
            }
            Socket::Tls(s) => {
                let _ = s.shutdown().await;
            }
        }
    }
}

async fn write_all<S: AsyncWrite + AsyncRead + Unpin + ?Sized>(
    s: &mut S,
    bytes: &[u8],
) -> std::io::Result<()> {
    s.write_all(bytes).await?;
    s.flush().await
}
