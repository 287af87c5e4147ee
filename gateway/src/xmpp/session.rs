//! An authenticated c2s session: binds a resource, then runs the main loop — read stanzas
//! from the socket, write room events and routed stanzas from the bounded outbound queue
//! (splicing in this session's address so shared encodings serve every recipient), finish
//! pending room replies, and close on shutdown, slow consumption or idleness.

use super::conn::{condition_for, Conn, ConnError};
use super::outbound::{Outbound, SessionSink};
use super::router::RoutedSession;
use super::service::XmppService;
use super::stanza_error::iq_error;
use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use palaver_core::engine::{
    ClientProtocol, ClientRef, EventSink, PresenceKind, RoomCommand, RoomEventKind, StatusCodes,
};
use palaver_core::UserId;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::escape::escape_attr;
use palaver_dialects::xmpp::jid::Jid;
use palaver_dialects::xmpp::muc::{encode_event, encode_slot};
use palaver_dialects::xmpp::ns;
use palaver_dialects::xmpp::reader::StreamEvent;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// Work finished off the main path (a room's reply), and what to do about it.
pub enum Completion {
    /// Write these bytes (complete stanzas, already addressed to us).
    Send(Vec<u8>),
    /// A join failed: forget the room and tell the client.
    JoinFailed {
        room: Arc<str>,
        stanza: Vec<u8>,
    },
    Nothing,
}

pub type Pending = BoxFuture<'static, Completion>;

/// State of one bound session, used by the stanza handlers.
pub struct Session {
    pub svc: Arc<XmppService>,
    pub client_id: u64,
    pub user: UserId,
    pub jid: Jid,
    pub jid_str: String,
    /// Our address escaped for an attribute value.
    jid_attr: Vec<u8>,
    pub wbuf: Vec<u8>,
    /// Rooms we are in (or joining): room local name → nick.
    pub joined: HashMap<Arc<str>, String>,
    pub sink: Arc<dyn EventSink>,
    pub available: bool,
    pub pending: FuturesUnordered<Pending>,
    pub closing: bool,
}

impl Session {
    pub fn client_ref(&self) -> ClientRef {
        ClientRef {
            id: self.client_id,
            user: self.user.clone(),
            resource: Arc::from(self.jid.resource.as_str()),
            protocol: ClientProtocol::Xmpp,
            sink: self.sink.clone(),
        }
    }

    /// Queues a complete stanza element for writing.
    pub fn send_el(&mut self, el: &Element) {
        el.write_to(&mut self.wbuf, ns::CLIENT);
    }

    /// Writes a stanza encoded without `to`, adding ours after the element name.
    fn write_spliced(&mut self, bytes: &[u8]) {
        let pos = bytes
            .iter()
            .skip(1)
            .position(|b| matches!(b, b' ' | b'>' | b'/'))
            .map(|p| p + 1)
            .unwrap_or(bytes.len());
        self.wbuf.extend_from_slice(&bytes[..pos]);
        self.wbuf.extend_from_slice(b" to='");
        self.wbuf.extend_from_slice(&self.jid_attr);
        self.wbuf.push(b'\'');
        self.wbuf.extend_from_slice(&bytes[pos..]);
    }

    fn write_outbound(&mut self, out: Outbound) {
        match out {
            Outbound::Raw(bytes) => self.write_spliced(&bytes),
            Outbound::Room(event, flags) => {
                let muc = &self.svc.muc_domain;
                match &event.kind {
                    RoomEventKind::Destroyed { .. } => {
                        let nick = self.joined.remove(&event.room);
                        let bytes = encode_event(&event, flags, muc, nick.as_deref());
                        self.write_spliced(&bytes);
                        return;
                    }
                    RoomEventKind::Presence(p)
                        if flags.is_self && p.kind == PresenceKind::Unavailable =>
                    {
                        if p.codes.has(StatusCodes::NICK_CHANGED) {
                            if let Some(n) = &p.new_nick {
                                self.joined.insert(event.room.clone(), n.clone());
                            }
                        } else if self.joined.get(&event.room) == Some(&p.nick) {
                            self.joined.remove(&event.room);
                        }
                    }
                    _ => {}
                }
                let bytes = event.encoded(encode_slot(&event, flags), |e| {
                    encode_event(e, flags, muc, None)
                });
                self.write_spliced(&bytes);
            }
        }
    }

