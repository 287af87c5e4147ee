//! SIP and SIPS URIs (RFC 3261 §19.1), parsed by hand rather than by rsip: rsip 0.4 mistakes
//! `sip:john.doe@host` for a host named `john.doe@host`, rejects IPv6 references and keeps
//! `?headers` inside the host. Other schemes (`tel:`, `urn:` …) are kept opaque.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::sip::error::SipError;
use crate::sip::syntax::{ParamMode, Params};

/// A parsed URI. For `sip`/`sips` every field is filled; for any other scheme only `scheme`
/// and [`SipUri::opaque`] are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// Lower-case scheme: `sip`, `sips`, or another absolute-URI scheme.
    pub scheme: String,
    /// The user part as on the wire (may contain `%` escapes; see [`SipUri::user_unescaped`]).
    pub user: Option<String>,
    /// The password part of the userinfo (deprecated by RFC 3261 but legal).
    pub password: Option<String>,
    /// Lower-case host name or IP address; IPv6 references keep their brackets.
    pub host: String,
    /// Explicit port.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// The raw `?`-headers part, without the `?`.
    pub headers: Option<String>,
    opaque: Option<String>,
}

impl SipUri {
    /// Parses a URI (no surrounding white space or angle brackets).
    pub fn parse(s: &str) -> Result<SipUri, SipError> {
        if s.bytes()
            .any(|b| b <= b' ' || b == 0x7f || b"<>\"".contains(&b))
        {
            return Err(SipError::malformed("invalid character in URI"));
        }
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| SipError::malformed("URI without scheme"))?;
        let valid_scheme = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !valid_scheme {
            return Err(SipError::malformed("invalid URI scheme"));
        }
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            if rest.is_empty() {
                return Err(SipError::malformed("empty URI"));
            }
            return Ok(SipUri {
                scheme,
                user: None,
                password: None,
                host: String::new(),
                port: None,
                params: Params::new(),
                headers: None,
                opaque: Some(rest.to_string()),
            });
        }
        let (user, password, hostport) = match rest.split_once('@') {
            Some((userinfo, after)) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p.to_string())),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(SipError::malformed("empty user part in URI"));
                }
                (Some(user.to_string()), password, after)
            }
            None => (None, None, rest),
        };
        let (host, after_host) = split_host(hostport)?;
        let (port, after_port) = match after_host.strip_prefix(':') {
            Some(p) => {
                let end = p.find([';', '?']).unwrap_or(p.len());
                let digits = p.get(..end).unwrap_or_default();
                let port = parse_port(digits)?;
                (Some(port), p.get(end..).unwrap_or_default())
            }
            None => (None, after_host),
        };
        let (params, headers) = match after_port.split_once('?') {
            Some((params, headers)) => (params, Some(headers.to_string())),
            None => (after_port, None),
        };
        if params.contains('?') || headers.as_deref() == Some("") {
            return Err(SipError::malformed("invalid URI headers"));
        }
        Ok(SipUri {
            scheme,
            user,
            password,
            host,
            port,
            params: Params::parse(params, ParamMode::Uri)?,
            headers,
            opaque: None,
        })
    }

    /// Whether this is a `sip:` or `sips:` URI.
    pub fn is_sip(&self) -> bool {
        self.opaque.is_none()
    }

    /// Whether this is a `sips:` URI.
    pub fn is_sips(&self) -> bool {
        self.scheme == "sips"
    }

    /// For a non-SIP scheme, everything after `scheme:`.
    pub fn opaque(&self) -> Option<&str> {
        self.opaque.as_deref()
    }

    /// The user part with `%XX` escapes decoded (invalid UTF-8 is replaced).
    pub fn user_unescaped(&self) -> Option<String> {
        self.user.as_deref().map(percent_decode)
    }

    /// The `transport` URI parameter, lower-cased.
    pub fn transport(&self) -> Option<String> {
        self.params.value("transport").map(str::to_ascii_lowercase)
    }

    /// `host` or `host:port`.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The address-of-record form used as a registrar key: `sip:user@host` (scheme kept,
    /// no port, parameters or headers). For opaque URIs, the whole URI.
    pub fn aor(&self) -> String {
        match (&self.opaque, &self.user) {
            (Some(opaque), _) => format!("{}:{opaque}", self.scheme),
            (None, Some(user)) => format!("{}:{user}@{}", self.scheme, self.host),
            (None, None) => format!("{}:{}", self.scheme, self.host),
        }
    }

    /// The same URI as an rsip value (for code that wants rsip types).
    pub fn to_rsip(&self) -> rsip::Uri {
        let scheme = match self.scheme.as_str() {
            "sip" => rsip::Scheme::Sip,
            "sips" => rsip::Scheme::Sips,
            other => rsip::Scheme::Other(other.to_string()),
        };
        let host = match &self.opaque {
            Some(opaque) => rsip::Host::Domain(opaque.clone().into()),
            None => host_to_rsip(&self.host),
        };
        let params = self
            .params
            .iter()
            .map(|(name, value)| {
                rsip::Param::try_from((name, value))
                    .unwrap_or_else(|_| rsip::Param::Other(name.into(), value.map(Into::into)))
            })
            .collect();
        rsip::Uri {
            scheme: Some(scheme),
            auth: self.user.as_ref().map(|user| rsip::Auth {
                user: user.clone(),
                password: self.password.clone(),
            }),
            host_with_port: rsip::HostWithPort {
                host,
                port: self.port.map(Into::into),
            },
            params,
            headers: Vec::new(),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(opaque) = &self.opaque {
            return write!(f, "{}:{opaque}", self.scheme);
        }
        write!(f, "{}:", self.scheme)?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}{}", self.host_port(), self.params)?;
        if let Some(headers) = &self.headers {
            write!(f, "?{headers}")?;
        }
        Ok(())
    }
}

