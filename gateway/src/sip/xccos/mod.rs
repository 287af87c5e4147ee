//! MS-XCCOSIP sessions (Lync / Skype for Business / pidgin-sipe group chat): an INVITE to the
//! lookup URI (`sip:ocschat@<domain>`) or to the pool URI (`sip.chat_pool_uri`, by default
//! `sip:ocschat@<room domain>`) opens a session dialog, with an RFC 4028 session timer the
//! client refreshes by UPDATE or re-INVITE. In-dialog INFOs carry `<xccos>` envelopes: commands
//! go to the session's task ([`session`], [`commands`]); a `<grpchat>` is posted at once and
//! answered 200 only after the room committed it. In-dialog requests of unknown dialogs get
//! 481. Every dialog keeps the INVITE's route set, so palaver works behind a proxy.

mod commands;
mod dialog;
mod rooms;
mod session;

pub use session::XccosSession;

use super::auth::authenticate_sender;
use super::transport::Flow;
use super::SipService;
use dialog::Dialog;
use palaver_core::engine::RoomCommand;
use palaver_dialects::sip::request::new_tag;
use palaver_dialects::sip::{Method, SipMessage};
use palaver_dialects::xccos::encode::{self, ReplyTo};
use palaver_dialects::xccos::{parse_envelope, Item, Resp};
use session::Control;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Live sessions by (Call-ID, our tag).
pub type Sessions = dashmap::DashMap<(String, String), Arc<XccosSession>>;

/// The session timer's floor (RFC 4028 Min-SE default).
const MIN_SE: u32 = 90;

impl SipService {
    /// The URI `cmd:requri` answers: where clients re-INVITE for the chat pool.
    pub fn xccos_pool_uri(&self) -> String {
        if self.config.chat_pool_uri.is_empty() {
            format!("sip:{}@{}", self.config.chat_lookup_user, self.room_domain)
        } else {
            self.config.chat_pool_uri.clone()
        }
    }

    /// Whether an INVITE to `req`'s Request-URI opens an XCCOS session.
    fn is_xccos_target(&self, req: &SipMessage) -> bool {
        let Some(uri) = req.request_uri() else {
            return false;
        };
        let user = uri.user_unescaped().unwrap_or_default();
        let lookup = user.eq_ignore_ascii_case(&self.config.chat_lookup_user)
            && (uri.host.eq_ignore_ascii_case(&self.domain)
                || uri.host.eq_ignore_ascii_case(&self.room_domain));
        let pool = self.xccos_pool_uri();
        let pool_match = pool
            .strip_prefix("sip:")
            .and_then(|p| p.split_once('@'))
            .is_some_and(|(u, h)| {
                u.eq_ignore_ascii_case(&user) && h.eq_ignore_ascii_case(&uri.host)
            });
        lookup || pool_match
    }

    /// The room a `ma-chan://<domain>/<name>` channel names on this server.
    fn room_of_channel(&self, channel: &str) -> Option<String> {
        let (domain, value) = palaver_dialects::xccos::parse_channel_uri(channel)?;
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return None;
        }
        palaver_core::engine::validate_room_name(value).ok()
    }

    fn xccos_session(&self, req: &SipMessage) -> Option<Arc<XccosSession>> {
        let tag = req.to().tag()?;
        let s = self
            .xccos
            .get(&(req.call_id().to_string(), tag.to_string()))?
            .clone();
        s.dialog.matches(req).then_some(s)
    }
}

/// The session interval for `req`: its Session-Expires (at least [`MIN_SE`], else `Err`
/// with 422), or the configured default; never above the configured maximum.
fn session_interval(svc: &SipService, req: &SipMessage) -> Result<u32, ()> {
    let asked = req
        .header("Session-Expires")
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.trim().parse::<u32>().ok());
    match asked {
        Some(s) if s < MIN_SE => Err(()),
        Some(s) => Ok(s.min(svc.config.session_expires_secs.max(MIN_SE))),
        None => Ok(svc.config.session_expires_secs.max(MIN_SE)),
    }
}

