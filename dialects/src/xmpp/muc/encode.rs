//! Room events → XMPP stanzas. Every stanza is produced *without* its `to` attribute: the
//! session splices its own address in when writing, so one encoding serves all recipients that
//! share a view (`encode_slot`: self or not × sees real JIDs or not).

use super::writer::XmlWriter;
use crate::xmpp::datetime::format_millis;
use crate::xmpp::ns;
use bytes::Bytes;
use palaver_core::engine::{
    DeliveryFlags, OccupantPresence, PresenceKind, RoomEvent, RoomEventKind, StatusCodes,
};
use palaver_core::StoredMessage;

/// `room@muc_domain`.
pub fn room_jid(room: &str, muc_domain: &str) -> String {
    format!("{room}@{muc_domain}")
}

/// Which cache slot of a `RoomEvent` holds the encoding for this recipient view. Only
/// presences differ by view (status 110, real JIDs); every other event is encoded once for
/// all recipients, moderators included.
pub fn encode_slot(event: &RoomEvent, flags: DeliveryFlags) -> usize {
    match event.kind {
        RoomEventKind::Presence(_) => {
            (usize::from(flags.is_self) << 1) | usize::from(flags.sees_real_address)
        }
        _ => 0,
    }
}

/// Encodes one event for a recipient with `flags`. `my_nick` is the recipient's nick in that
/// room (used for events addressed to the recipient's own occupant, e.g. room destruction).
pub fn encode_event(
    event: &RoomEvent,
    flags: DeliveryFlags,
    muc_domain: &str,
    my_nick: Option<&str>,
) -> Bytes {
    let room = room_jid(&event.room, muc_domain);
    let mut out = Vec::with_capacity(256);
    let mut w = XmlWriter::new(&mut out);
    match &event.kind {
        RoomEventKind::Presence(p) => presence(&mut w, &room, p, flags),
        RoomEventKind::Message { message, history } => {
            groupchat(&mut w, &room, message, *history);
        }
        RoomEventKind::Subject { nick, subject } => {
            let from = if nick.is_empty() {
                room.clone()
            } else {
                format!("{room}/{nick}")
            };
            w.open("message")
                .attr("from", &from)
                .attr("type", "groupchat");
            w.attr("id", &subject_id(subject)).close_start();
            w.text_element("subject", subject).end("message");
        }
        RoomEventKind::Private(pm) => {
            w.open("message")
                .attr("from", &format!("{room}/{}", pm.from_nick))
                .attr("type", "chat");
            if !pm.origin_id.is_empty() {
                w.attr("id", &pm.origin_id);
            }
            w.close_start().text_element("body", &pm.body);
            if let Some(extra) = &pm.extra {
                w.raw(extra);
            }
            w.open("x").attr("xmlns", ns::MUC_USER).close_empty();
            occupant_id(&mut w, &pm.from_occupant_id);
            w.end("message");
        }
        RoomEventKind::ConfigChanged { codes } => {
            w.open("message")
                .attr("from", &room)
                .attr("type", "groupchat")
                .close_start();
            w.open("x").attr("xmlns", ns::MUC_USER).close_start();
            status_codes(&mut w, *codes);
            w.end("x").end("message");
        }
        RoomEventKind::Destroyed { reason, alternate } => {
            let from = match my_nick {
                Some(n) => format!("{room}/{n}"),
                None => room.clone(),
            };
            w.open("presence")
                .attr("from", &from)
                .attr("type", "unavailable")
                .close_start();
            w.open("x").attr("xmlns", ns::MUC_USER).close_start();
            w.open("item")
                .attr("affiliation", "none")
                .attr("role", "none")
                .close_empty();
            w.open("destroy");
            if let Some(alt) = alternate {
                w.attr("jid", alt);
            }
            w.close_start();
            if !reason.is_empty() {
                w.text_element("reason", reason);
            }
            w.end("destroy");
            if flags.is_self {
                w.open("status").attr("code", "110").close_empty();
            }
            w.end("x").end("presence");
        }
        RoomEventKind::Notice { text } => {
            w.open("message")
                .attr("from", &room)
                .attr("type", "groupchat")
                .close_start()
                .text_element("body", text)
                .end("message");
        }
    }
    Bytes::from(out)
}

