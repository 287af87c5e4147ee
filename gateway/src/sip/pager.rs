//! MESSAGE to a pager room (`sip:room@conference.<domain>`, RFC 3428): the body
//! (`text/plain`, or `message/cpim` wrapping text) is checked (415 for other types or a
//! Content-Encoding, 413 over `sip.max_post_bytes`, 400 for invalid UTF-8), the sender
//! authenticated, and the body run as a `#command` or posted (see [`super::commands`]). The
//! response carries the outcome; any text for the user (replies, errors) follows as a MESSAGE
//! from the room to the device that sent the command. Delivery receipts (RFC 5438 IMDN) and
//! typing notifications (RFC 3994) that clients such as Linphone send to the room are
//! accepted and dropped: a refusal makes them re-send receipts at every start.

use super::auth::authenticate_sender;
use super::bindings::Target;
use super::transport::Flow;
use super::SipService;
use palaver_core::engine::validate_room_name;
use palaver_dialects::pager::command::parse_command;
use palaver_dialects::pager::text::parse_cpim;
use palaver_dialects::sip::SipMessage;
use std::sync::Arc;

/// The body types a room accepts (`Accept` of 415 responses).
const ACCEPT: &str = "text/plain, message/cpim";

/// Body types answered 200 and dropped: delivery receipts and typing notifications.
const IGNORED: [&str; 2] = ["message/imdn+xml", "application/im-iscomposing+xml"];

/// What a MESSAGE body is.
enum Body {
    /// Text to run as a command or post.
    Text(String),
    /// A receipt or typing notification (its type), accepted and dropped.
    Ignored(String),
}

/// Handles a MESSAGE.
pub async fn on_message(svc: &Arc<SipService>, req: &SipMessage, flow: &Flow) {
    let room = svc.room_named_by(req);
    let Some(room) = room else {
        let resp = svc.reply(req, 404, "Not Found");
        return svc.respond(req, flow, resp).await;
    };
    let body = match body_text(svc, req) {
        Ok(body) => body,
        Err((code, reason)) => {
            tracing::debug!(peer = %flow.peer, code, reason, "MESSAGE body refused");
            let mut resp = svc.reply(req, code, reason);
            if code == 415 {
                resp = resp
                    .with_header("Accept", ACCEPT)
                    .with_header("Accept-Encoding", "identity");
            }
            return svc.respond(req, flow, resp).await;
        }
    };
    let Some(user) = authenticate_sender(svc, req, flow).await else {
        return;
    };
    let text = match body {
        Body::Text(text) => text,
        Body::Ignored(kind) => {
            tracing::trace!(user = %user, kind, "receipt or typing notification dropped");
            let resp = svc.ok(req);
            return svc.respond(req, flow, resp).await;
        }
    };
    let Ok(room) = validate_room_name(&room) else {
        let resp = svc.reply(req, 404, "No Such Room");
        return svc.respond(req, flow, resp).await;
    };
    // Through a proxy that record-routes, answers to an unregistered user go back the same
    // way (the Record-Route values, in order, as seen by a UAS; RFC 3261 §12.1.1).
    let via = Target {
        uri: req
            .contact()
            .map(|c| c.uri.to_string())
            .unwrap_or_else(|| req.from().uri.to_string()),
        flow: flow.clone(),
        route: super::bindings::split_list(req.header_values("Record-Route")),
    };
    let outcome = match parse_command(&text) {
        Ok(cmd) => {
            tracing::debug!(user = %user, room, command = cmd.name(), "SIP pager command");
            super::commands::run(svc, &user, &room, cmd, &via).await
        }
        Err(e) => super::commands::Outcome::failed(400, "Bad Command", e.to_string()),
    };
    let resp = svc.reply(req, outcome.code, &outcome.reason);
    svc.respond(req, flow, resp).await;
    if let Some(text) = outcome.text {
        let svc = svc.clone();
        tokio::spawn(async move {
            // The device that sent the command (its registration), else every device.
            let mut targets = svc.bindings.targets(&user.to_string());
            if targets.iter().any(|t| t.flow.same(&via.flow)) {
                targets.retain(|t| t.flow.same(&via.flow));
            }
            if targets.is_empty() {
                targets.push(via);
            }
            let from = svc.room_uri(&room);
            super::occupant::send_text(&svc, &targets, &user, &from, None, &text).await;
        });
    }
}

/// The body, or the status to refuse it with.
fn body_text(svc: &SipService, req: &SipMessage) -> Result<Body, (u16, &'static str)> {
    let body = req.body();
    if body.len() > svc.config.max_post_bytes {
        return Err((413, "Request Entity Too Large"));
    }
    let ignored = |t: &palaver_dialects::sip::MediaType| IGNORED.iter().any(|i| t.is(i));
    if let Some(t) = req.content_type().filter(|t| ignored(t)) {
        return Ok(Body::Ignored(t.essence.clone()));
    }
    let encoded = req
        .header("Content-Encoding")
        .is_some_and(|e| !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("identity"));
    if encoded {
        return Err((415, "Unsupported Content-Encoding"));
    }
    let utf8_charset = |charset: Option<&str>| {
        charset
            .is_none_or(|c| c.eq_ignore_ascii_case("utf-8") || c.eq_ignore_ascii_case("us-ascii"))
    };
    let text = match req.content_type() {
        None => std::str::from_utf8(body).map_err(|_| (400, "Body Is Not UTF-8"))?,
        Some(t) if t.is("text/plain") => {
            if !utf8_charset(t.charset()) {
                return Err((415, "Unsupported Charset"));
            }
            std::str::from_utf8(body).map_err(|_| (400, "Body Is Not UTF-8"))?
        }
        Some(t) if t.is("message/cpim") => {
            let outer = std::str::from_utf8(body).map_err(|_| (400, "Body Is Not UTF-8"))?;
            let (inner_type, content) = parse_cpim(outer).ok_or((400, "Malformed CPIM"))?;
            let inner = palaver_dialects::sip::MediaType::parse(inner_type)
                .map_err(|_| (415, "Unsupported Media Type"))?;
            if ignored(&inner) {
                return Ok(Body::Ignored(inner.essence.clone()));
            }
            if !inner.is("text/plain") || !utf8_charset(inner.charset()) {
                return Err((415, "Unsupported Media Type"));
            }
            content
        }
        Some(_) => return Err((415, "Unsupported Media Type")),
    };
    Ok(Body::Text(text.to_string()))
}