/// Splits `host[...]` off the front of `s`: an IPv6 reference or a host name / IPv4 address.
/// Returns the lower-cased host and the rest.
pub(crate) fn split_host(s: &str) -> Result<(String, &str), SipError> {
    if let Some(inner) = s.strip_prefix('[') {
        let end = inner
            .find(']')
            .ok_or_else(|| SipError::malformed("unterminated IPv6 reference"))?;
        let addr = inner.get(..end).unwrap_or_default();
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(SipError::malformed("invalid IPv6 address"));
        }
        let rest = inner.get(end + 1..).unwrap_or_default();
        return Ok((format!("[{}]", addr.to_ascii_lowercase()), rest));
    }
    let end = s.find([':', ';', '?']).unwrap_or(s.len());
    let host = s.get(..end).unwrap_or_default();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !valid {
        return Err(SipError::malformed("invalid host"));
    }
    Ok((host.to_ascii_lowercase(), s.get(end..).unwrap_or_default()))
}

/// Parses a decimal port (1–5 digits, at most 65535).
pub(crate) fn parse_port(digits: &str) -> Result<u16, SipError> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SipError::malformed("invalid port"));
    }
    digits
        .parse::<u16>()
        .map_err(|_| SipError::malformed("port out of range"))
}

/// Turns a host as we store it (IPv6 in brackets) into an rsip host.
pub(crate) fn host_to_rsip(host: &str) -> rsip::Host {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => rsip::Host::IpAddr(ip),
        Err(_) => rsip::Host::Domain(host.to_string().into()),
    }
}

/// Decodes `%XX` escapes; malformed escapes are kept literally.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_shapes() {
        let u = SipUri::parse("sip:John.Doe@Example.COM:5070;transport=TCP;lr?Subject=hi")
            .expect("should succeed");
        assert_eq!(u.user.as_deref(), Some("John.Doe"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.transport().as_deref(), Some("tcp"));
        assert!(u.params.has("lr"));
        assert_eq!(u.headers.as_deref(), Some("Subject=hi"));
        assert_eq!(
            u.to_string(),
            "sip:John.Doe@example.com:5070;transport=TCP;lr?Subject=hi"
        );
        assert_eq!(u.aor(), "sip:John.Doe@example.com");

        let v6 = SipUri::parse("sips:[2001:DB8::1]:5061").expect("should succeed");
        assert_eq!(v6.host, "[2001:db8::1]");
        assert_eq!(v6.port, Some(5061));
        assert!(v6.is_sips());
        assert_eq!(v6.to_rsip().host_with_port.to_string(), "2001:db8::1:5061");

        let tel = SipUri::parse("tel:+1-201-555-0123").expect("should succeed");
        assert!(!tel.is_sip());
        assert_eq!(tel.to_string(), "tel:+1-201-555-0123");

        let esc = SipUri::parse("sip:al%20ice@h").expect("should succeed");
        assert_eq!(esc.user_unescaped().as_deref(), Some("al ice"));
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "sip:",
            "sip:@host",
            "sip:a b@host",
            "sip:host:99999",
            "sip:host:",
            "sip:[::1",
            "sip:[zz]",
            "sip:host?",
            "sip:h;a=",
            "1sip:x",
            "nocolon",
            "tel:",
            "sip:ho<st",
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn rsip_conversion() {
        let u = SipUri::parse("sip:lobby@conference.localhost;transport=udp;x=y")
            .expect("should succeed");
        let r = u.to_rsip();
        assert_eq!(r.user(), Some("lobby"));
        assert_eq!(
            r.to_string(),
            "sip:lobby@conference.localhost;transport=UDP;x=y"
        );
    }
}