    /// Leaves every room (connection gone or unavailable presence).
    pub async fn leave_all_rooms(&mut self) {
        let rooms: Vec<Arc<str>> = self.joined.drain().map(|(r, _)| r).collect();
        for room in rooms {
            self.svc
                .ctx
                .engine
                .send(
                    &room,
                    RoomCommand::Leave {
                        client: self.client_id,
                        status: None,
                    },
                )
                .await;
        }
    }
}

/// Binds a resource and runs the session until it ends.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    svc: Arc<XmppService>,
    mut conn: Conn<S>,
    peer: SocketAddr,
    user: UserId,
    secure: bool,
) {
    let client_id = svc.next_client_id();
    let (tx, mut rx) = mpsc::channel::<Outbound>(svc.outbound_queue);
    let jid = match bind(&svc, &mut conn, &user, client_id, tx.clone()).await {
        Ok(jid) => jid,
        Err(e) => {
            if let ConnError::Stream(se) = &e {
                conn.stream_error(condition_for(se), Some(&se.to_string()))
                    .await;
            } else if let ConnError::Timeout = e {
                conn.stream_error("connection-timeout", None).await;
            }
            return;
        }
    };
    let bare = user.to_string();
    tracing::info!(protocol = "xmpp", %peer, jid = %jid, secure, "session open");
    metrics::gauge!("palaver_sessions", "protocol" => "xmpp").increment(1.0);
    let overflowed = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let sink: Arc<dyn EventSink> = Arc::new(SessionSink {
        tx,
        overflowed: overflowed.clone(),
        wake: wake.clone(),
    });
    let mut jid_attr = Vec::new();
    escape_attr(&jid.to_string(), &mut jid_attr);
    let mut session = Session {
        client_id,
        user,
        jid_str: jid.to_string(),
        jid,
        jid_attr,
        wbuf: Vec::new(),
        joined: HashMap::new(),
        sink,
        available: false,
        pending: FuturesUnordered::new(),
        closing: false,
        svc: svc.clone(),
    };
    let Conn { io, mut reader, .. } = conn;
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut shutdown = svc.ctx.shutdown.clone();
    let mut redirect = svc.ctx.redirect.subscribe();
    // A node that is draining sends new sessions away at once.
    redirect.mark_changed();
    let mut buf = BytesMut::with_capacity(2048);
    let mut reason = "closed by client";
    loop {
        if !session.wbuf.is_empty() {
            // A peer that stops reading blocks this write; the rooms then overflow its queue
            // and signal `wake`, which must still end the session.
            let written = tokio::select! {
                biased;
                _ = wake.notified() => Err("slow consumer"),
                r = tokio::time::timeout(svc.idle_timeout, flush(&mut wr, &mut session.wbuf)) => match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err("write failed"),
                    Err(_) => Err("write timed out"),
                },
            };
            if let Err(why) = written {
                reason = why;
                break;
            }
        }
        if session.closing {
            break;
        }
        tokio::select! {
            biased;
            _ = wake.notified() => {
                if overflowed.load(Ordering::SeqCst) {
                    reason = "slow consumer";
                    session.wbuf.extend_from_slice(&super::conn::stream_error_bytes(
                        "policy-violation", Some("too slow reading; output queue full")));
                    let _ = flush(&mut wr, &mut session.wbuf).await;
                    break;
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    while let Ok(out) = rx.try_recv() {
                        session.write_outbound(out);
                    }
                    session.wbuf.extend_from_slice(&super::conn::stream_error_bytes("system-shutdown", None));
                    let _ = flush(&mut wr, &mut session.wbuf).await;
                    reason = "server shutdown";
                    break;
                }
            }
            Ok(()) = redirect.changed() => {
                let target = redirect.borrow_and_update().clone();
                if let Some(host) = target {
                    while let Ok(out) = rx.try_recv() {
                        session.write_outbound(out);
                    }
                    let bytes = if host.is_empty() {
                        super::conn::stream_error_bytes("system-shutdown", Some("this node is draining"))
                    } else {
                        super::conn::see_other_host_bytes(&host)
                    };
                    session.wbuf.extend_from_slice(&bytes);
                    let _ = flush(&mut wr, &mut session.wbuf).await;
                    reason = "node draining";
                    break;
                }
            }
            Some(done) = session.pending.next(), if !session.pending.is_empty() => {
                match done {
                    Completion::Send(bytes) => session.wbuf.extend_from_slice(&bytes),
                    Completion::JoinFailed { room, stanza } => {
                        session.joined.remove(&room);
                        session.wbuf.extend_from_slice(&stanza);
                    }
                    Completion::Nothing => {}
                }
            }
            Some(out) = rx.recv() => {
                session.write_outbound(out);
                while session.wbuf.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(out) => session.write_outbound(out),
                        Err(_) => break,
                    }
                }
            }
            read = tokio::time::timeout(svc.idle_timeout, rd.read_buf(&mut buf)) => {
                match read {
                    Err(_) => {
                        reason = "idle timeout";
                        session.wbuf.extend_from_slice(&super::conn::stream_error_bytes("connection-timeout", None));
                        let _ = flush(&mut wr, &mut session.wbuf).await;
                        break;
                    }
                    Ok(Err(_)) | Ok(Ok(0)) => break,
                    Ok(Ok(n)) => {
                        let mut events = Vec::new();
                        let parsed = reader.feed(&buf[..n]).and_then(|()| {
                            while let Some(ev) = reader.next_event()? {
                                events.push(ev);
                            }
                            Ok(())
                        });
                        buf.clear();
                        for ev in events {
                            super::dispatch::handle_event(&mut session, ev).await;
                            if session.closing {
                                break;
                            }
                        }
                        if let Err(e) = parsed {
                            reason = "bad input";
                            tracing::info!(jid = %session.jid_str, error = %e, "closing stream: bad input");
                            session.wbuf.extend_from_slice(&super::conn::stream_error_bytes(condition_for(&e), Some(&e.to_string())));
                            let _ = flush(&mut wr, &mut session.wbuf).await;
                            break;
                        }
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), wr.shutdown()).await;
    session.leave_all_rooms().await;
    svc.router.unregister(&bare, client_id);
    metrics::gauge!("palaver_sessions", "protocol" => "xmpp").decrement(1.0);
    tracing::info!(protocol = "xmpp", %peer, jid = %session.jid_str, reason, "session closed");
}