fn presence(w: &mut XmlWriter<'_>, room: &str, p: &OccupantPresence, flags: DeliveryFlags) {
    w.open("presence")
        .attr("from", &format!("{room}/{}", p.nick));
    if p.kind == PresenceKind::Unavailable {
        w.attr("type", "unavailable");
    }
    w.close_start();
    if let Some(payload) = &p.payload {
        w.raw(payload);
    }
    w.open("x").attr("xmlns", ns::MUC_USER).close_start();
    w.open("item")
        .attr("affiliation", p.affiliation.as_str())
        .attr("role", p.role.as_str());
    if flags.sees_real_address {
        let jid = if p.resource.is_empty() {
            p.user.to_string()
        } else {
            format!("{}/{}", p.user, p.resource)
        };
        w.attr("jid", &jid);
    }
    if let Some(n) = &p.new_nick {
        w.attr("nick", n);
    }
    if p.actor.is_none() && p.reason.is_none() {
        w.close_empty();
    } else {
        w.close_start();
        if let Some(actor) = &p.actor {
            w.open("actor").attr("nick", actor).close_empty();
        }
        if let Some(reason) = &p.reason {
            w.text_element("reason", reason);
        }
        w.end("item");
    }
    let mut codes = p.codes;
    if flags.is_self {
        codes = codes.with(StatusCodes::SELF);
    }
    status_codes(w, codes);
    w.end("x");
    occupant_id(w, &p.occupant_id);
    w.end("presence");
}

/// `<message from='room/nick' type='groupchat' id=…>` with body and stored extras, left open.
fn message_start(w: &mut XmlWriter<'_>, room: &str, m: &StoredMessage, xmlns: Option<&str>) {
    let id = if m.origin_id.is_empty() {
        &m.stanza_id
    } else {
        &m.origin_id
    };
    w.open("message");
    if let Some(x) = xmlns {
        w.attr("xmlns", x);
    }
    w.attr("from", &format!("{room}/{}", m.nick))
        .attr("type", "groupchat")
        .attr("id", id)
        .close_start();
    w.text_element("body", &m.body);
    if let Some(extra) = &m.extra {
        w.raw(extra);
    }
}

fn groupchat(w: &mut XmlWriter<'_>, room: &str, m: &StoredMessage, history: bool) {
    message_start(w, room, m, None);
    if history {
        w.open("delay")
            .attr("xmlns", ns::DELAY)
            .attr("stamp", &format_millis(m.ts))
            .attr("from", room)
            .close_empty();
    }
    w.open("stanza-id")
        .attr("xmlns", ns::SID)
        .attr("id", &m.stanza_id)
        .attr("by", room)
        .close_empty();
    occupant_id(w, &m.occupant_id);
    w.end("message");
}

/// The `<forwarded>` message of a MAM result (XEP-0313 §4.2).
pub fn archived_message(out: &mut Vec<u8>, room: &str, m: &StoredMessage) {
    let mut w = XmlWriter::new(out);
    w.open("forwarded").attr("xmlns", ns::FORWARD).close_start();
    w.open("delay")
        .attr("xmlns", ns::DELAY)
        .attr("stamp", &format_millis(m.ts))
        .close_empty();
    message_start(&mut w, room, m, Some(ns::CLIENT));
    occupant_id(&mut w, &m.occupant_id);
    w.end("message").end("forwarded");
}

fn status_codes(w: &mut XmlWriter<'_>, codes: StatusCodes) {
    for code in codes.codes() {
        w.open("status")
            .attr("code", &code.to_string())
            .close_empty();
    }
}

fn occupant_id(w: &mut XmlWriter<'_>, id: &str) {
    if !id.is_empty() {
        w.open("occupant-id")
            .attr("xmlns", ns::OCCUPANT_ID)
            .attr("id", id)
            .close_empty();
    }
}

