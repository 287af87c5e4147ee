//! `name-addr` / `addr-spec` values (RFC 3261 §20.10, §25.1) as found in From, To, Contact,
//! Route and Record-Route: optional display name, URI, header parameters (tag, expires, q,
//! `+sip.instance` …). Parsed by hand: rsip 0.4 keeps the quotes of display names and fails on
//! quoted parameter values such as `+sip.instance="<urn:uuid:…>"`, which every modern UA sends.

use std::fmt;

use crate::sip::error::SipError;
use crate::sip::syntax::{parse_quoted, quote, ParamMode, Params};
use crate::sip::uri::SipUri;

/// A display name, URI and header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted and unescaped.
    pub display_name: Option<String>,
    /// The address.
    pub uri: SipUri,
    /// Header parameters (after the `>`, or after a bare addr-spec).
    pub params: Params,
}

impl NameAddr {
    /// A bare address without display name or parameters.
    pub fn new(uri: SipUri) -> Self {
        NameAddr {
            display_name: None,
            uri,
            params: Params::new(),
        }
    }

    /// Parses one `name-addr` or `addr-spec` with its parameters (one element of a list).
    pub fn parse(s: &str) -> Result<NameAddr, SipError> {
        let s = s.trim();
        let (display_name, rest) = if s.starts_with('"') {
            let (name, rest) =
                parse_quoted(s).ok_or_else(|| SipError::malformed("bad display name"))?;
            let rest = rest.trim_start();
            if !rest.starts_with('<') {
                return Err(SipError::malformed("display name without <URI>"));
            }
            (Some(name), rest)
        } else if let Some(lt) = s
            .find('<')
            .filter(|lt| s.find(';').is_none_or(|semi| *lt < semi))
        {
            // A `<` after the first `;` belongs to a quoted parameter of a bare addr-spec.
            let name = s.get(..lt).unwrap_or_default().trim();
            if name.contains('"') || name.contains('>') {
                return Err(SipError::malformed("bad display name"));
            }
            let name = (!name.is_empty()).then(|| name.to_string());
            (name, s.get(lt..).unwrap_or_default())
        } else {
            (None, s)
        };
        let (uri, params) = if let Some(inner) = rest.strip_prefix('<') {
            let gt = inner
                .find('>')
                .ok_or_else(|| SipError::malformed("unterminated <URI>"))?;
            let uri = inner.get(..gt).unwrap_or_default().trim();
            (uri, inner.get(gt + 1..).unwrap_or_default())
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            let uri = rest.get(..end).unwrap_or_default().trim_end();
            (uri, rest.get(end..).unwrap_or_default())
        };
        Ok(NameAddr {
            display_name,
            uri: SipUri::parse(uri)?,
            params: Params::parse(params, ParamMode::Header)?,
        })
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }

    /// The `expires` parameter (Contact) in seconds; values beyond `u32` saturate, non-numeric
    /// values read as absent.
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(parse_delta_seconds)
    }

    /// A header parameter's value, quotes removed.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.value(name)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(f, "{} ", quote(name))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// `delta-seconds`: decimal digits; values beyond `u32::MAX` saturate (RFC 3261 §20.19).
pub(crate) fn parse_delta_seconds(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u32>().unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let a = NameAddr::parse(r#" "Alice \"A\" Smith" <sip:alice@example.com>;tag=1928301774"#)
            .expect("should succeed");
        assert_eq!(a.display_name.as_deref(), Some("Alice \"A\" Smith"));
        assert_eq!(a.uri.user.as_deref(), Some("alice"));
        assert_eq!(a.tag(), Some("1928301774"));
        assert_eq!(
            a.to_string(),
            r#""Alice \"A\" Smith" <sip:alice@example.com>;tag=1928301774"#
        );

        let b = NameAddr::parse("Bob <sip:bob@biloxi.com;transport=tcp>;expires=60")
            .expect("should succeed");
        assert_eq!(b.display_name.as_deref(), Some("Bob"));
        assert_eq!(b.uri.transport().as_deref(), Some("tcp"));
        assert_eq!(b.expires(), Some(60));

        let c = NameAddr::parse("sip:carol@chicago.com;tag=x;+sip.instance=\"<urn:x>\"")
            .expect("should succeed");
        assert_eq!(c.tag(), Some("x"));
        assert_eq!(c.param("+sip.instance"), Some("<urn:x>"));
        assert!(c.uri.params.is_empty());
        let spaced = NameAddr::parse("sip:carol@chicago.com ; tag=y").expect("should succeed");
        assert_eq!(spaced.tag(), Some("y"));

        let d = NameAddr::parse(
            "<sip:alice@192.168.1.2:5060;transport=udp>;+sip.instance=\"<urn:uuid:1234>\";\
             expires=99999999999",
        )
        .expect("should succeed");
        assert_eq!(d.param("+sip.instance"), Some("<urn:uuid:1234>"));
        assert_eq!(d.expires(), Some(u32::MAX));
    }

    #[test]
    fn rejects() {
        for bad in [
            "\"x\" sip:a@b",
            "\"x <sip:a@b>",
            "<sip:a@b",
            "a\"b <sip:a@b>",
            "<sip:a@b>;tag=",
            "<>",
            "",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse_delta_seconds(" 3600 "), Some(3600));
        assert_eq!(parse_delta_seconds("-1"), None);
        assert_eq!(parse_delta_seconds(""), None);
    }
}
