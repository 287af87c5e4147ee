//! The MUC service as seen from a session (XEP-0045): presence to `room@service/nick` (enter,
//! update, nick change, exit), groupchat and private messages, invitations, and IQs to the
//! service, rooms and occupants (handed to `muc_iq` and `mam`).

use super::dispatch::reply_error;
use super::invitation::{mediated_decline, mediated_invitation};
use super::session::{Completion, Session};
use super::stanza_error::room_error_element;
use super::{mam, muc_iq};
use palaver_core::engine::{HistoryRequest, JoinRequest, RoomCommand};
use palaver_core::UserId;
use palaver_dialects::xmpp::datetime::parse_millis;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::jid::Jid;
use palaver_dialects::xmpp::ns;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Entry for every stanza addressed to the MUC domain.
pub async fn handle(session: &mut Session, el: Element, to: Jid) {
    match el.name.as_str() {
        "presence" => presence(session, el, to).await,
        "message" => message(session, el, to).await,
        _ => {
            if to.local.is_empty() {
                muc_iq::service_iq(session, &el).await
            } else if to.resource.is_empty() {
                if el.get_child("query", ns::MAM).is_some() {
                    mam::query(session, &el, &to).await
                } else {
                    muc_iq::room_iq(session, &el, &to).await
                }
            } else {
                muc_iq::occupant_iq(session, &el, &to).await
            }
        }
    }
}

/// Serializes the client's presence children worth relaying (show, status, caps, …).
fn presence_payload(el: &Element) -> Option<Arc<str>> {
    let mut out = Vec::new();
    for child in el.children() {
        let skip = child.ns == ns::MUC || child.ns == ns::MUC_USER || child.ns == ns::OCCUPANT_ID;
        if !skip {
            child.write_to(&mut out, ns::CLIENT);
        }
    }
    if out.is_empty() {
        return None;
    }
    String::from_utf8(out).ok().map(Arc::from)
}

fn history_request(x: Option<&Element>) -> HistoryRequest {
    let Some(h) = x.and_then(|x| x.get_child("history", ns::MUC)) else {
        return HistoryRequest::default();
    };
    let num = |k: &str| h.attr(k).and_then(|v| v.trim().parse::<u32>().ok());
    HistoryRequest {
        max_stanzas: num("maxstanzas"),
        max_chars: num("maxchars"),
        seconds: num("seconds"),
        since: h.attr("since").and_then(parse_millis),
    }
}

async fn presence(session: &mut Session, el: Element, to: Jid) {
    if to.local.is_empty() {
        return;
    }
    let room: Arc<str> = Arc::from(to.local.as_str());
    let engine = session.svc.ctx.engine.clone();
    match el.attr("type") {
        Some("unavailable") | Some("error") if session.joined.remove(&room).is_some() => {
            let status = presence_payload(&el);
            engine
                .send(
                    &room,
                    RoomCommand::Leave {
                        client: session.client_id,
                        status,
                    },
                )
                .await;
        }
        None => {
            if to.resource.is_empty() {
                return reply_error(
                    session,
                    &el,
                    "modify",
                    "jid-malformed",
                    Some("a nickname is required"),
                );
            }
            let x = el.get_child("x", ns::MUC);
            let req = JoinRequest {
                client: session.client_ref(),
                nick: to.resource.clone(),
                password: x.and_then(|x| x.child_text("password", ns::MUC)),
                history: history_request(x),
                payload: presence_payload(&el),
                create: true,
                instant: false,
            };
            let previous = session.joined.insert(room.clone(), to.resource.clone());
            let (reply, rx) = oneshot::channel();
            engine.send(&room, RoomCommand::Join { req, reply }).await;
            let domain = session.svc.muc_domain.clone();
            let me = session.jid_str.clone();
            session.pending.push(Box::pin(async move {
                match rx.await {
                    Ok(Ok(())) => Completion::Nothing,
                    Ok(Err(e)) => {
                        let mut err = room_error_element(&el, &domain, &me, &e);
                        err.append_child(Element::new("x", ns::MUC));
                        let stanza = err.to_bytes(ns::CLIENT);
                        match previous {
                            // A failed nick change keeps us in the room.
                            Some(_) => Completion::Send(stanza),
                            None => Completion::JoinFailed { room, stanza },
                        }
                    }
                    Err(_) => Completion::Nothing,
                }
            }));
        }
        _ => {}
    }
}

