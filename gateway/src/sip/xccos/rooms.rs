//! What one XCCOS session knows of each room it is in, and how room events become XCCOS:
//! occupants' presences build the member list of the `rpl:join` and then become `ntc:join` /
//! `ntc:part` notices; live posts become `<grpchat>` (encoded once per event and view through
//! the event's cache); the subject that ends a join sequence completes the join. XCCOS names
//! people by SIP URI: an occupant is `sip:user@domain` to those who may see real addresses,
//! else a per-room pseudonym `sip:<room>~<nick>@<room domain>`.

use palaver_core::engine::{
    DeliveryFlags, OccupantPresence, PresenceKind, RoomEvent, RoomEventKind, StatusCodes,
    XCCOS_SLOTS,
};
use palaver_core::model::{Affiliation, Role};
use palaver_core::UserId;
use palaver_dialects::xccos::encode::{self, ChannelInfo, ChatMessage, Member};
use palaver_dialects::xmpp::element::Element;
use std::collections::BTreeMap;

/// What the session must send or do after a room event.
pub enum Outcome {
    /// Nothing.
    None,
    /// An envelope item: a notice or a room message.
    Item(bytes::Bytes),
    /// Our join sequence ended: the room is joined (send the join reply).
    Joined,
    /// We are no longer in the room (left, kicked, banned, room destroyed): the notice of
    /// our own departure to show, if the client did not ask for it.
    Ended(Option<bytes::Bytes>),
}

/// One occupant as this session shows it.
#[derive(Debug, Clone)]
struct Shown {
    uri: String,
    chanop: bool,
}

/// One room of the session.
pub struct RoomState {
    pub name: String,
    /// `ma-chan://domain/name`.
    pub channel: String,
    pub domain: String,
    pub room_domain: String,
    /// The room's facts for replies (topic filled in when the join sequence ends).
    pub info: ChannelInfo,
    /// Between the join request and the subject that ends the join sequence.
    pub joining: bool,
    /// Everyone may see occupants' real addresses (whois anyone).
    pub whois_anyone: bool,
    /// Our nick, once our self-presence arrived.
    nick: Option<String>,
    /// Our self-presence arrived (a stale departure before it is ignored).
    seen_self: bool,
    roster: BTreeMap<String, Shown>,
}

/// The SIP URI an occupant is shown as.
pub fn occupant_uri(
    user: &UserId,
    nick: &str,
    room: &str,
    room_domain: &str,
    real: bool,
) -> String {
    if real {
        format!("sip:{user}")
    } else {
        format!(
            "sip:{}~{}@{room_domain}",
            escape_user(room),
            escape_user(nick)
        )
    }
}

/// Percent-escapes what may not stand in a SIP URI's user part (RFC 3261 §25.1).
fn escape_user(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b);
        if keep && b != b'~' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_chanop(role: Role, affiliation: Affiliation) -> bool {
    role == Role::Moderator || matches!(affiliation, Affiliation::Owner | Affiliation::Admin)
}

impl RoomState {
    pub fn new(name: &str, domain: &str, room_domain: &str, info: ChannelInfo) -> RoomState {
        RoomState {
            name: name.to_string(),
            channel: info.uri.clone(),
            domain: domain.to_string(),
            room_domain: room_domain.to_string(),
            info,
            joining: true,
            whois_anyone: false,
            nick: None,
            seen_self: false,
            roster: BTreeMap::new(),
        }
    }

    /// The members to list in the join reply (each URI once; operator if any of its
    /// occupants is).
    pub fn members(&self) -> Vec<Member> {
        let mut by_uri: BTreeMap<&str, bool> = BTreeMap::new();
        for s in self.roster.values() {
            *by_uri.entry(&s.uri).or_default() |= s.chanop;
        }
        by_uri
            .into_iter()
            .map(|(uri, chanop)| Member {
                uri: uri.to_string(),
                chanop,
            })
            .collect()
    }

    /// Whether this session may see real addresses (for history): whois anyone, or we
    /// moderate the room.
    pub fn sees_real_addresses(&self) -> bool {
        self.whois_anyone
            || self
                .nick
                .as_ref()
                .and_then(|n| self.roster.get(n))
                .is_some_and(|s| s.chanop)
    }

    fn uri_present(&self, uri: &str) -> bool {
        self.roster.values().any(|s| s.uri == uri)
    }

