//! Small XML helpers for the raw client and the tests: escaping for hand-written stanzas, and
//! reading what a user would look at in a received stanza (error conditions, MUC status codes,
//! bodies, data-form fields).

use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::ns;

pub use palaver_dialects::xmpp::element::Element as XmlElement;

/// Escapes text for use in element content or a single- or double-quoted attribute.
pub fn esc(s: &str) -> String {
    esc_with(s, "&apos;")
}

/// [`esc`] writing `'` as `apos` (pidgin-sipe's `g_markup_escape_text` writes `&#39;`).
pub fn esc_with(s: &str, apos: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str(apos),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A received element as text (for failure messages), cut to a readable length.
pub fn show(el: &Element) -> String {
    let bytes = el.to_bytes(ns::CLIENT);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    cut(&text, 600)
}

/// `s` cut to at most `max` characters, marking the cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    format!("{head}…[{} more chars]", s.chars().count() - max)
}

/// The defined condition of a stanza's `<error/>` (e.g. `service-unavailable`).
pub fn stanza_error_condition(el: &Element) -> Option<String> {
    let error = el.get_child("error", &el.ns)?;
    error
        .children()
        .find(|c| c.ns == ns::STANZA_ERRORS && c.name != "text")
        .map(|c| c.name.clone())
}

/// Whether `el` is a `<stream:error/>`.
pub fn is_stream_error(el: &Element) -> bool {
    el.is("error", ns::STREAM)
}

/// The condition of a `<stream:error/>` (e.g. `not-well-formed`).
pub fn stream_error_condition(el: &Element) -> Option<String> {
    if !is_stream_error(el) {
        return None;
    }
    el.children()
        .find(|c| c.ns == ns::STREAM_ERRORS && c.name != "text")
        .map(|c| c.name.clone())
}

/// The MUC status codes (`<x xmlns='…muc#user'><status code='…'/>`) of a presence or message.
pub fn muc_status_codes(el: &Element) -> Vec<u32> {
    el.children_named("x", ns::MUC_USER)
        .flat_map(|x| x.children_named("status", ns::MUC_USER))
        .filter_map(|s| s.attr("code").and_then(|c| c.parse().ok()))
        .collect()
}

/// The `<item/>` of a MUC presence's `<x xmlns='…muc#user'/>`.
pub fn muc_item(el: &Element) -> Option<&Element> {
    el.get_child("x", ns::MUC_USER)?
        .get_child("item", ns::MUC_USER)
}

/// The text of a message's `<body/>`.
pub fn body(el: &Element) -> Option<String> {
    el.child_text("body", ns::CLIENT)
}

/// The bare part of a JID (`room@service/nick` → `room@service`).
pub fn bare(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

/// The resource part of a JID, if any.
pub fn resource(jid: &str) -> Option<&str> {
    jid.split_once('/').map(|(_, r)| r)
}

/// Whether a stanza came from exactly `jid` (case-insensitive on the bare part).
pub fn is_from(el: &Element, jid: &str) -> bool {
    let Some(from) = el.attr("from") else {
        return false;
    };
    bare(from).eq_ignore_ascii_case(bare(jid)) && resource(from) == resource(jid)
}

/// `<field var='…'><value>…</value></field>` for a submitted data form.
pub fn form_field(var: &str, value: &str) -> String {
    format!(
        "<field var='{}'><value>{}</value></field>",
        esc(var),
        esc(value)
    )
}

/// A submitted muc#roomconfig form with the given fields, wrapped in a muc#owner query.
pub fn roomconfig_submit(fields: &[(&str, &str)]) -> String {
    let mut form = String::from(
        "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roomconfig</value></field>",
    );
    for (var, value) in fields {
        form.push_str(&form_field(var, value));
    }
    form.push_str("</x></query>");
    form
}
