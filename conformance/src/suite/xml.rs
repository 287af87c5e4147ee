//! Small helpers over stanzas: namespaces, attribute escaping, MUC status codes and items,
//! error conditions, bodies, delays.

use palaver_dialects::xmpp::element::Element;

pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_DELAY: &str = "urn:xmpp:delay";
pub const NS_SID: &str = "urn:xmpp:sid:0";
pub const NS_MAM: &str = "urn:xmpp:mam:2";
pub const NS_OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// `s` escaped for an attribute value or text.
pub fn attr(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    palaver_dialects::xmpp::escape::escape_attr(s, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The `<x xmlns='muc#user'/>` of a presence or message.
pub fn muc_user(e: &Element) -> Option<&Element> {
    e.get_child("x", NS_MUC_USER)
}

/// The status codes in the `muc#user` payload, in order.
pub fn statuses(e: &Element) -> Vec<String> {
    muc_user(e)
        .map(|x| {
            x.children_named("status", NS_MUC_USER)
                .filter_map(|s| s.attr("code").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn has_status(e: &Element, code: &str) -> bool {
    statuses(e).iter().any(|c| c == code)
}

/// The `muc#user` `<item/>` of a presence.
pub fn item(e: &Element) -> Option<&Element> {
    muc_user(e)?.get_child("item", NS_MUC_USER)
}

/// Whether `e` is a presence from `room/nick`.
pub fn presence_from(e: &Element, occupant: &str) -> bool {
    e.name == "presence" && e.attr("from") == Some(occupant)
}

/// Whether `e` is an error stanza carrying the defined `condition`.
pub fn is_error(e: &Element, condition: &str) -> bool {
    e.attr("type") == Some("error")
        && e.children()
            .filter(|c| c.name == "error")
            .any(|err| err.get_child(condition, NS_STANZAS).is_some())
}

/// The `from` of `e`'s bare part equals `room`.
pub fn from_room(e: &Element, room: &str) -> bool {
    e.attr("from")
        .is_some_and(|f| f.split('/').next() == Some(room))
}

/// A groupchat message from the room (any occupant) with `body`.
pub fn is_groupchat_body(e: &Element, room: &str, body: &str) -> bool {
    e.name == "message"
        && e.attr("type") == Some("groupchat")
        && from_room(e, room)
        && crate::client::body_text(e) == Some(body)
}

/// A subject message (XEP-0045 §7.2.15: `<subject/>` and no `<body/>`).
pub fn is_subject(e: &Element, room: &str) -> bool {
    e.name == "message"
        && from_room(e, room)
        && e.children().any(|c| c.name == "subject")
        && !e.children().any(|c| c.name == "body")
}
