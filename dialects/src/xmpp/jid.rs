//! JIDs (RFC 7622): `local@domain/resource`, parsed with length and character checks.
//! Local part and domain are lowercased; full PRECIS profiles are not applied (ASCII-safe rules
//! that every common client already satisfies; non-ASCII passes through case-folded).

use std::fmt;

/// A parsed JID. `local` and `resource` may be empty (absent).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jid {
    pub local: String,
    pub domain: String,
    pub resource: String,
}

/// Why a JID was rejected (maps to `<jid-malformed/>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed JID: {0}")]
pub struct JidError(pub &'static str);

const LOCAL_FORBIDDEN: &[char] = &['"', '&', '\'', '/', ':', '<', '>', '@'];

impl Jid {
    /// Parses a JID string.
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        if s.len() > 3071 {
            return Err(JidError("too long"));
        }
        let (bare, resource) = match s.find('/') {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (s, ""),
        };
        if s.contains('/') && resource.is_empty() {
            return Err(JidError("empty resource"));
        }
        let (local, domain) = match bare.find('@') {
            Some(i) => (&bare[..i], &bare[i + 1..]),
            None => ("", bare),
        };
        if bare.contains('@') && local.is_empty() {
            return Err(JidError("empty local part"));
        }
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if domain.is_empty() || domain.len() > 1023 {
            return Err(JidError("bad domain"));
        }
        if domain
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "@/\"&'<>".contains(c))
        {
            return Err(JidError("bad domain character"));
        }
        if local.len() > 1023
            || local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || LOCAL_FORBIDDEN.contains(&c))
        {
            return Err(JidError("bad local part"));
        }
        if resource.len() > 1023 || resource.chars().any(|c| c.is_control()) {
            return Err(JidError("bad resource"));
        }
        Ok(Jid {
            local: local.to_lowercase(),
            domain: domain.to_lowercase(),
            resource: resource.to_string(),
        })
    }

    /// `local@domain` or `domain`.
    pub fn bare(&self) -> String {
        if self.local.is_empty() {
            self.domain.clone()
        } else {
            format!("{}@{}", self.local, self.domain)
        }
    }

    /// The same JID without resource.
    pub fn to_bare(&self) -> Jid {
        Jid {
            local: self.local.clone(),
            domain: self.domain.clone(),
            resource: String::new(),
        }
    }

    pub fn is_bare(&self) -> bool {
        self.resource.is_empty()
    }

    /// Builds `local@domain/resource` from parts (resource may be empty).
    pub fn new(local: &str, domain: &str, resource: &str) -> Jid {
        Jid {
            local: local.to_string(),
            domain: domain.to_string(),
            resource: resource.to_string(),
        }
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.local.is_empty() {
            write!(f, "{}@", self.local)?;
        }
        f.write_str(&self.domain)?;
        if !self.resource.is_empty() {
            write!(f, "/{}", self.resource)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_bare_and_domain() {
        let j = Jid::parse("Alice@LocalHost/Phone 1").expect("valid");
        assert_eq!(j.local, "alice");
        assert_eq!(j.domain, "localhost");
        assert_eq!(j.resource, "Phone 1");
        assert_eq!(j.to_string(), "alice@localhost/Phone 1");
        assert_eq!(j.bare(), "alice@localhost");
        let room = Jid::parse("lobby@conference.localhost/nick/with/slash").expect("valid");
        assert_eq!(room.resource, "nick/with/slash");
        assert_eq!(Jid::parse("localhost").expect("valid").bare(), "localhost");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "@localhost",
            "a@",
            "a@b/",
            "a b@c",
            "a@b c",
            "a<@b",
            "a@b\u{0}",
        ] {
            assert!(Jid::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Jid::parse(&"a".repeat(4000)).is_err());
    }
}