async fn flush<W: AsyncWrite + Unpin>(wr: &mut W, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let res = wr.write_all(buf).await;
    buf.clear();
    // Idle sessions should not keep a burst's buffer.
    if buf.capacity() > 16 * 1024 {
        buf.shrink_to(4096);
    }
    res?;
    wr.flush().await
}

/// Resource binding (RFC 6120 §7); the only stanza allowed before it is a bind request.
async fn bind<S: AsyncRead + AsyncWrite + Unpin>(
    svc: &XmppService,
    conn: &mut Conn<S>,
    user: &UserId,
    client_id: u64,
    tx: mpsc::Sender<Outbound>,
) -> Result<Jid, ConnError> {
    loop {
        let el = match conn.next_event(svc.login_timeout).await? {
            StreamEvent::Stanza(el) => el,
            _ => return Err(ConnError::Closed),
        };
        let id = el.attr("id").unwrap_or("").to_string();
        let Some(bind) = el
            .get_child("bind", ns::BIND)
            .filter(|_| el.is("iq", ns::CLIENT) && el.attr("type") == Some("set"))
        else {
            let err = iq_error(
                &el,
                &svc.domain,
                "",
                "cancel",
                "not-allowed",
                Some("bind a resource first"),
            );
            conn.send(&err).await?;
            continue;
        };
        let wanted = bind
            .child_text("resource", ns::BIND)
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty() && r.len() <= 256 && !r.chars().any(char::is_control));
        let mut resource = wanted.unwrap_or_else(|| {
            format!(
                "palaver-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
        });
        for _ in 0..4 {
            let routed = RoutedSession {
                client: client_id,
                resource: Arc::from(resource.as_str()),
                tx: tx.clone(),
                available: false,
            };
            if svc.router.register(user.as_str(), routed) {
                let jid = Jid::new(user.local(), user.domain(), &resource);
                let result = Element::new("iq", ns::CLIENT)
                    .with_attr("type", "result")
                    .with_attr("id", id.as_str())
                    .with_child(
                        Element::new("bind", ns::BIND)
                            .with_child(Element::new("jid", ns::BIND).with_text(jid.to_string())),
                    );
                conn.send(&result.to_bytes(ns::CLIENT)).await?;
                return Ok(jid);
            }
            // Resource in use: keep the old session and give this one a unique resource.
            resource = format!(
                "{resource}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..6]
            );
        }
        let err = iq_error(&el, &svc.domain, "", "cancel", "conflict", None);
        conn.send(&err).await?;
    }
}