/// A stable id for subject messages (clients de-duplicate by id).
fn subject_id(subject: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(subject.as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::element::Element;
    use palaver_core::engine::OccupantPresence;
    use palaver_core::{Affiliation, Role, UserId};
    use std::sync::Arc;

    fn parse(bytes: &[u8]) -> Element {
        // Encoded stanzas carry no xmlns of their own: wrap them as a stream would.
        let mut doc = b"<w xmlns='jabber:client'>".to_vec();
        doc.extend_from_slice(bytes);
        doc.extend_from_slice(b"</w>");
        let w = Element::parse(&doc).expect("well-formed");
        let first = w.children().next().cloned();
        first.expect("one stanza")
    }

    fn presence_event() -> Arc<RoomEvent> {
        RoomEvent::new(
            Arc::from("lobby"),
            RoomEventKind::Presence(OccupantPresence {
                nick: "Al <&>".into(),
                user: UserId::parse("alice@localhost").expect("user"),
                resource: "phone".into(),
                protocol: palaver_core::engine::ClientProtocol::Xmpp,
                role: Role::Participant,
                affiliation: Affiliation::Member,
                occupant_id: "oid1".into(),
                kind: PresenceKind::Available,
                payload: Some(Arc::from("<show>away</show>")),
                codes: StatusCodes::empty(),
                new_nick: None,
                actor: None,
                reason: None,
            }),
        )
    }

    #[test]
    fn presence_views_differ_by_self_and_real_address() {
        let ev = presence_event();
        let other = DeliveryFlags {
            is_self: false,
            sees_real_address: false,
        };
        let me = DeliveryFlags {
            is_self: true,
            sees_real_address: true,
        };
        assert_ne!(encode_slot(&ev, other), encode_slot(&ev, me));
        let p = parse(&encode_event(&ev, other, "conference.localhost", None));
        assert_eq!(p.attr("from"), Some("lobby@conference.localhost/Al <&>"));
        assert_eq!(p.child_text("show", ns::CLIENT).as_deref(), Some("away"));
        let x = p.get_child("x", ns::MUC_USER).expect("muc#user");
        let item = x.get_child("item", ns::MUC_USER).expect("item");
        assert_eq!(
            (
                item.attr("affiliation"),
                item.attr("role"),
                item.attr("jid")
            ),
            (Some("member"), Some("participant"), None)
        );
        assert_eq!(x.children_named("status", ns::MUC_USER).count(), 0);
        let p = parse(&encode_event(&ev, me, "conference.localhost", None));
        let x = p.get_child("x", ns::MUC_USER).expect("muc#user");
        assert_eq!(
            x.get_child("item", ns::MUC_USER)
                .and_then(|i| i.attr("jid")),
            Some("alice@localhost/phone")
        );
        let codes: Vec<_> = x
            .children_named("status", ns::MUC_USER)
            .filter_map(|s| s.attr("code"))
            .collect();
        assert_eq!(codes, ["110"]);
        assert_eq!(
            p.get_child("occupant-id", ns::OCCUPANT_ID)
                .and_then(|o| o.attr("id")),
            Some("oid1")
        );
    }

    #[test]
    fn groupchat_carries_ids_and_history_delay() {
        let m = Arc::new(StoredMessage {
            room_id: 1,
            seq: 7,
            stanza_id: "sid7".into(),
            origin_id: "client-1".into(),
            sender: UserId::parse("bob@localhost").expect("user"),
            nick: "bob".into(),
            occupant_id: "oid2".into(),
            body: "1 < 2 & \"quotes\"".into(),
            extra: Some("<origin-id xmlns='urn:xmpp:sid:0' id='client-1'/>".into()),
            ts: 0,
        });
        let flags = DeliveryFlags::default();
        let live = RoomEvent::new(
            Arc::from("lobby"),
            RoomEventKind::Message {
                message: m.clone(),
                history: false,
            },
        );
        let el = parse(&encode_event(&live, flags, "conference.localhost", None));
        assert_eq!(
            (el.attr("type"), el.attr("id")),
            (Some("groupchat"), Some("client-1"))
        );
        // A groupchat message reads the same to everyone: one cache slot for all views, and
        // the bytes do not depend on the view.
        let moderator_self = DeliveryFlags {
            is_self: true,
            sees_real_address: true,
        };
        assert_eq!(
            encode_slot(&live, moderator_self),
            encode_slot(&live, flags)
        );
        assert_eq!(
            encode_event(&live, moderator_self, "conference.localhost", None),
            encode_event(&live, flags, "conference.localhost", None)
        );
        assert_eq!(
            el.child_text("body", ns::CLIENT).as_deref(),
            Some("1 < 2 & \"quotes\"")
        );
        let sid = el.get_child("stanza-id", ns::SID).expect("stanza-id");
        assert_eq!(
            (sid.attr("id"), sid.attr("by")),
            (Some("sid7"), Some("lobby@conference.localhost"))
        );
        assert!(el.get_child("delay", ns::DELAY).is_none());
        assert!(el.get_child("origin-id", ns::SID).is_some());
        let old = RoomEvent::new(
            Arc::from("lobby"),
            RoomEventKind::Message {
                message: m.clone(),
                history: true,
            },
        );
        let el = parse(&encode_event(&old, flags, "conference.localhost", None));
        assert_eq!(
            el.get_child("delay", ns::DELAY)
                .and_then(|d| d.attr("stamp")),
            Some("1970-01-01T00:00:00.000Z")
        );
        let mut out = Vec::new();
        archived_message(&mut out, "lobby@conference.localhost", &m);
        let fwd = Element::parse(&out).expect("forwarded parses");
        assert!(fwd.get_child("message", ns::CLIENT).is_some());
    }
}