/// Handles an INVITE (new session or re-INVITE refresh).
pub async fn on_invite(svc: &Arc<SipService>, req: &SipMessage, flow: &Flow) {
    if req.to().tag().is_some() {
        let Some(session) = svc.xccos_session(req) else {
            let resp = svc.reply(req, 481, "Call/Transaction Does Not Exist");
            return svc.respond(req, flow, resp).await;
        };
        let Ok(secs) = session_interval(svc, req) else {
            return too_small(svc, req, flow).await;
        };
        let _ = session.control.send(Control::Refresh(secs)).await;
        let resp = ok_with_timer(req, &session.dialog, secs);
        return svc.respond(req, flow, resp).await;
    }
    if !svc.is_xccos_target(req) {
        // Rooms take MESSAGEs and XCCOS sessions, not media sessions (RFC 7702 MSRP).
        let resp = if svc.room_named_by(req).is_some() {
            svc.reply(req, 488, "Not Acceptable Here").with_header(
                "Warning",
                "399 palaver \"rooms take MESSAGE (#commands) and Lync group chat, not sessions\"",
            )
        } else {
            svc.reply(req, 404, "Not Found")
        };
        return svc.respond(req, flow, resp).await;
    }
    let Some(user) = authenticate_sender(svc, req, flow).await else {
        return;
    };
    let Ok(secs) = session_interval(svc, req) else {
        return too_small(svc, req, flow).await;
    };
    let local_tag = new_tag();
    let Some(dialog) = Dialog::accept(req, flow, local_tag.clone()) else {
        let resp = svc.reply(req, 400, "Missing Contact");
        return svc.respond(req, flow, resp).await;
    };
    let resp = ok_with_timer(req, &dialog, secs);
    let session = session::start(svc, user.clone(), dialog, secs);
    svc.xccos.insert(
        (req.call_id().to_string(), local_tag.clone()),
        session.clone(),
    );
    tracing::info!(user = %user, peer = %flow.peer, call_id = %req.call_id(), "XCCOS session opens");
    metrics::counter!("palaver_xccos_sessions_total").increment(1);
    metrics::gauge!("palaver_xccos_sessions").set(svc.xccos.len() as f64);
    let bytes = SipService::response_bytes(resp);
    svc.send_response(req, flow, bytes.clone()).await;
    if !flow.transport.reliable() {
        // RFC 3261 §13.3.1.4: the 2xx is retransmitted until its ACK arrives.
        let flow = flow.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(500);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(32);
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(wait).await;
                if session.acked.load(Ordering::Relaxed) {
                    return;
                }
                flow.send(bytes.clone()).await;
                wait = (wait * 2).min(Duration::from_secs(4));
            }
            if !session.acked.load(Ordering::Relaxed) {
                let _ = session
                    .control
                    .send(Control::End(true, "INVITE never acknowledged"))
                    .await;
            }
        });
    }
}

/// The 200 to an INVITE: our tag, Contact, the session timer, and an SDP answer when the
/// INVITE offered one.
fn ok_with_timer(
    req: &SipMessage,
    dialog: &Dialog,
    secs: u32,
) -> palaver_dialects::sip::SipResponse {
    let mut resp = palaver_dialects::sip::response_to(req, 200, "OK", Some(&dialog.local_tag))
        .with_header("Contact", &format!("<{}>", dialog.contact()))
        .with_header("Session-Expires", &format!("{secs};refresher=uac"))
        .with_header("Supported", "timer")
        .with_header("Allow", super::inbound::ALLOW);
    let offered = req.content_type().is_some_and(|t| t.is("application/sdp"));
    if offered {
        let sdp = dialog::sdp_answer(&dialog.flow, &dialog.local_uri);
        resp = resp.with_body("application/sdp", sdp.into_bytes());
    }
    resp
}

async fn too_small(svc: &SipService, req: &SipMessage, flow: &Flow) {
    let resp = interval_too_small(svc, req);
    svc.respond(req, flow, resp).await;
}

fn interval_too_small(svc: &SipService, req: &SipMessage) -> palaver_dialects::sip::SipResponse {
    svc.reply(req, 422, "Session Interval Too Small")
        .with_header("Min-SE", &MIN_SE.to_string())
}

/// The `user` a pool relay of an in-dialog XCCOS request names (no user has this name).
pub const DIALOG_RELAY: &str = "*xccos-dialog";

/// An ACK: the 2xx of a session's INVITE arrived (relayed to the pool when the session lives
/// on another node).
pub async fn on_ack(svc: &SipService, req: &SipMessage) {
    match svc.xccos_session(req) {
        Some(session) => session.acked.store(true, Ordering::Relaxed),
        None if req.to().tag().is_some() => {
            let _ = relay_to_pool(svc, req).await;
        }
        None => {}
    }
}

/// INFO, UPDATE and BYE. A dialog this node does not hold may be another pool node's (a
/// front end that spreads in-dialog requests over the pool): the request is relayed over
/// the pool link and the holder's response comes back; nobody holds it: 481.
pub async fn on_in_dialog(svc: &Arc<SipService>, req: &SipMessage, flow: &Flow) {
    let resp = match svc.xccos_session(req) {
        Some(session) => in_dialog(svc, &session, req).await,
        None => match relay_to_pool(svc, req).await {
            Some(bytes) => return svc.send_response(req, flow, bytes).await,
            None => svc.reply(req, 481, "Call/Transaction Does Not Exist"),
        },
    };
    svc.respond(req, flow, resp).await;
}

/// The response to an in-dialog request of `session`.
async fn in_dialog(
    svc: &Arc<SipService>,
    session: &Arc<XccosSession>,
    req: &SipMessage,
) -> palaver_dialects::sip::SipResponse {
    match req.method() {
        Some(Method::Bye) => {
            let _ = session.control.send(Control::End(false, "BYE")).await;
            svc.ok(req)
        }
        Some(Method::Update) => {
            let Ok(secs) = session_interval(svc, req) else {
                return interval_too_small(svc, req);
            };
            let _ = session.control.send(Control::Refresh(secs)).await;
            svc.ok(req)
                .with_header("Session-Expires", &format!("{secs};refresher=uac"))
                .with_header("Contact", &format!("<{}>", session.dialog.contact()))
        }
        _ => {
            let (code, reason) = info(svc, session, req).await;
            svc.reply(req, code, reason)
        }
    }
}

