//! The text a SIP occupant gets for one core [`RoomEvent`], without any memory of earlier
//! events. See [`super::RoomView`] for the roster-aware variant that also announces joins and
//! role changes and does not echo the occupant's own posts.

use super::{
    format_history_line, format_post, format_private, format_topic, notice_banned, notice_kicked,
    notice_left, notice_nick_changed, push_by_reason,
};
use palaver_core::engine::{
    DeliveryFlags, OccupantPresence, PresenceKind, RoomEvent, RoomEventKind, StatusCodes,
};
use palaver_core::model::Millis;

/// `HH:MM` (UTC) of a timestamp in milliseconds since the epoch; negative times wrap the day.
pub fn hhmm_utc(ts: Millis) -> String {
    let minute_of_day = ts.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60)
}

/// The text for `event` as delivered to a SIP occupant with `flags`, or `None` when a SIP
/// user needs no text for it.
///
/// - Own join (available presence with status 110): a welcome line; other available presence
///   is `None` (without roster memory a join cannot be told from a status update).
/// - Unavailable presence: left / kicked / banned / nick change / removed notices, phrased
///   with "You" when it is the recipient's own.
/// - Live messages: `nick: body`; history: `[HH:MM] nick: body` (UTC).
/// - Subject: `*** Topic: …` (`None` when empty). Private messages, config changes, room
///   destruction and notices each get one line.
pub fn event_text(event: &RoomEvent, flags: DeliveryFlags) -> Option<String> {
    match &event.kind {
        RoomEventKind::Presence(p) => presence_text(&event.room, p, flags),
        RoomEventKind::Message { message, history } => Some(if *history {
            format_history_line(&hhmm_utc(message.ts), &message.nick, &message.body)
        } else {
            format_post(&message.nick, &message.body)
        }),
        RoomEventKind::Subject { nick, subject } => {
            (!subject.is_empty()).then(|| format_topic(nick, subject))
        }
        RoomEventKind::Private(pm) => Some(format_private(&pm.from_nick, &pm.body)),
        RoomEventKind::ConfigChanged { codes } => Some(config_text(*codes)),
        RoomEventKind::Destroyed { reason, alternate } => {
            let mut s = format!("*** The room {} was destroyed", event.room);
            if !reason.is_empty() {
                s.push_str(&format!(" ({reason})"));
            }
            if let Some(alt) = alternate.as_deref().filter(|a| !a.is_empty()) {
                s.push_str(&format!("; try {alt} instead"));
            }
            Some(s)
        }
        RoomEventKind::Notice { text } => Some(format!("*** {text}")),
    }
}

/// The welcome line for the recipient's own join.
pub(crate) fn welcome(room: &str, p: &OccupantPresence) -> String {
    let mut s = if p.codes.has(StatusCodes::CREATED) {
        format!("*** You created the room {room} and joined as {}", p.nick)
    } else {
        format!("*** You have joined {room} as {}", p.nick)
    };
    if p.codes.has(StatusCodes::NICK_ASSIGNED) {
        s.push_str(" (nickname assigned by the room)");
    }
    s
}

fn presence_text(room: &str, p: &OccupantPresence, flags: DeliveryFlags) -> Option<String> {
    let me = flags.is_self;
    if p.kind == PresenceKind::Available {
        return (me && p.codes.has(StatusCodes::SELF)).then(|| welcome(room, p));
    }
    let actor = p.actor.as_deref();
    let reason = p.reason.as_deref();
    let codes = p.codes;
    if codes.has(StatusCodes::NICK_CHANGED) {
        if let Some(new) = p.new_nick.as_deref() {
            return Some(if me {
                format!("*** You are now known as {new}")
            } else {
                notice_nick_changed(&p.nick, new)
            });
        }
    }
    // (what happened, why as told to the occupant, why as told to the others)
    let (what, why_me, why_others) = if codes.has(StatusCodes::BANNED) {
        if !me {
            return Some(notice_banned(&p.nick, actor, reason));
        }
        ("banned from", None, None)
    } else if codes.has(StatusCodes::KICKED) {
        if !me {
            return Some(notice_kicked(&p.nick, actor, reason));
        }
        ("kicked from", None, None)
    } else if codes.has(StatusCodes::SHUTDOWN) {
        let why = "the server is shutting down";
        ("removed from", Some(why), Some(why))
    } else if codes.has(StatusCodes::MEMBERS_ONLY) {
        let why = "the room is now members-only";
        ("removed from", Some(why), Some(why))
    } else if codes.has(StatusCodes::AFFILIATION_CHANGED) {
        (
            "removed from",
            Some("your affiliation changed"),
            Some("affiliation changed"),
        )
    } else {
        return Some(if me {
            format!("*** You have left {room}")
        } else {
            notice_left(&p.nick)
        });
    };
    let (mut s, why) = if me {
        (format!("*** You were {what} {room}"), why_me)
    } else {
        (format!("*** {} was {what} the room", p.nick), why_others)
    };
    match why {
        Some(why) => {
            s.push_str(" (");
            s.push_str(why);
            s.push(')');
        }
        None => push_by_reason(&mut s, actor, reason),
    }
    Some(s)
}

fn config_text(codes: StatusCodes) -> String {
    let mut s = String::from("*** The room configuration changed");
    let notes: Vec<&str> = [
        (
            StatusCodes::NOW_NON_ANONYMOUS,
            "everyone can now see occupants' addresses",
        ),
        (
            StatusCodes::NOW_SEMI_ANONYMOUS,
            "only moderators can now see occupants' addresses",
        ),
        (StatusCodes::LOGGED, "the room is now logged"),
        (StatusCodes::UNLOGGED, "the room is no longer logged"),
    ]
    .into_iter()
    .filter(|(flag, _)| codes.has(*flag))
    .map(|(_, note)| note)
    .collect();
    if !notes.is_empty() {
        s.push_str(": ");
        s.push_str(&notes.join(", "));
    }
    s
}
