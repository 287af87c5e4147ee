//! A small XMPP client for the conformance cases and the load generator. It connects
//! (optionally from a chosen source address), negotiates STARTTLS or direct TLS, authenticates
//! with SASL (SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN, whatever the server offers), binds a
//! resource ([`login`]), then sends raw stanzas and reads stanzas with deadlines, and joins
//! MUC rooms (XEP-0045, creating instant rooms when the join creates one). It uses only what
//! RFC 6120 and XEP-0045 define, so it talks to any XMPP server, and every failure is a
//! [`ClientError`] with the [`ErrorKind`] the load report counts.

mod error;
mod io;
mod login;
pub mod sasl;

pub use error::{ClientError, ErrorKind};
pub use io::tls_config;
pub use login::{ConnectOptions, TlsMode};

use io::Io;
use palaver_dialects::xmpp::element::{Element, Node};
use palaver_dialects::xmpp::escape::escape_attr;
use palaver_dialects::xmpp::reader::{StreamEvent, StreamReader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Namespace of stream-level elements (`stream:features`, `stream:error`).
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// Client stanzas' namespace.
pub const NS_CLIENT: &str = "jabber:client";
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";

/// Bytes read from the socket at a time. Small on purpose: a load run holds one per session.
const READ_BUF: usize = 4096;

/// A logged-in client session.
pub struct Client {
    io: Io,
    reader: StreamReader,
    buf: Box<[u8]>,
    /// The full JID the server bound.
    pub jid: String,
}

/// What a successful join found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// The join created the room (status 201); we configured it as an instant room.
    pub created: bool,
}

impl Client {
    fn from_io(io: Io, reader: StreamReader) -> Client {
        Client {
            io,
            reader,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            jid: String::new(),
        }
    }

    /// Whether the session is encrypted.
    pub fn is_tls(&self) -> bool {
        self.io.is_tls()
    }

