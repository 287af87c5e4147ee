//! How a room talks to its SIP occupants in plain text (`text/plain; charset=UTF-8`): posts as
//! `nick: body`, `*** …` notices for joins, leaves, nick changes, kicks, bans and topics, the
//! replies to `#members`, `#rooms` and `#history`, splitting long bodies into several
//! MESSAGEs ([`split_body`]), reading `message/cpim` bodies ([`parse_cpim`]), and the text a
//! SIP occupant gets for each core `RoomEvent` ([`event_text`], or the roster-aware
//! [`RoomView`]). Pure functions; nothing here panics on any input.

mod cpim;
mod events;
mod split;
mod view;

pub use cpim::parse_cpim;
pub use events::{event_text, hhmm_utc};
pub use split::{split_body, MIN_SPLIT_BYTES};
pub use view::RoomView;

use palaver_core::model::Role;

/// The `Content-Type` of every MESSAGE body the room sends.
pub const CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

/// Which protocol an occupant is connected with (shown in `#members`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Sip,
    Xmpp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Sip => "SIP",
            Protocol::Xmpp => "XMPP",
        }
    }
}

/// A post as SIP occupants see it: `nick: body`.
pub fn format_post(nick: &str, body: &str) -> String {
    format!("{nick}: {body}")
}

/// A private message from an occupant: `nick (private): body`.
pub fn format_private(nick: &str, body: &str) -> String {
    format!("{nick} (private): {body}")
}

/// `*** alice has joined`
pub fn notice_joined(nick: &str) -> String {
    format!("*** {nick} has joined")
}

/// `*** alice has left`
pub fn notice_left(nick: &str) -> String {
    format!("*** {nick} has left")
}

/// `*** alice is now known as alicia`
pub fn notice_nick_changed(old: &str, new: &str) -> String {
    format!("*** {old} is now known as {new}")
}

/// `*** bob was kicked by alice (reason)`; actor and reason optional.
pub fn notice_kicked(nick: &str, actor: Option<&str>, reason: Option<&str>) -> String {
    removal(nick, "kicked", actor, reason)
}

/// `*** bob was banned by alice (reason)`; actor and reason optional.
pub fn notice_banned(nick: &str, actor: Option<&str>, reason: Option<&str>) -> String {
    removal(nick, "banned", actor, reason)
}

fn removal(nick: &str, what: &str, actor: Option<&str>, reason: Option<&str>) -> String {
    let mut s = format!("*** {nick} was {what}");
    push_by_reason(&mut s, actor, reason);
    s
}

/// Appends ` by actor` and ` (reason)` for the parts that are present and non-empty.
fn push_by_reason(s: &mut String, actor: Option<&str>, reason: Option<&str>) {
    if let Some(actor) = actor.filter(|a| !a.is_empty()) {
        s.push_str(" by ");
        s.push_str(actor);
    }
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        s.push_str(" (");
        s.push_str(reason);
        s.push(')');
    }
}

/// A topic change: `*** alice changed the topic to: text`, `*** alice cleared the topic`; with
/// no nick, `*** The topic is now: text` / `*** The topic was cleared`.
pub fn notice_topic(nick: &str, topic: &str) -> String {
    match (nick.is_empty(), topic.is_empty()) {
        (false, false) => format!("*** {nick} changed the topic to: {topic}"),
        (false, true) => format!("*** {nick} cleared the topic"),
        (true, false) => format!("*** The topic is now: {topic}"),
        (true, true) => "*** The topic was cleared".to_string(),
    }
}

/// The current topic (reply to `#topic`, and on join): `*** Topic: text (set by alice)` or
/// `*** No topic is set`.
pub fn format_topic(nick: &str, topic: &str) -> String {
    if topic.is_empty() {
        return "*** No topic is set".to_string();
    }
    if nick.is_empty() {
        format!("*** Topic: {topic}")
    } else {
        format!("*** Topic: {topic} (set by {nick})")
    }
}

