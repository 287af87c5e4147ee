//! [`RawClient`]: a deliberately small XMPP client for the tests — TCP, STARTTLS (or direct
//! TLS) trusting the dev CA, SASL PLAIN, resource binding, then stanzas as text. It can also
//! send arbitrary bytes and read until a stream error or the connection closes, which is what
//! the bad-input tests need and what a real client library would refuse to do.
//!
//! Every read is bounded by a timeout; a timeout is an error that says what was awaited and
//! shows the last bytes received.

use crate::xml::{self, esc};
use anyhow::{anyhow, bail, Context as _, Result};
use base64::Engine as _;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::ns;
use palaver_dialects::xmpp::reader::{Limits, StreamEvent, StreamReader};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The byte stream under the XML stream.
enum Transport {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl Transport {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Transport::Tcp(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Transport::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Transport::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    /// Reads some bytes; `Ok(0)` at the end of the stream (a TLS close without close_notify
    /// counts as the end too).
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let res = match self {
            Transport::Tcp(s) => s.read(buf).await,
            Transport::Tls(s) => s.read(buf).await,
            Transport::Gone => return Ok(0),
        };
        match res {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

/// What the server answered to a SASL attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslOutcome {
    Success,
    /// `<failure><CONDITION/></failure>`.
    Failure(String),
    /// The server ended the stream instead (`<stream:error><CONDITION/>`).
    StreamError(String),
}

/// What was read from the stream.
#[derive(Debug)]
pub enum Incoming {
    /// The server's stream header.
    Open,
    Stanza(Element),
    /// `</stream:stream>`.
    Close,
    /// The connection ended (EOF or reset).
    Eof,
}

/// A stream error seen while reading.
#[derive(Debug, Clone)]
pub struct StreamErrorSeen {
    pub condition: String,
    /// The host named by `<see-other-host/>` (RFC 6120 §4.9.3.19), when that is the condition.
    pub other_host: Option<String>,
    /// Whether the server then closed the stream or the connection (within a few seconds).
    pub closed: bool,
    /// Stanzas received before the error.
    pub before: Vec<Element>,
}

/// Outcome of a MUC join.
#[derive(Debug)]
pub enum JoinOutcome {
    /// The self-presence (status 110) and the other presences seen before it.
    Joined {
        self_presence: Element,
        others: Vec<Element>,
    },
    /// A presence error: its condition and the whole stanza.
    Error { condition: String, stanza: Element },
}

impl JoinOutcome {
    /// The self-presence, or an error describing the failure.
    pub fn joined(self) -> Result<Element> {
        match self {
            JoinOutcome::Joined { self_presence, .. } => Ok(self_presence),
            JoinOutcome::Error { condition, stanza } => {
                bail!("join failed with <{condition}/>: {}", xml::show(&stanza))
            }
        }
    }
}

/// A raw XMPP client connection.
pub struct RawClient {
    io: Transport,
    reader: StreamReader,
    /// The latest `<stream:features/>`.
    pub features: Option<Element>,
    /// The bound full JID, once bound.
    pub jid: Option<String>,
    /// Stanzas read while waiting for something else, oldest first.
    pending: VecDeque<Element>,
    /// The last bytes received (for failure messages).
    tail: Vec<u8>,
    closed: bool,
    next_id: u64,
    /// Default timeout of one expected reply.
    pub timeout: Duration,
}

const TAIL_MAX: usize = 4096;

impl RawClient {
    fn new(io: Transport) -> RawClient {
        // Room events can carry large bodies; the client side reads generously.
        let limits = Limits {
            max_stanza_bytes: 8 * 1024 * 1024,
            max_depth: 64,
            max_attrs: 256,
            max_stream_header_bytes: 16 * 1024,
        };
        RawClient {
            io,
            reader: StreamReader::new(limits),
            features: None,
            jid: None,
            pending: VecDeque::new(),
            tail: Vec::new(),
            closed: false,
            next_id: 1,
            timeout: crate::STEP_TIMEOUT,
        }
    }

    /// TCP connection without anything sent yet.
    pub async fn tcp(addr: SocketAddr) -> Result<RawClient> {
        let tcp = tokio::time::timeout(crate::STEP_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connecting to {addr} timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        let _ = tcp.set_nodelay(true);
        Ok(RawClient::new(Transport::Tcp(tcp)))
    }

    /// TCP connection from a chosen local address (e.g. 127.0.0.2) and, optionally, a small
    /// receive buffer (a client that reads slowly stops being able to absorb data early).
    pub async fn tcp_from(
        local: IpAddr,
        addr: SocketAddr,
        recv_buffer: Option<u32>,
    ) -> Result<RawClient> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        socket
            .bind(SocketAddr::new(local, 0))
            .with_context(|| format!("binding to {local}"))?;
        let tcp = tokio::time::timeout(crate::STEP_TIMEOUT, socket.connect(addr))
            .await
            .map_err(|_| anyhow!("connecting to {addr} timed out"))?
            .with_context(|| format!("connecting to {addr} from {local}"))?;
        let _ = tcp.set_nodelay(true);
        Ok(RawClient::new(Transport::Tcp(tcp)))
    }

    /// Connects to the STARTTLS port and opens the stream (header + features read).
    pub async fn connect(addr: SocketAddr) -> Result<RawClient> {
        let mut c = RawClient::tcp(addr).await?;
        c.open_stream().await?;
        Ok(c)
    }

    /// Connects to the STARTTLS port and upgrades to TLS trusting `ca`.
    pub async fn connect_tls(addr: SocketAddr, ca: &Path) -> Result<RawClient> {
        let mut c = RawClient::connect(addr).await?;
        c.starttls(ca).await?;
        Ok(c)
    }

    /// Connects to the direct-TLS port (XEP-0368), handshakes and opens the stream.
    pub async fn connect_direct_tls(addr: SocketAddr, ca: &Path) -> Result<RawClient> {
        let mut c = RawClient::tcp(addr).await?;
        c.tls_handshake(ca).await?;
        c.open_stream().await?;
        Ok(c)
    }

    /// STARTTLS, authenticate with PLAIN, bind `resource`: a ready session.
    pub async fn login(
        addr: SocketAddr,
        ca: &Path,
        username: &str,
        password: &str,
        resource: &str,
    ) -> Result<RawClient> {
        let mut c = RawClient::connect_tls(addr, ca).await?;
        c.authenticate(username, password, resource).await?;
        Ok(c)
    }

    /// PLAIN (must succeed), stream restart and bind.
    pub async fn authenticate(
        &mut self,
        username: &str,
        password: &str,
        resource: &str,
    ) -> Result<()> {
        match self.auth_plain(username, password).await? {
            SaslOutcome::Success => {}
            other => bail!("login of {username} failed: {other:?}"),
        }
        self.restart_stream().await?;
        self.bind(resource).await?;
        Ok(())
    }

    /// Sends our stream header and reads the server's header and `<stream:features/>`.
    pub async fn open_stream(&mut self) -> Result<()> {
        let header = format!(
            "<?xml version='1.0'?><stream:stream to='{}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>",
            crate::DOMAIN
        );
        self.send_raw(header.as_bytes()).await?;
        let deadline = Instant::now() + self.timeout;
        match self.read_event(deadline).await? {
            Incoming::Stanza(el) if xml::is_stream_error(&el) => bail!(
                "the server answered our stream header with a stream error: {}",
                xml::show(&el)
            ),
            Incoming::Stanza(el) => bail!("expected the stream header, got {}", xml::show(&el)),
            Incoming::Close | Incoming::Eof => bail!(
                "the connection closed instead of a stream header; received: {}",
                self.tail_text()
            ),
            Incoming::Open => {}
        }
        let features = self
            .read_stanza_until(deadline)
            .await
            .context("waiting for <stream:features/>")?;
        if !features.is("features", ns::STREAM) {
            bail!("expected <stream:features/>, got {}", xml::show(&features));
        }
        self.features = Some(features);
        Ok(())
    }

    /// `<starttls/>` → `<proceed/>` → TLS handshake → new stream.
    pub async fn starttls(&mut self, ca: &Path) -> Result<()> {
        self.send_str("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await?;
        let answer = self.next_stanza().await.context("waiting for <proceed/>")?;
        if !answer.is("proceed", ns::TLS) {
            bail!("STARTTLS refused: {}", xml::show(&answer));
        }
        self.tls_handshake(ca).await?;
        self.open_stream().await
    }

    async fn tls_handshake(&mut self, ca: &Path) -> Result<()> {
        let Transport::Tcp(tcp) = std::mem::replace(&mut self.io, Transport::Gone) else {
            bail!("TLS can only start on a plain TCP connection");
        };
        let connector = TlsConnector::from(crate::tls::client_config(ca)?);
        let tls = tokio::time::timeout(
            self.timeout,
            connector.connect(crate::tls::server_name(), tcp),
        )
        .await
        .map_err(|_| anyhow!("TLS handshake timed out"))?
        .context("TLS handshake (trusting the dev CA, server name localhost)")?;
        self.io = Transport::Tls(Box::new(tls));
        self.reader.reset();
        self.pending.clear();
        Ok(())
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.io, Transport::Tls(_))
    }

    /// The SASL mechanisms in the latest features.
    pub fn mechanisms(&self) -> Vec<String> {
        self.features
            .as_ref()
            .and_then(|f| f.get_child("mechanisms", ns::SASL))
            .map(|m| {
                m.children_named("mechanism", ns::SASL)
                    .map(Element::text)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One SASL PLAIN attempt.
    pub async fn auth_plain(&mut self, username: &str, password: &str) -> Result<SaslOutcome> {
        let payload = format!("\0{username}\0{password}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(payload.as_bytes());
        self.send_str(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{b64}</auth>"
        ))
        .await?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_event(deadline).await? {
                Incoming::Stanza(el) if el.is("success", ns::SASL) => {
                    return Ok(SaslOutcome::Success)
                }
                Incoming::Stanza(el) if el.is("failure", ns::SASL) => {
                    let cond = el
                        .children()
                        .find(|c| c.name != "text")
                        .map(|c| c.name.clone())
                        .unwrap_or_default();
                    return Ok(SaslOutcome::Failure(cond));
                }
                Incoming::Stanza(el) if xml::is_stream_error(&el) => {
                    return Ok(SaslOutcome::StreamError(
                        xml::stream_error_condition(&el).unwrap_or_default(),
                    ))
                }
                Incoming::Stanza(el) if el.is("challenge", ns::SASL) => {
                    bail!("unexpected SASL challenge for PLAIN: {}", xml::show(&el))
                }
                Incoming::Stanza(el) => self.pending.push_back(el),
                Incoming::Open => bail!("unexpected stream header during SASL"),
                Incoming::Close | Incoming::Eof => bail!(
                    "the connection closed during SASL; received: {}",
                    self.tail_text()
                ),
            }
        }
    }

    /// After SASL success: a fresh stream (header + features).
    pub async fn restart_stream(&mut self) -> Result<()> {
        self.reader.reset();
        self.pending.clear();
        self.open_stream().await
    }

    /// Binds `resource`; returns the full JID.
    pub async fn bind(&mut self, resource: &str) -> Result<String> {
        let reply = self
            .iq(&format!(
                "<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                 <resource>{}</resource></bind></iq>",
                esc(resource)
            ))
            .await?;
        if reply.attr("type") != Some("result") {
            bail!("bind failed: {}", xml::show(&reply));
        }
        let jid = reply
            .get_child("bind", ns::BIND)
            .and_then(|b| b.child_text("jid", ns::BIND))
            .ok_or_else(|| anyhow!("bind result without a JID: {}", xml::show(&reply)))?;
        self.jid = Some(jid.clone());
        Ok(jid)
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        tokio::time::timeout(self.timeout, self.io.write_all(bytes))
            .await
            .map_err(|_| anyhow!("writing {} bytes timed out", bytes.len()))?
            .context("writing to the server")
    }

    /// Sends a string as it is.
    pub async fn send_str(&mut self, s: &str) -> Result<()> {
        self.send_raw(s.as_bytes()).await
    }

    /// A fresh stanza id.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("t{}", self.next_id)
    }

    /// Reads the next stream event, honouring `deadline`.
    pub async fn read_event(&mut self, deadline: Instant) -> Result<Incoming> {
        if let Some(el) = self.pending.pop_front() {
            return Ok(Incoming::Stanza(el));
        }
        loop {
            match self.reader.next_event() {
                Ok(Some(StreamEvent::Open { .. })) => return Ok(Incoming::Open),
                Ok(Some(StreamEvent::Stanza(el))) => return Ok(Incoming::Stanza(el)),
                Ok(Some(StreamEvent::Close)) => {
                    self.closed = true;
                    return Ok(Incoming::Close);
                }
                Ok(None) => {}
                Err(e) => bail!(
                    "the server sent XML the client cannot parse ({e}); received: {}",
                    self.tail_text()
                ),
            }
            if self.closed {
                return Ok(Incoming::Eof);
            }
            let mut buf = vec![0u8; 64 * 1024];
            let n = match tokio::time::timeout_at(deadline, self.io.read(&mut buf)).await {
                Err(_) => bail!("timed out; last bytes received: {}", self.tail_text()),
                Ok(Ok(n)) => n,
                Ok(Err(e)) if is_reset(&e) => 0,
                Ok(Err(e)) => return Err(e).context("reading from the server"),
            };
            if n == 0 {
                self.closed = true;
                return Ok(Incoming::Eof);
            }
            self.tail.extend_from_slice(&buf[..n]);
            if self.tail.len() > TAIL_MAX {
                let cut = self.tail.len() - TAIL_MAX;
                self.tail.drain(..cut);
            }
            if let Err(e) = self.reader.feed(&buf[..n]) {
                bail!(
                    "the server sent data the client cannot parse ({e}); received: {}",
                    self.tail_text()
                );
            }
        }
    }

    /// The next stanza (within the default timeout); an error if the stream ends.
    pub async fn next_stanza(&mut self) -> Result<Element> {
        let deadline = Instant::now() + self.timeout;
        self.read_stanza_until(deadline).await
    }

    async fn read_stanza_until(&mut self, deadline: Instant) -> Result<Element> {
        match self.read_event(deadline).await? {
            Incoming::Stanza(el) => Ok(el),
            Incoming::Open => bail!("unexpected stream header"),
            Incoming::Close | Incoming::Eof => bail!(
                "the server closed the stream; last bytes received: {}",
                self.tail_text()
            ),
        }
    }

    /// The first stanza (old or new) matching `pred`, within `timeout`; stanzas that do not
    /// match are kept for later reads. A stream error fails at once.
    pub async fn wait_for<F>(&mut self, timeout: Duration, what: &str, pred: F) -> Result<Element>
    where
        F: Fn(&Element) -> bool,
    {
        if let Some(pos) = self.pending.iter().position(&pred) {
            return Ok(self.pending.remove(pos).expect("position is in range"));
        }
        let deadline = Instant::now() + timeout;
        let mut skipped = VecDeque::new();
        let result = loop {
            let event = match self.read_event_no_pending(deadline).await {
                Ok(ev) => ev,
                Err(e) => break Err(e),
            };
            match event {
                Incoming::Stanza(el) if pred(&el) => break Ok(el),
                Incoming::Stanza(el) if xml::is_stream_error(&el) => {
                    break Err(anyhow!(
                        "stream error while waiting for {what}: {}",
                        xml::show(&el)
                    ))
                }
                Incoming::Stanza(el) => skipped.push_back(el),
                Incoming::Open => {}
                Incoming::Close | Incoming::Eof => {
                    break Err(anyhow!(
                        "the server closed the stream while waiting for {what}; last bytes: {}",
                        self.tail_text()
                    ))
                }
            }
        };
        let summary: Vec<String> = skipped.iter().rev().take(5).map(xml::show).collect();
        self.pending.extend(skipped);
        result.map_err(|e| {
            if summary.is_empty() {
                e.context(format!("waiting for {what}"))
            } else {
                e.context(format!(
                    "waiting for {what} (other stanzas seen, latest first: {})",
                    summary.join(" | ")
                ))
            }
        })
    }

    async fn read_event_no_pending(&mut self, deadline: Instant) -> Result<Incoming> {
        let saved = std::mem::take(&mut self.pending);
        let res = self.read_event(deadline).await;
        self.pending = saved;
        res
    }

    /// Sends an IQ (an `id` attribute is required in `iq`) and waits for its result or error.
    pub async fn iq(&mut self, iq: &str) -> Result<Element> {
        let el = Element::parse(iq.as_bytes()).map_err(|e| anyhow!("bad test IQ {iq}: {e}"))?;
        let id = el
            .attr("id")
            .ok_or_else(|| anyhow!("test IQ without id: {iq}"))?
            .to_string();
        self.send_str(iq).await?;
        let timeout = self.timeout;
        self.wait_for(timeout, &format!("the reply to IQ {id}"), |r| {
            r.name == "iq"
                && r.attr("id") == Some(id.as_str())
                && matches!(r.attr("type"), Some("result") | Some("error"))
        })
        .await
    }

    /// Like [`RawClient::iq`] but fails unless the reply is a result.
    pub async fn iq_ok(&mut self, iq: &str) -> Result<Element> {
        let reply = self.iq(iq).await?;
        if reply.attr("type") != Some("result") {
            bail!(
                "IQ failed: sent {} — got {}",
                xml::cut(iq, 400),
                xml::show(&reply)
            );
        }
        Ok(reply)
    }

    /// Reads until a `<stream:error/>` arrives, then up to 5 s more for the close.
    pub async fn expect_stream_error(&mut self, timeout: Duration) -> Result<StreamErrorSeen> {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            match self.read_event(deadline).await? {
                Incoming::Stanza(el) if xml::is_stream_error(&el) => {
                    let condition = xml::stream_error_condition(&el).ok_or_else(|| {
                        anyhow!("stream error without a condition: {}", xml::show(&el))
                    })?;
                    let other_host = el
                        .get_child("see-other-host", ns::STREAM_ERRORS)
                        .map(|h| h.text().trim().to_string());
                    let closed = self.wait_closed(Duration::from_secs(5)).await;
                    return Ok(StreamErrorSeen {
                        condition,
                        other_host,
                        closed,
                        before,
                    });
                }
                Incoming::Stanza(el) => before.push(el),
                Incoming::Open => {}
                Incoming::Close | Incoming::Eof => bail!(
                    "the connection closed without a stream error; last bytes received: {}",
                    self.tail_text()
                ),
            }
        }
    }

    /// Whether the server closes the stream or the connection within `timeout` (stanzas read
    /// meanwhile are dropped).
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_event(deadline).await {
                Ok(Incoming::Close) | Ok(Incoming::Eof) => return true,
                Ok(_) => {}
                Err(_) => return self.closed,
            }
        }
    }

