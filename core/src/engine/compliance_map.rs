//! Room events as compliance events: which [`RoomEvent`]s are recorded, under which kind, and
//! what their JSON detail holds. Available presence of a newcomer is a `join`, of an occupant
//! already in the room a `presence` change (or `role`/`affiliation` when a moderator changed
//! it); unavailable presence is a `leave`, or `nick` with status 303. Live groupchat messages are
//! not mapped here: [`message_event`] builds theirs, which is committed with the message.

use super::commands::ClientProtocol;
use super::events::{PresenceKind, PrivateMessage, RoomEvent, RoomEventKind, StatusCodes};
use crate::compliance::{ComplianceEvent, EventKind};
use crate::model::StoredMessage;

fn protocol_name(p: ClientProtocol) -> &'static str {
    match p {
        ClientProtocol::Xmpp => "xmpp",
        ClientProtocol::Sip => "sip",
    }
}

/// The compliance event of a groupchat message (committed in the message's own transaction).
pub(super) fn message_event(
    room: &str,
    message: &StoredMessage,
    protocol: ClientProtocol,
) -> ComplianceEvent {
    let detail = serde_json::json!({
        "nick": message.nick,
        "body": message.body,
        "seq": message.seq,
        "stanza_id": message.stanza_id,
    });
    ComplianceEvent {
        at: message.ts,
        room: room.to_string(),
        actor: message.sender.as_str().to_string(),
        protocol: protocol_name(protocol).to_string(),
        kind: EventKind::Message,
        detail: detail.to_string(),
    }
}

/// The compliance event of a private message from `pm.from_nick` to `to_nick`, whose bare
/// address is `to_user`.
pub(super) fn private_event(
    room: &str,
    pm: &PrivateMessage,
    protocol: ClientProtocol,
    to_nick: &str,
    to_user: &str,
) -> ComplianceEvent {
    let detail = serde_json::json!({
        "nick": pm.from_nick,
        "to_nick": to_nick,
        "to": to_user,
        "body": pm.body,
    });
    ComplianceEvent {
        at: super::handle::now_millis(),
        room: room.to_string(),
        actor: pm.from_user.as_str().to_string(),
        protocol: protocol_name(protocol).to_string(),
        kind: EventKind::Private,
        detail: detail.to_string(),
    }
}

/// The compliance event for `event`, if it is one that is recorded here. `who(nick)` gives an
/// occupant's bare address and protocol, `None` for a nick not (yet) in the room.
pub(super) fn to_compliance(
    event: &RoomEvent,
    who: impl Fn(&str) -> Option<(String, ClientProtocol)>,
) -> Option<ComplianceEvent> {
    let room = event.room.to_string();
    let now = super::handle::now_millis();
    let (at, actor, protocol, kind, detail) = match &event.kind {
        RoomEventKind::Message { .. } => return None,
        RoomEventKind::Presence(p) => {
            let kind = match p.kind {
                PresenceKind::Unavailable if p.codes.has(StatusCodes::NICK_CHANGED) => {
                    EventKind::Nick
                }
                PresenceKind::Unavailable => EventKind::Leave,
                _ if p.codes.has(StatusCodes::AFFILIATION_CHANGED) => EventKind::Affiliation,
                _ if p.actor.is_some() => EventKind::Role,
                _ if who(&p.nick).is_some() => EventKind::Presence,
                _ => EventKind::Join,
            };
            let detail = serde_json::json!({
                "nick": p.nick,
                "role": p.role.as_str(),
                "affiliation": p.affiliation.as_str(),
                "codes": p.codes.codes().collect::<Vec<u16>>(),
                "by": p.actor,
                "reason": p.reason,
                "new_nick": p.new_nick,
            });
            (
                now,
                p.user.as_str().to_string(),
                protocol_name(p.protocol),
                kind,
                detail,
            )
        }
        RoomEventKind::Subject { nick, subject } => {
            let (actor, protocol) = who(nick).unwrap_or((String::new(), ClientProtocol::Xmpp));
            let detail = serde_json::json!({ "nick": nick, "subject": subject });
            (
                now,
                actor,
                protocol_name(protocol),
                EventKind::Subject,
                detail,
            )
        }
        RoomEventKind::ConfigChanged { codes } => {
            let detail = serde_json::json!({ "codes": codes.codes().collect::<Vec<u16>>() });
            (now, String::new(), "server", EventKind::Config, detail)
        }
        RoomEventKind::Destroyed { reason, .. } => {
            let detail = serde_json::json!({ "destroyed": true, "reason": reason });
            (now, String::new(), "server", EventKind::Config, detail)
        }
        RoomEventKind::Private(_) | RoomEventKind::Notice { .. } => return None,
    };
    Some(ComplianceEvent {
        at,
        room,
        actor,
        protocol: protocol.to_string(),
        kind,
        detail: detail.to_string(),
    })
}
