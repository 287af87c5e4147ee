//! Room events as compliance events: which [`RoomEvent`]s are recorded, under which kind, and
//! what their JSON detail holds. Available presence is a `join` (or `role`/`affiliation` when a
//! moderator changed it), unavailable presence a `leave`.

use super::commands::ClientProtocol;
use super::events::{PresenceKind, RoomEvent, RoomEventKind, StatusCodes};
use crate::compliance::{ComplianceEvent, EventKind};

fn protocol_name(p: ClientProtocol) -> &'static str {
    match p {
        ClientProtocol::Xmpp => "xmpp",
        ClientProtocol::Sip => "sip",
    }
}

/// The compliance event for `event`, if it is one that is recorded. `who(nick)` gives an
/// occupant's bare address and protocol.
pub(super) fn to_compliance(
    event: &RoomEvent,
    who: impl Fn(&str) -> Option<(String, ClientProtocol)>,
) -> Option<ComplianceEvent> {
    let room = event.room.to_string();
    let now = super::handle::now_millis();
    let (at, actor, protocol, kind, detail) = match &event.kind {
        RoomEventKind::Message { history: true, .. } => return None,
        RoomEventKind::Message { message, .. } => {
            let protocol = who(&message.nick).map_or("xmpp", |(_, p)| protocol_name(p));
            let detail = serde_json::json!({
                "nick": message.nick,
                "body": message.body,
                "seq": message.seq,
                "stanza_id": message.stanza_id,
            });
            (
                message.ts,
                message.sender.as_str().to_string(),
                protocol,
                EventKind::Message,
                detail,
            )
        }
        RoomEventKind::Presence(p) => {
            let kind = match p.kind {
                PresenceKind::Unavailable => EventKind::Leave,
                _ if p.codes.has(StatusCodes::AFFILIATION_CHANGED) => EventKind::Affiliation,
                _ if p.actor.is_some() => EventKind::Role,
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
