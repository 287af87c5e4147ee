//! [`RoomView`]: one SIP occupant's memory of a room's roster, so the text it gets can say
//! who joined (a room event alone cannot tell a join from a status update), summarize who is
//! present in the welcome, report role changes, show the topic on join, and leave out the
//! echo of the occupant's own posts (Kamailio imc does not echo either).

use super::events::{event_text, welcome};
use super::{format_topic, notice_joined, notice_role, notice_topic, role_phrase};
use palaver_core::engine::{DeliveryFlags, PresenceKind, RoomEvent, RoomEventKind, StatusCodes};
use palaver_core::model::Role;
use std::collections::BTreeMap;

/// Roster state of one SIP session in one room. Feed it every event the session receives, in
/// order, through [`RoomView::event_text`].
#[derive(Debug, Clone, Default)]
pub struct RoomView {
    /// Our own nick once our self-presence arrived.
    me: Option<String>,
    /// Everyone present (including us), nick → role.
    occupants: BTreeMap<String, Role>,
    /// Between our self-presence and the subject that ends the join sequence.
    joining: bool,
    /// The last subject seen, with who set it.
    topic: Option<(String, String)>,
}

impl RoomView {
    pub fn new() -> Self {
        RoomView::default()
    }

    /// Our nick, once joined.
    pub fn nick(&self) -> Option<&str> {
        self.me.as_deref()
    }

    pub fn is_joined(&self) -> bool {
        self.me.is_some()
    }

    /// Occupants as last seen (including us), by nick.
    pub fn occupants(&self) -> impl Iterator<Item = (&str, Role)> {
        self.occupants.iter().map(|(n, r)| (n.as_str(), *r))
    }

    /// Updates the roster from `event` and returns the text to send, like
    /// [`super::event_text`] but: others' available presence gives `*** x has joined` for a
    /// new nick, a role notice when the role changed and nothing otherwise (and nothing before
    /// our own join, when the room lists who is already there); our own join's welcome also
    /// names who is present; the subject that ends our join reads `*** Topic: …`, later ones
    /// `*** x changed the topic to: …` (the same subject sent again, when a pool node joins us
    /// again, is silent); our own live posts are not echoed.
    pub fn event_text(&mut self, event: &RoomEvent, flags: DeliveryFlags) -> Option<String> {
        match &event.kind {
            RoomEventKind::Presence(p) if p.kind == PresenceKind::Available => {
                let previous = self.occupants.insert(p.nick.clone(), p.role);
                if flags.is_self {
                    if self.me.is_none() {
                        self.me = Some(p.nick.clone());
                        self.joining = true;
                        return Some(self.welcome_text(&event.room, p));
                    }
                    self.me = Some(p.nick.clone());
                    return match previous {
                        Some(old) if old != p.role => {
                            Some(format!("*** You {}", role_phrase(p.role, true)))
                        }
                        _ => None,
                    };
                }
                // Before our own join the room lists who is already there: no text.
                self.me.as_ref()?;
                match previous {
                    None => Some(notice_joined(&p.nick)),
                    Some(old) if old != p.role => Some(notice_role(&p.nick, p.role)),
                    Some(_) => None,
                }
            }
            RoomEventKind::Presence(p) => {
                let role = self.occupants.remove(&p.nick);
                let renamed = p
                    .new_nick
                    .as_ref()
                    .filter(|_| p.codes.has(StatusCodes::NICK_CHANGED));
                if let Some(new) = renamed {
                    self.occupants.insert(new.clone(), role.unwrap_or(p.role));
                    if flags.is_self {
                        self.me = Some(new.clone());
                    }
                } else if flags.is_self {
                    *self = RoomView::default();
                }
                event_text(event, flags)
            }
            RoomEventKind::Message {
                message,
                history: false,
            } if self.me.as_deref() == Some(message.nick.as_str()) => None,
            RoomEventKind::Subject { nick, subject } => {
                let seen = Some((nick.clone(), subject.clone()));
                let repeat = self.topic == seen;
                self.topic = seen;
                if std::mem::take(&mut self.joining) {
                    (!subject.is_empty()).then(|| format_topic(nick, subject))
                } else if repeat {
                    // The same subject again: the room took us back (it moved to another
                    // pool node), nobody changed it.
                    None
                } else {
                    Some(notice_topic(nick, subject))
                }
            }
            RoomEventKind::Destroyed { .. } => {
                *self = RoomView::default();
                event_text(event, flags)
            }
            _ => event_text(event, flags),
        }
    }

    fn welcome_text(&self, room: &str, p: &palaver_core::engine::OccupantPresence) -> String {
        let mut s = welcome(room, p);
        let others: Vec<&str> = self
            .occupants
            .keys()
            .map(String::as_str)
            .filter(|n| *n != p.nick)
            .collect();
        if others.is_empty() {
            s.push_str("\nNo one else is here.");
        } else {
            s.push_str("\nAlso here: ");
            s.push_str(&others.join(", "));
        }
        s
    }
}