    /// Writes `bytes` and flushes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let closed = |e: std::io::Error| ClientError::new(ErrorKind::Closed, format!("write: {e}"));
        self.io.write_all(bytes).await.map_err(closed)?;
        self.io.flush().await.map_err(closed)
    }

    /// Reads once from the socket into the stream reader. Cancel-safe: dropping the future
    /// before it completes loses no bytes.
    pub async fn read_more(&mut self) -> Result<(), ClientError> {
        let n = self
            .io
            .read(&mut self.buf)
            .await
            .map_err(|e| ClientError::new(ErrorKind::Closed, format!("read: {e}")))?;
        if n == 0 {
            return Err(ClientError::new(
                ErrorKind::Closed,
                "the server closed the connection",
            ));
        }
        self.reader
            .feed(&self.buf[..n])
            .map_err(|e| ClientError::new(ErrorKind::Protocol, format!("bad stream: {e}")))
    }

    /// The next complete stanza already read, if any. The stream's close and `<stream:error/>`
    /// are errors; a (re)opened stream header is skipped.
    pub fn next_buffered(&mut self) -> Result<Option<Element>, ClientError> {
        loop {
            let event = self
                .reader
                .next_event()
                .map_err(|e| ClientError::new(ErrorKind::Protocol, format!("bad stream: {e}")))?;
            match event {
                None => return Ok(None),
                Some(StreamEvent::Open { .. }) => continue,
                Some(StreamEvent::Close) => {
                    return Err(ClientError::new(
                        ErrorKind::Closed,
                        "the server closed the stream",
                    ))
                }
                Some(StreamEvent::Stanza(e)) if e.is("error", NS_STREAMS) => {
                    let condition = e
                        .children()
                        .next()
                        .map_or("(no condition)", |c| c.name.as_str());
                    return Err(ClientError::new(ErrorKind::StreamError, condition));
                }
                Some(StreamEvent::Stanza(e)) => return Ok(Some(e)),
            }
        }
    }

    /// Reads until a stanza matching `pred` arrives (others are dropped), or fails with
    /// [`ErrorKind::Timeout`] at `deadline`; `step` names the step in that error.
    pub async fn next_stanza(
        &mut self,
        deadline: Instant,
        step: &str,
        pred: impl Fn(&Element) -> bool,
    ) -> Result<Element, ClientError> {
        loop {
            while let Some(e) = self.next_buffered()? {
                if pred(&e) {
                    return Ok(e);
                }
            }
            tokio::time::timeout_at(deadline, self.read_more())
                .await
                .map_err(|_| {
                    ClientError::new(ErrorKind::Timeout, format!("no answer to {step}"))
                })??;
        }
    }

    /// Sends the XEP-0045 join presence for `room/nick` asking for no history and waits for our
    /// own presence back; returns whether the join created the room (status 201).
    pub async fn enter(
        &mut self,
        room: &str,
        nick: &str,
        deadline: Instant,
    ) -> Result<bool, ClientError> {
        let occupant = format!("{room}/{nick}");
        let mut out = Vec::with_capacity(200);
        out.extend_from_slice(b"<presence to='");
        escape_attr(&occupant, &mut out);
        out.extend_from_slice(b"'><x xmlns='");
        out.extend_from_slice(NS_MUC.as_bytes());
        out.extend_from_slice(b"'><history maxstanzas='0'/></x></presence>");
        self.send(&out).await?;
        let p = self
            .next_stanza(deadline, "the join presence", |e| {
                e.name == "presence" && e.attr("from") == Some(occupant.as_str())
            })
            .await?;
        if p.attr("type") == Some("error") {
            return Err(ClientError::new(
                ErrorKind::Join,
                format!("{room} refused the join: {}", error_condition(&p)),
            ));
        }
        Ok(p.get_child("x", NS_MUC_USER).is_some_and(|x| {
            x.children_named("status", NS_MUC_USER)
                .any(|s| s.attr("code") == Some("201"))
        }))
    }

    /// Joins `room` (a bare room JID) as `nick` asking for no history, and waits for our own
    /// presence. When the join created the room (status 201) it is configured as an instant
    /// room (empty `muc#owner` submit) so that others can join.
    pub async fn join(
        &mut self,
        room: &str,
        nick: &str,
        deadline: Instant,
    ) -> Result<Joined, ClientError> {
        let created = self.enter(room, nick, deadline).await?;
        if created {
            let mut out = Vec::with_capacity(200);
            out.extend_from_slice(b"<iq type='set' id='instant-room' to='");
            escape_attr(room, &mut out);
            out.extend_from_slice(b"'><query xmlns='");
            out.extend_from_slice(NS_MUC_OWNER.as_bytes());
            out.extend_from_slice(b"'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
            self.send(&out).await?;
            let answer = self
                .next_stanza(deadline, "the instant-room configuration", |e| {
                    e.name == "iq" && e.attr("id") == Some("instant-room")
                })
                .await?;
            if answer.attr("type") != Some("result") {
                return Err(ClientError::new(
                    ErrorKind::Join,
                    format!(
                        "{room} refused the instant-room configuration: {}",
                        error_condition(&answer)
                    ),
                ));
            }
        }
        Ok(Joined { created })
    }

    /// Sends `</stream:stream>` and shuts the connection down (bounded: at most one second).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            let _ = self.io.write_all(b"</stream:stream>").await;
            let _ = self.io.shutdown().await;
        })
        .await;
    }
}

/// The defined condition of an error stanza (`<error><item-not-found/>…`), for messages.
pub fn error_condition(stanza: &Element) -> String {
    stanza
        .children()
        .find(|c| c.name == "error")
        .and_then(|e| e.children().find(|c| c.name != "text"))
        .map_or_else(|| "(no error condition)".to_string(), |c| c.name.clone())
}

/// The text of a stanza's `<body/>` when it is a single text node (no copy).
pub fn body_text(stanza: &Element) -> Option<&str> {
    let body = stanza.get_child("body", NS_CLIENT)?;
    match body.children.as_slice() {
        [Node::Text(t)] => Some(t.as_str()),
        _ => None,
    }
}