/// A role change: `*** bob is now a moderator` (`visitor` adds that they cannot post).
pub fn notice_role(nick: &str, role: Role) -> String {
    format!("*** {nick} {}", role_phrase(role, false))
}

pub(crate) fn role_phrase(role: Role, you: bool) -> &'static str {
    match (role, you) {
        (Role::Moderator, false) => "is now a moderator",
        (Role::Participant, false) => "is now a participant",
        (Role::Visitor, false) => "is now a visitor (cannot post)",
        (Role::None, false) => "has no role",
        (Role::Moderator, true) => "are now a moderator",
        (Role::Participant, true) => "are now a participant",
        (Role::Visitor, true) => "are now a visitor and cannot post",
        (Role::None, true) => "have no role",
    }
}

/// The reply to `#members`: a count line, then one line per occupant sorted by nick
/// (case-insensitively), e.g. `alice (moderator, XMPP)`, `bob (SIP)`; the participant role is
/// the default and not shown.
pub fn format_members(members: &[(&str, Role, Protocol)]) -> String {
    if members.is_empty() {
        return "No one is in the room.".to_string();
    }
    let mut sorted: Vec<&(&str, Role, Protocol)> = members.iter().collect();
    sorted.sort_by(|a, b| {
        a.0.to_lowercase()
            .cmp(&b.0.to_lowercase())
            .then_with(|| a.0.cmp(b.0))
    });
    let mut out = match members.len() {
        1 => "1 member:".to_string(),
        n => format!("{n} members:"),
    };
    for (nick, role, protocol) in sorted {
        out.push('\n');
        out.push_str(nick);
        out.push_str(" (");
        if matches!(role, Role::Moderator | Role::Visitor) {
            out.push_str(role.as_str());
            out.push_str(", ");
        }
        out.push_str(protocol.as_str());
        out.push(')');
    }
    out
}

/// The reply to `#rooms`: rooms grouped under `[category]` headings (categories and rooms in
/// alphabetical order, rooms without a category (`""`) last under `[Other]`), each line
/// `  room (n) - title` (the title left out when empty or equal to the room name).
/// Input tuples are `(category, room, title, occupants)`.
pub fn format_rooms(rooms: &[(&str, &str, &str, u32)]) -> String {
    if rooms.is_empty() {
        return "No rooms.".to_string();
    }
    let mut sorted: Vec<&(&str, &str, &str, u32)> = rooms.iter().collect();
    sorted.sort_by(|a, b| {
        (a.0.is_empty(), a.0.to_lowercase(), a.1.to_lowercase(), a.1).cmp(&(
            b.0.is_empty(),
            b.0.to_lowercase(),
            b.1.to_lowercase(),
            b.1,
        ))
    });
    let mut out = String::from("Rooms:");
    let mut current: Option<&str> = None;
    for (category, room, title, occupants) in sorted {
        if current != Some(*category) {
            current = Some(category);
            out.push_str("\n[");
            out.push_str(if category.is_empty() {
                "Other"
            } else {
                category
            });
            out.push(']');
        }
        out.push_str(&format!("\n  {room} ({occupants})"));
        if !title.is_empty() && title != room {
            out.push_str(" - ");
            out.push_str(title);
        }
    }
    out
}

/// One history line: `[HH:MM] nick: body` (`time` is given already formatted).
pub fn format_history_line(time: &str, nick: &str, body: &str) -> String {
    format!("[{time}] {nick}: {body}")
}

/// The reply to `#history`: one [`format_history_line`] per `(time, nick, body)`, oldest
/// first as given, or `No messages yet.`.
pub fn format_history(lines: &[(&str, &str, &str)]) -> String {
    if lines.is_empty() {
        return "No messages yet.".to_string();
    }
    lines
        .iter()
        .map(|(time, nick, body)| format_history_line(time, nick, body))
        .collect::<Vec<_>>()
        .join("\n")
}
