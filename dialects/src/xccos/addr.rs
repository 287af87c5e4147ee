//! XCCOS addresses: a room is the channel `ma-chan://<domain>/<room name>` (in commands also
//! `<chanid key=".." domain=".." value=".."/>`), a category is `ma-cat://<domain>/<uuid>`.
//! The room name is the channel value, so a channel maps to the room's XMPP JID
//! (`name@conference.<domain>`) and SIP pager URI without a lookup, and stays stable.

use crate::xmpp::element::Element;

/// The channel URI of room `name` in `domain`.
pub fn channel_uri(domain: &str, name: &str) -> String {
    format!("ma-chan://{domain}/{name}")
}

/// The category URI of category `id` (a UUID) in `domain`.
pub fn category_uri(domain: &str, id: impl std::fmt::Display) -> String {
    format!("ma-cat://{domain}/{id}")
}

/// `(domain, value)` of a `ma-chan://domain/value` URI (the scheme case-insensitive); `None`
/// for anything else or an empty part.
pub fn parse_channel_uri(uri: &str) -> Option<(&str, &str)> {
    let scheme = uri.get(..10)?;
    if !scheme.eq_ignore_ascii_case("ma-chan://") {
        return None;
    }
    let rest = uri.get(10..)?;
    let (domain, value) = rest.split_once('/')?;
    (!domain.is_empty() && !value.is_empty()).then_some((domain, value))
}

/// A channel as named in commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChanId {
    pub key: String,
    pub domain: String,
    pub value: String,
}

impl ChanId {
    /// Reads `<chanid key domain value/>`; `None` when domain or value is missing.
    pub fn from_element(e: &Element) -> Option<ChanId> {
        Some(ChanId {
            key: e.attr("key").unwrap_or("0").to_string(),
            domain: e.attr("domain").filter(|d| !d.is_empty())?.to_string(),
            value: e.attr("value").filter(|v| !v.is_empty())?.to_string(),
        })
    }

    /// `ma-chan://domain/value`.
    pub fn uri(&self) -> String {
        channel_uri(&self.domain, &self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_uris_map_both_ways() {
        let uri = channel_uri("example.org", "lobby");
        assert_eq!(uri, "ma-chan://example.org/lobby");
        assert_eq!(parse_channel_uri(&uri), Some(("example.org", "lobby")));
        assert_eq!(
            parse_channel_uri("MA-CHAN://d/a/b"),
            Some(("d", "a/b")),
            "the value is everything after the domain, as sipe splits it"
        );
    }

    #[test]
    fn other_uris_are_not_channels() {
        for bad in [
            "",
            "ma-chan://",
            "ma-chan://d",
            "ma-chan://d/",
            "ma-chan:///v",
            "ma-cat://d/v",
            "sip:lobby@conference.d",
            "ma-chan:/d/v",
        ] {
            assert_eq!(parse_channel_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn category_uris_carry_the_id() {
        let id = "6f1c3b1e-0000-4000-8000-000000000001";
        assert_eq!(category_uri("d", id), format!("ma-cat://d/{id}"));
    }
}