    /// Applies one event of this room.
    pub fn apply(&mut self, event: &RoomEvent, flags: DeliveryFlags, me: &UserId) -> Outcome {
        match &event.kind {
            RoomEventKind::Presence(p) => self.presence(p, flags),
            RoomEventKind::Message {
                message,
                history: false,
            } if !self.joining => {
                // Our own posts always carry our own address.
                let real = flags.sees_real_address || message.sender == *me;
                let slot = XCCOS_SLOTS[usize::from(!real)];
                let bytes = event.encoded(slot, |_| {
                    let author = occupant_uri(
                        &message.sender,
                        &message.nick,
                        &self.name,
                        &self.room_domain,
                        real,
                    );
                    let m = ChatMessage {
                        channel: &self.channel,
                        author: &author,
                        ts_millis: message.ts,
                        text: &message.body,
                        seq: message.seq,
                    };
                    bytes::Bytes::from(encode::item_bytes(&encode::grpchat(&m)))
                });
                Outcome::Item(bytes)
            }
            RoomEventKind::Subject { subject, .. } => {
                self.info.topic = subject.clone();
                if self.joining && self.seen_self {
                    self.joining = false;
                    return Outcome::Joined;
                }
                Outcome::None
            }
            RoomEventKind::Destroyed { .. } => {
                // Shown as our own departure: the client closes the room.
                let notice = encode::notice_part(&self.channel, &format!("sip:{me}"));
                Outcome::Ended(Some(element_bytes(&notice)))
            }
            _ => Outcome::None,
        }
    }

    fn presence(&mut self, p: &OccupantPresence, flags: DeliveryFlags) -> Outcome {
        let real = flags.sees_real_address;
        let uri = occupant_uri(&p.user, &p.nick, &self.name, &self.room_domain, real);
        let chanop = is_chanop(p.role, p.affiliation);
        if flags.is_self {
            match p.kind {
                PresenceKind::Available => {
                    self.seen_self = true;
                    self.nick = Some(p.nick.clone());
                    self.roster.insert(p.nick.clone(), Shown { uri, chanop });
                    return Outcome::None;
                }
                PresenceKind::Unavailable if p.codes.has(StatusCodes::NICK_CHANGED) => {
                    self.roster.remove(&p.nick);
                    return Outcome::None;
                }
                // A departure queued before this join's self-presence is the previous
                // occupancy's.
                PresenceKind::Unavailable if !self.seen_self => return Outcome::None,
                PresenceKind::Unavailable => {
                    let notice = encode::notice_part(&self.channel, &uri);
                    return Outcome::Ended(Some(element_bytes(&notice)));
                }
            }
        }
        match p.kind {
            PresenceKind::Available => {
                let was_shown = self.uri_present(&uri);
                let old = self.roster.insert(
                    p.nick.clone(),
                    Shown {
                        uri: uri.clone(),
                        chanop,
                    },
                );
                let changed_role = old.is_some_and(|o| o.chanop != chanop);
                if self.joining || (was_shown && !changed_role) {
                    return Outcome::None;
                }
                let notice = encode::notice_join(&self.domain, &self.name, &uri, chanop);
                Outcome::Item(element_bytes(&notice))
            }
            PresenceKind::Unavailable => {
                self.roster.remove(&p.nick);
                // A nick change keeps the person in the room: the new nick's presence follows.
                if let (true, Some(new_nick)) =
                    (p.codes.has(StatusCodes::NICK_CHANGED), p.new_nick.as_ref())
                {
                    let new_uri =
                        occupant_uri(&p.user, new_nick, &self.name, &self.room_domain, real);
                    if new_uri == uri {
                        self.roster.insert(new_nick.clone(), Shown { uri, chanop });
                        return Outcome::None;
                    }
                }
                if self.joining || self.uri_present(&uri) {
                    return Outcome::None;
                }
                let notice = encode::notice_part(&self.channel, &uri);
                Outcome::Item(element_bytes(&notice))
            }
        }
    }
}

/// An element as envelope item bytes.
pub fn element_bytes(e: &Element) -> bytes::Bytes {
    bytes::Bytes::from(encode::item_bytes(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_escape_what_a_sip_user_part_cannot_hold() {
        let user = UserId::parse("al@d").expect("user");
        assert_eq!(occupant_uri(&user, "x", "r", "c.d", true), "sip:al@d");
        assert_eq!(
            occupant_uri(&user, "Al B@x~", "r", "c.d", false),
            "sip:r~Al%20B%40x%7E@c.d"
        );
    }
}