    /// Reads everything until the stream or the connection ends (or `timeout`); returns the
    /// stanzas and whether the end was reached.
    pub async fn drain_until_closed(&mut self, timeout: Duration) -> (Vec<Element>, bool) {
        let deadline = Instant::now() + timeout;
        let mut all = Vec::new();
        loop {
            match self.read_event(deadline).await {
                Ok(Incoming::Stanza(el)) => all.push(el),
                Ok(Incoming::Open) => {}
                Ok(Incoming::Close) | Ok(Incoming::Eof) => return (all, true),
                Err(_) => return (all, self.closed),
            }
        }
    }

    /// The last bytes received, as text.
    pub fn tail_text(&self) -> String {
        if self.tail.is_empty() {
            return "(nothing)".into();
        }
        let text = String::from_utf8_lossy(&self.tail);
        let count = text.chars().count();
        if count <= 1500 {
            return text.into_owned();
        }
        let tail: String = text.chars().skip(count - 1500).collect();
        format!("…{tail}")
    }

    /// Forgets stanzas read but not yet consumed.
    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }

    /// Ends the stream politely.
    pub async fn close(&mut self) {
        let _ = self.send_str("</stream:stream>").await;
        let _ = self.wait_closed(Duration::from_secs(5)).await;
    }

    // ----- MUC helpers -----

