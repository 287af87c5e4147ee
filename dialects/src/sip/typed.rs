//! Small typed header values: methods, CSeq, media types (Content-Type), Event and
//! Subscription-State (RFC 6665). Each parses one header value and prints it back.

use std::fmt;

use crate::sip::addr::parse_delta_seconds;
use crate::sip::error::SipError;
use crate::sip::syntax::{is_token, ParamMode, Params};

pub use rsip::Method;

/// Parses a request method. SIP methods are case-sensitive: `message` is not `MESSAGE`.
/// A valid token that rsip has no variant for is [`SipError::UnknownMethod`].
pub fn parse_method(token: &str) -> Result<Method, SipError> {
    if !is_token(token) {
        return Err(SipError::malformed("invalid method"));
    }
    Method::all()
        .into_iter()
        .find(|m| m.to_string() == token)
        .ok_or_else(|| SipError::UnknownMethod(token.chars().take(32).collect()))
}

/// The CSeq header: sequence number and method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number.
    pub seq: u32,
    /// The method of the transaction.
    pub method: Method,
}

impl CSeq {
    /// Parses `4711 MESSAGE`.
    pub fn parse(s: &str) -> Result<CSeq, SipError> {
        let mut parts = s.split_ascii_whitespace();
        let (seq, method) = match (parts.next(), parts.next(), parts.next()) {
            (Some(seq), Some(method), None) => (seq, method),
            _ => return Err(SipError::malformed("bad CSeq")),
        };
        if seq.len() > 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SipError::malformed("bad CSeq number"));
        }
        let seq = seq
            .parse::<u32>()
            .map_err(|_| SipError::malformed("CSeq number out of range"))?;
        let method = parse_method(method).map_err(|_| SipError::malformed("bad CSeq method"))?;
        Ok(CSeq { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A media type (Content-Type, Accept elements): `type/subtype;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Lower-case `type/subtype`.
    pub essence: String,
    /// The parameters (`charset`, `boundary` …).
    pub params: Params,
}

impl MediaType {
    /// Parses `text/plain;charset=UTF-8` (white space allowed around `/`, `;`, `=`).
    pub fn parse(s: &str) -> Result<MediaType, SipError> {
        let s = s.trim();
        let end = s.find(';').unwrap_or(s.len());
        let (ty, sub) = s
            .get(..end)
            .unwrap_or_default()
            .split_once('/')
            .ok_or_else(|| SipError::malformed("bad media type"))?;
        let (ty, sub) = (ty.trim(), sub.trim());
        if !is_token(ty) || !is_token(sub) {
            return Err(SipError::malformed("bad media type"));
        }
        Ok(MediaType {
            essence: format!("{}/{}", ty.to_ascii_lowercase(), sub.to_ascii_lowercase()),
            params: Params::parse(s.get(end..).unwrap_or_default(), ParamMode::Header)?,
        })
    }

    /// Whether the type is `essence` (case-insensitive, parameters ignored).
    pub fn is(&self, essence: &str) -> bool {
        self.essence.eq_ignore_ascii_case(essence)
    }

    /// The `charset` parameter, if any.
    pub fn charset(&self) -> Option<&str> {
        self.params.value("charset")
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.essence, self.params)
    }
}

/// The Event header (RFC 6665 §8.2.1): package name and parameters such as `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event package (`conference`, `presence`, `message-summary` …), as sent.
    pub package: String,
    /// Parameters.
    pub params: Params,
}

impl Event {
    /// Parses `conference;id=42`.
    pub fn parse(s: &str) -> Result<Event, SipError> {
        let (package, params) = token_and_params(s)?;
        Ok(Event { package, params })
    }

    /// The `id` parameter.
    pub fn id(&self) -> Option<&str> {
        self.params.value("id")
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.package, self.params)
    }
}

/// The Subscription-State header (RFC 6665 §8.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Lower-case state: `active`, `pending`, `terminated` (or an extension).
    pub state: String,
    /// Parameters (`expires`, `reason`, `retry-after`).
    pub params: Params,
}

impl SubscriptionState {
    /// Parses `active;expires=3600`.
    pub fn parse(s: &str) -> Result<SubscriptionState, SipError> {
        let (state, params) = token_and_params(s)?;
        Ok(SubscriptionState {
            state: state.to_ascii_lowercase(),
            params,
        })
    }

    /// The `expires` parameter in seconds.
    pub fn expires(&self) -> Option<u32> {
        self.params.value("expires").and_then(parse_delta_seconds)
    }

    /// The `reason` parameter.
    pub fn reason(&self) -> Option<&str> {
        self.params.value("reason")
    }

    /// The `retry-after` parameter in seconds.
    pub fn retry_after(&self) -> Option<u32> {
        self.params
            .value("retry-after")
            .and_then(parse_delta_seconds)
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.state, self.params)
    }
}

fn token_and_params(s: &str) -> Result<(String, Params), SipError> {
    let s = s.trim();
    let end = s.find(';').unwrap_or(s.len());
    let token = s.get(..end).unwrap_or_default().trim();
    if !is_token(token) {
        return Err(SipError::malformed("bad token"));
    }
    let params = Params::parse(s.get(end..).unwrap_or_default(), ParamMode::Header)?;
    Ok((token.to_string(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(
            parse_method("MESSAGE").expect("should succeed"),
            Method::Message
        );
        assert_eq!(
            parse_method("PRACK").expect("should succeed"),
            Method::PRack
        );
        assert_eq!(
            parse_method("message"),
            Err(SipError::UnknownMethod("message".into()))
        );
        assert_eq!(
            parse_method("FOO"),
            Err(SipError::UnknownMethod("FOO".into()))
        );
        assert!(matches!(parse_method("F O"), Err(SipError::Malformed(_))));
    }

    #[test]
    fn cseq() {
        let c = CSeq::parse(" 4711   NOTIFY ").expect("should succeed");
        assert_eq!((c.seq, c.method), (4711, Method::Notify));
        assert_eq!(c.to_string(), "4711 NOTIFY");
        for bad in [
            "",
            "1",
            "x MESSAGE",
            "1 MESSAGE x",
            "4294967296 MESSAGE",
            "1 FOO",
            "-1 ACK",
        ] {
            assert!(CSeq::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn media_types() {
        let m = MediaType::parse("Text/Plain ; charset=UTF-8").expect("should succeed");
        assert!(m.is("text/plain"));
        assert_eq!(m.charset(), Some("UTF-8"));
        assert_eq!(m.to_string(), "text/plain;charset=UTF-8");
        let b = MediaType::parse("multipart/mixed;boundary=\"a b;c\"").expect("should succeed");
        assert_eq!(b.params.value("boundary"), Some("a b;c"));
        assert!(MediaType::parse("text").is_err());
        assert!(MediaType::parse("text/").is_err());
    }

    #[test]
    fn events() {
        let e = Event::parse("conference ;id=7").expect("should succeed");
        assert_eq!((e.package.as_str(), e.id()), ("conference", Some("7")));
        let s = SubscriptionState::parse("Terminated;reason=timeout;retry-after=30")
            .expect("should succeed");
        assert_eq!(s.state, "terminated");
        assert_eq!(s.reason(), Some("timeout"));
        assert_eq!(s.retry_after(), Some(30));
        let a = SubscriptionState::parse("active;expires=600").expect("should succeed");
        assert_eq!(a.expires(), Some(600));
        assert!(Event::parse("").is_err());
        assert!(Event::parse("a b").is_err());
    }
}