/// Asks the pool peers to run `req` in a dialog one of them holds; the holder's response.
async fn relay_to_pool(svc: &SipService, req: &SipMessage) -> Option<bytes::Bytes> {
    let pool = svc.pool.get()?;
    let unchanged = palaver_dialects::sip::forward::Forward::default();
    let request =
        palaver_dialects::sip::forward::forward_request(req, &unchanged, |_| true).ok()?;
    let mut call = pool.relay_sip(DIALOG_RELAY, bytes::Bytes::from(request.bytes));
    let deadline = tokio::time::Instant::now() + RELAY_WAIT;
    for _ in 0..call.asked {
        match tokio::time::timeout_at(deadline, call.next()).await {
            Ok(Some((peer, Some(bytes)))) => {
                tracing::debug!(member = %peer, call_id = %req.call_id(), "XCCOS request run by its dialog's node");
                return Some(bytes);
            }
            Ok(Some((_, None))) => {}
            Ok(None) | Err(_) => break,
        }
    }
    None
}

/// How long a relayed in-dialog request may take (a grpchat waits for its commit).
const RELAY_WAIT: Duration = Duration::from_secs(10);

/// A peer relayed an in-dialog request: `None` unless this node holds the dialog, else the
/// response (its Vias are the requester's, so the relaying node sends it as it is).
pub async fn relayed(svc: &Arc<SipService>, request: &[u8]) -> Option<bytes::Bytes> {
    let req = palaver_dialects::sip::parse(request, svc.config.max_message_bytes).ok()?;
    let session = svc.xccos_session(&req)?;
    if req.method() == Some(Method::Ack) {
        session.acked.store(true, Ordering::Relaxed);
        return Some(bytes::Bytes::new());
    }
    Some(SipService::response_bytes(
        in_dialog(svc, &session, &req).await,
    ))
}

/// Runs an INFO's envelope; returns the SIP status to answer it with.
async fn info(
    svc: &Arc<SipService>,
    session: &Arc<XccosSession>,
    req: &SipMessage,
) -> (u16, &'static str) {
    let plain = req
        .content_type()
        .is_none_or(|t| t.is("text/plain") || t.is("application/xml") || t.is("text/xml"));
    if !plain {
        return (415, "Unsupported Media Type");
    }
    let envelope = match parse_envelope(req.body(), svc.config.max_message_bytes) {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(user = %session.user, error = %e, "malformed XCCOS");
            return (400, "Malformed XCCOS");
        }
    };
    let mut status = (200, "OK");
    for item in envelope.items {
        match item {
            Item::Command(cmd) => {
                if session
                    .control
                    .try_send(Control::Command(cmd, envelope.envid))
                    .is_err()
                {
                    return (503, "Too Many Commands");
                }
            }
            Item::Grpchat(chat) => {
                let result = post(svc, session, &chat).await;
                if let Err((code, reason, resp)) = result {
                    let to = ReplyTo {
                        name: "grpchat",
                        seqid: &chat.seqid,
                        envid: envelope.envid,
                    };
                    let reply = encode::reply(&to, resp, encode::part_data(&chat.channel));
                    let _ = session
                        .control
                        .try_send(Control::Send(rooms::element_bytes(&reply)));
                    status = (code, reason);
                }
            }
            Item::Ignored(name) => {
                tracing::debug!(user = %session.user, name, "XCCOS item ignored");
            }
        }
    }
    status
}

/// Posts a room message; `Err` carries the SIP status and the XCCOS reply code.
async fn post(
    svc: &SipService,
    session: &XccosSession,
    chat: &palaver_dialects::xccos::Grpchat,
) -> Result<(), (u16, &'static str, Resp)> {
    let text = encode::lf(&chat.text);
    let limit = commands::message_size_limit(svc.config.max_post_bytes) as usize;
    if text.chars().count() > limit {
        return Err((413, "Message Too Large", Resp::TOO_LARGE));
    }
    if text.trim().is_empty() {
        return Err((400, "Empty Message", Resp::BAD_REQUEST));
    }
    let room =
        svc.room_of_channel(&chat.channel)
            .ok_or((404, "No Such Channel", Resp::NO_CHANNEL))?;
    let result = svc
        .ctx
        .engine
        .ask(&room, |reply| RoomCommand::Post {
            client: session.client,
            body: text,
            extra: None,
            origin_id: uuid::Uuid::new_v4().to_string(),
            reply,
        })
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let (code, reason) = super::commands::status_for(&e);
            Err((code, reason, Resp::from_room_error(&e)))
        }
    }
}

/// Ends the sessions whose INVITE came over a connection that closed.
pub async fn end_on_connection(svc: &SipService, connection: u64) {
    let gone: Vec<Arc<XccosSession>> = svc
        .xccos
        .iter()
        .filter(|s| s.dialog.flow.connection() == Some(connection))
        .map(|s| s.value().clone())
        .collect();
    for s in gone {
        let _ = s
            .control
            .send(Control::End(false, "connection closed"))
            .await;
    }
}