    /// Joins `room_jid` as `nick` (no history), waits for the self-presence or an error.
    pub async fn join(
        &mut self,
        room_jid: &str,
        nick: &str,
        password: Option<&str>,
    ) -> Result<JoinOutcome> {
        self.join_with(room_jid, nick, password, "<history maxstanzas='0'/>")
            .await
    }

    /// Joins with a custom `<history/>` (or other) child in the MUC `<x/>`.
    pub async fn join_with(
        &mut self,
        room_jid: &str,
        nick: &str,
        password: Option<&str>,
        extra: &str,
    ) -> Result<JoinOutcome> {
        let occupant = format!("{room_jid}/{nick}");
        let pw = password
            .map(|p| format!("<password>{}</password>", esc(p)))
            .unwrap_or_default();
        self.send_str(&format!(
            "<presence to='{}'><x xmlns='http://jabber.org/protocol/muc'>{extra}{pw}</x></presence>",
            esc(&occupant)
        ))
        .await?;
        let timeout = self.timeout;
        let room = room_jid.to_string();
        let reply = self
            .wait_for(
                timeout,
                &format!("the self-presence from {occupant}"),
                |el| {
                    el.name == "presence"
                        && el
                            .attr("from")
                            .map(xml::bare)
                            .is_some_and(|b| b.eq_ignore_ascii_case(&room))
                        && (el.attr("type") == Some("error")
                            || xml::muc_status_codes(el).contains(&110))
                },
            )
            .await?;
        if reply.attr("type") == Some("error") {
            let condition = xml::stanza_error_condition(&reply).unwrap_or_default();
            return Ok(JoinOutcome::Error {
                condition,
                stanza: reply,
            });
        }
        // Other occupants' presences arrive before the self-presence.
        let mut others = Vec::new();
        let mut keep = VecDeque::new();
        while let Some(el) = self.pending.pop_front() {
            let from_room = el.name == "presence"
                && el
                    .attr("from")
                    .map(xml::bare)
                    .is_some_and(|b| b.eq_ignore_ascii_case(room_jid));
            if from_room {
                others.push(el);
            } else {
                keep.push_back(el);
            }
        }
        self.pending = keep;
        Ok(JoinOutcome::Joined {
            self_presence: reply,
            others,
        })
    }