/// Children of a posted message that are stored and relayed with its body.
fn message_extra(el: &Element) -> Option<String> {
    let mut out = Vec::new();
    for child in el.children() {
        let drop = (child.ns == ns::CLIENT
            && matches!(child.name.as_str(), "body" | "subject" | "thread"))
            || child.ns == ns::SID && child.name == "stanza-id"
            || child.ns == ns::OCCUPANT_ID
            || child.ns == ns::DELAY
            || child.ns == ns::MUC_USER
            || child.ns == "http://jabber.org/protocol/chatstates";
        if !drop {
            child.write_to(&mut out, ns::CLIENT);
        }
    }
    if out.is_empty() {
        None
    } else {
        String::from_utf8(out).ok()
    }
}

async fn message(session: &mut Session, el: Element, to: Jid) {
    if to.local.is_empty() {
        return reply_error(session, &el, "cancel", "service-unavailable", None);
    }
    let room: Arc<str> = Arc::from(to.local.as_str());
    let kind = el.attr("type").unwrap_or("normal").to_string();
    if kind == "error" {
        return;
    }
    if !to.resource.is_empty() {
        return private_message(session, el, &room, &to.resource).await;
    }
    if kind != "groupchat" {
        if let Some(x) = el.get_child("x", ns::MUC_USER) {
            return invitations(session, &el, &room, x).await;
        }
        return reply_error(
            session,
            &el,
            "modify",
            "bad-request",
            Some("send groupchat messages to a room"),
        );
    }
    let engine = session.svc.ctx.engine.clone();
    let body = el.child_text("body", ns::CLIENT);
    let subject = el.get_child("subject", ns::CLIENT).map(|s| s.text());
    // A posted download URL ties its file to this room, once the post is stored.
    let file_note = match (&session.svc.ctx.files, &body) {
        (Some(files), Some(b)) if b.contains("/files/") => {
            Some((files.clone(), session.user.clone(), b.clone()))
        }
        _ => None,
    };
    let (cmd, rx) = match (body, subject) {
        (Some(body), _) => {
            let origin_id = el
                .get_child("origin-id", ns::SID)
                .and_then(|o| o.attr("id"))
                .or(el.attr("id"))
                .unwrap_or("")
                .to_string();
            let (reply, rx) = oneshot::channel();
            let cmd = RoomCommand::Post {
                client: session.client_id,
                body,
                extra: message_extra(&el),
                origin_id,
                reply,
            };
            (cmd, ReplyRx::Post(rx))
        }
        (None, Some(subject)) => {
            let (reply, rx) = oneshot::channel();
            (
                RoomCommand::SetSubject {
                    client: session.client_id,
                    subject,
                    reply,
                },
                ReplyRx::Unit(rx),
            )
        }
        // Chat states and other body-less groupchat messages are not stored or relayed.
        (None, None) => return,
    };
    engine.send(&room, cmd).await;
    let domain = session.svc.muc_domain.clone();
    let me = session.jid_str.clone();
    let room_name = room.to_string();
    session.pending.push(Box::pin(async move {
        let result = match rx {
            ReplyRx::Post(rx) => rx.await.map(|r| r.map(|_| ())),
            ReplyRx::Unit(rx) => rx.await,
        };
        if let (Ok(Ok(())), Some((files, user, body))) = (&result, file_note) {
            files.note_post(&room_name, &user, &body).await;
        }
        match result {
            Ok(Err(e)) => {
                Completion::Send(room_error_element(&el, &domain, &me, &e).to_bytes(ns::CLIENT))
            }
            _ => Completion::Nothing,
        }
    }));
}

enum ReplyRx {
    Post(
        oneshot::Receiver<
            Result<Arc<palaver_core::StoredMessage>, palaver_core::engine::RoomError>,
        >,
    ),
    Unit(oneshot::Receiver<Result<(), palaver_core::engine::RoomError>>),
}

async fn private_message(session: &mut Session, el: Element, room: &Arc<str>, nick: &str) {
    let Some(body) = el.child_text("body", ns::CLIENT) else {
        return;
    };
    let (reply, rx) = oneshot::channel();
    let cmd = RoomCommand::Private {
        client: session.client_id,
        to_nick: nick.to_string(),
        body,
        extra: message_extra(&el),
        origin_id: el.attr("id").unwrap_or("").to_string(),
        reply,
    };
    session.svc.ctx.engine.send(room, cmd).await;
    let domain = session.svc.muc_domain.clone();
    let me = session.jid_str.clone();
    session.pending.push(Box::pin(async move {
        match rx.await {
            Ok(Err(e)) => {
                Completion::Send(room_error_element(&el, &domain, &me, &e).to_bytes(ns::CLIENT))
            }
            _ => Completion::Nothing,
        }
    }));
}

/// Mediated invitations (XEP-0045 §7.8.2) and declines (§7.8.2 decline).
async fn invitations(session: &mut Session, el: &Element, room: &Arc<str>, x: &Element) {
    let room_jid = format!("{room}@{}", session.svc.muc_domain);
    for decline in x.children_named("decline", ns::MUC_USER) {
        let Some(to) = decline.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            continue;
        };
        let reason = decline.child_text("reason", ns::MUC_USER);
        let msg = mediated_decline(&room_jid, session.user.as_str(), reason.as_deref(), None);
        session.svc.router.deliver(&to.bare(), None, msg);
    }
    for invite in x.children_named("invite", ns::MUC_USER) {
        let Some(invitee) = invite.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return reply_error(session, el, "modify", "jid-malformed", None);
        };
        let Some(user) = UserId::parse(&invitee.bare()) else {
            return reply_error(session, el, "modify", "jid-malformed", None);
        };
        if invitee.domain != session.svc.domain {
            return reply_error(
                session,
                el,
                "cancel",
                "remote-server-not-found",
                Some("this server does not federate yet"),
            );
        }
        let reason = invite.child_text("reason", ns::MUC_USER);
        let (reply, rx) = oneshot::channel();
        session
            .svc
            .ctx
            .engine
            .send(
                room,
                RoomCommand::Invite {
                    client: session.client_id,
                    invitee: user.clone(),
                    reply,
                },
            )
            .await;
        let svc = session.svc.clone();
        let from_jid = session.jid_str.clone();
        let inviter = session.user.clone();
        let original = el.clone();
        let room_jid = room_jid.clone();
        let room_name = room.clone();
        session.pending.push(Box::pin(async move {
            match rx.await {
                Ok(Ok(ticket)) => {
                    if let Some(relay) = svc.ctx.invitation_relay.get() {
                        relay.relay(&room_name, &inviter, &ticket.inviter_nick, &user);
                    }
                    let msg = mediated_invitation(
                        &room_jid,
                        &from_jid,
                        &ticket.inviter_nick,
                        reason.as_deref(),
                        ticket.password.as_deref(),
                    );
                    svc.router.deliver(&invitee.bare(), None, msg);
                    Completion::Nothing
                }
                Ok(Err(e)) => Completion::Send(
                    room_error_element(&original, &svc.muc_domain, &from_jid, &e)
                        .to_bytes(ns::CLIENT),
                ),
                Err(_) => Completion::Nothing,
            }
        }));
    }
}