    /// Sends a groupchat message.
    pub async fn say(&mut self, room_jid: &str, body: &str) -> Result<()> {
        let id = self.new_id();
        self.send_str(&format!(
            "<message to='{}' type='groupchat' id='{id}'><body>{}</body></message>",
            esc(room_jid),
            esc(body)
        ))
        .await
    }

    /// Waits for a groupchat message with exactly `body` from `room_jid` (any nick).
    pub async fn wait_groupchat(&mut self, room_jid: &str, body: &str) -> Result<Element> {
        let timeout = self.timeout;
        let room = room_jid.to_string();
        let want = body.to_string();
        self.wait_for(
            timeout,
            &format!("groupchat {body:?} from {room_jid}"),
            |el| {
                el.name == "message"
                    && el.attr("type") == Some("groupchat")
                    && el
                        .attr("from")
                        .map(xml::bare)
                        .is_some_and(|b| b.eq_ignore_ascii_case(&room))
                    && xml::body(el).as_deref() == Some(want.as_str())
            },
        )
        .await
    }

    /// Pages through a room's MAM archive (RSM `after`, `page` items per page); returns the
    /// forwarded messages (oldest first) and the page sizes.
    pub async fn mam_all(
        &mut self,
        room_jid: &str,
        page: usize,
    ) -> Result<(Vec<MamItem>, Vec<usize>)> {
        let mut items = Vec::new();
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..1000 {
            let qid = self.new_id();
            let after_el = after
                .as_ref()
                .map(|a| format!("<after>{}</after>", esc(a)))
                .unwrap_or_default();
            let iq = format!(
                "<iq type='set' id='{qid}' to='{}'><query xmlns='urn:xmpp:mam:2' queryid='{qid}'>\
                 <set xmlns='http://jabber.org/protocol/rsm'><max>{page}</max>{after_el}</set></query></iq>",
                esc(room_jid)
            );
            let fin = self.iq(&iq).await?;
            if fin.attr("type") != Some("result") {
                bail!("MAM query failed: {}", xml::show(&fin));
            }
            // Results arrive before the IQ result; they are in `pending`.
            let mut page_items = Vec::new();
            let mut keep = VecDeque::new();
            while let Some(el) = self.pending.pop_front() {
                match mam_item(&el, &qid) {
                    Some(item) => page_items.push(item),
                    None => keep.push_back(el),
                }
            }
            self.pending = keep;
            let fin_el = fin
                .get_child("fin", ns::MAM)
                .ok_or_else(|| anyhow!("MAM result without <fin/>: {}", xml::show(&fin)))?;
            let complete = matches!(fin_el.attr("complete"), Some("true") | Some("1"));
            let last = fin_el
                .get_child("set", ns::RSM)
                .and_then(|s| s.child_text("last", ns::RSM));
            pages.push(page_items.len());
            let empty = page_items.is_empty();
            items.extend(page_items);
            if complete || empty {
                return Ok((items, pages));
            }
            after = Some(last.ok_or_else(|| {
                anyhow!("incomplete MAM page without <last/>: {}", xml::show(&fin))
            })?);
        }
        bail!("MAM paging did not finish after 1000 pages")
    }
}

/// One archived message from a MAM query.
#[derive(Debug, Clone)]
pub struct MamItem {
    /// The archive id (`<result id='…'/>`).
    pub id: String,
    /// The forwarded message's `from` (room/nick).
    pub from: String,
    pub body: Option<String>,
}

fn mam_item(el: &Element, queryid: &str) -> Option<MamItem> {
    if el.name != "message" {
        return None;
    }
    let result = el.get_child("result", ns::MAM)?;
    if result.attr("queryid") != Some(queryid) {
        return None;
    }
    let msg = result
        .get_child("forwarded", ns::FORWARD)?
        .get_child("message", ns::CLIENT)?;
    Some(MamItem {
        id: result.attr("id").unwrap_or_default().to_string(),
        from: msg.attr("from").unwrap_or_default().to_string(),
        body: xml::body(msg),
    })
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    )
}
