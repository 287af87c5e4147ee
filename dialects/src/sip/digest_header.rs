//! The client side of HTTP/SIP digest as the server sees it: parsing an `Authorization` (or
//! `Proxy-Authorization`) value into [`DigestCredentials`], and the RFC 7616 / RFC 8760 hash
//! arithmetic (`HA1`, `response` with `qop=auth`) for MD5 and SHA-256.

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::sip::syntax::is_token_byte;

/// At most this many parameters in one Authorization value.
const MAX_PARAMS: usize = 32;

/// A digest hash algorithm (RFC 8760 §2.1; the `-sess` variants are not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgo {
    /// `MD5` (RFC 2617; the default when `algorithm` is absent).
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
}

impl DigestAlgo {
    /// The `algorithm=` token.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgo::Md5 => "MD5",
            DigestAlgo::Sha256 => "SHA-256",
        }
    }

    /// Reads an `algorithm=` token (case-insensitive); `None` for anything unsupported.
    pub fn from_name(name: &str) -> Option<DigestAlgo> {
        if name.eq_ignore_ascii_case("MD5") {
            Some(DigestAlgo::Md5)
        } else if name.eq_ignore_ascii_case("SHA-256") {
            Some(DigestAlgo::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex digest of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            DigestAlgo::Md5 => to_hex(&Md5::digest(data)),
            DigestAlgo::Sha256 => to_hex(&Sha256::digest(data)),
        }
    }

    /// Length of a hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlgo::Md5 => 32,
            DigestAlgo::Sha256 => 64,
        }
    }
}

/// `HA1 = H(user ":" realm ":" password)` in lower-case hex: what the store keeps per realm
/// and algorithm instead of the password.
pub fn ha1_hex(algo: DigestAlgo, user: &str, realm: &str, password: &str) -> String {
    algo.hex(format!("{user}:{realm}:{password}").as_bytes())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parameters of a `Digest` Authorization value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigestCredentials {
    /// `username` (unquoted).
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri` (the digest-uri).
    pub uri: String,
    /// `response` (hex).
    pub response: String,
    /// `algorithm` as sent, if any (absent means MD5).
    pub algorithm: Option<String>,
    /// `cnonce`.
    pub cnonce: Option<String>,
    /// `nc` as sent (8 hex digits).
    pub nc: Option<String>,
    /// `qop`.
    pub qop: Option<String>,
    /// `opaque`.
    pub opaque: Option<String>,
}

impl DigestCredentials {
    /// Parses `Digest username="…", realm="…", …`. Returns `None` when the scheme is not
    /// Digest, a parameter is malformed or repeated, or username, realm, nonce, uri or response
    /// is missing.
    pub fn parse(value: &str) -> Option<DigestCredentials> {
        let value = value.trim();
        let split = value.find([' ', '\t'])?;
        if !value.get(..split)?.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut creds = DigestCredentials::default();
        let mut seen: Vec<String> = Vec::new();
        let mut required = 0u8;
        for (name, param) in parse_params(value.get(split..)?)? {
            let lower = name.to_ascii_lowercase();
            if seen.contains(&lower) {
                return None;
            }
            let slot = match lower.as_str() {
                "username" => {
                    required |= 1;
                    &mut creds.username
                }
                "realm" => {
                    required |= 2;
                    &mut creds.realm
                }
                "nonce" => {
                    required |= 4;
                    &mut creds.nonce
                }
                "uri" => {
                    required |= 8;
                    &mut creds.uri
                }
                "response" => {
                    required |= 16;
                    &mut creds.response
                }
                "algorithm" => creds.algorithm.insert(String::new()),
                "cnonce" => creds.cnonce.insert(String::new()),
                "nc" => creds.nc.insert(String::new()),
                "qop" => creds.qop.insert(String::new()),
                "opaque" => creds.opaque.insert(String::new()),
                _ => {
                    seen.push(lower);
                    continue;
                }
            };
            *slot = param;
            seen.push(lower);
        }
        (required == 31).then_some(creds)
    }

    /// The algorithm these credentials use (`None` if unsupported).
    pub fn algo(&self) -> Option<DigestAlgo> {
        match &self.algorithm {
            None => Some(DigestAlgo::Md5),
            Some(name) => DigestAlgo::from_name(name),
        }
    }

    /// The response the client should have sent for `method`, given the user's hex `HA1`:
    /// `H(HA1:nonce:nc:cnonce:qop:H(method:uri))` with `qop`, or `H(HA1:nonce:H(method:uri))`
    /// without (RFC 2069 compatibility; the server refuses that form anyway).
    pub fn expected_response(&self, algo: DigestAlgo, method: &str, ha1_hex: &str) -> String {
        let ha2 = algo.hex(format!("{method}:{}", self.uri).as_bytes());
        let data = match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) => {
                format!("{ha1_hex}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce)
            }
            _ => format!("{ha1_hex}:{}:{ha2}", self.nonce),
        };
        algo.hex(data.as_bytes())
    }
}

/// Parses `name=value` pairs separated by commas (values are tokens or quoted strings).
fn parse_params(s: &str) -> Option<Vec<(String, String)>> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i >= bytes.len() {
            return Some(out);
        }
        let start = i;
        while i < bytes.len() && is_token_byte(bytes[i]) {
            i += 1;
        }
        let name = s.get(start..i)?;
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        if name.is_empty() || bytes.get(i) != Some(&b'=') {
            return None;
        }
        i += 1;
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        let value = if bytes.get(i) == Some(&b'"') {
            let (value, rest) = crate::sip::syntax::parse_quoted(s.get(i..)?)?;
            i = s.len() - rest.len();
            value
        } else {
            let start = i;
            while i < bytes.len() && is_token_byte(bytes[i]) {
                i += 1;
            }
            s.get(start..i).filter(|v| !v.is_empty())?.to_string()
        };
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        if i < bytes.len() && bytes[i] != b',' {
            return None;
        }
        if out.len() >= MAX_PARAMS {
            return None;
        }
        out.push((name.to_string(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let c = DigestCredentials::parse(concat!(
            r#"Digest username="bob\"s", realm="r", nonce="n", uri="sip:r", response="ab","#,
            r#"algorithm=SHA-256,qop=auth , nc=00000001, cnonce="c", opaque="o", x=y"#
        ))
        .expect("should succeed");
        assert_eq!(c.username, "bob\"s");
        assert_eq!(c.algo(), Some(DigestAlgo::Sha256));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.opaque.as_deref(), Some("o"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "Digest",
            "Basic dXNlcjpwYXNz",
            r#"Digest username="a", realm="r", nonce="n", uri="u""#,
            r#"Digest username="a", username="b", realm="r", nonce="n", uri="u", response="x""#,
            r#"Digest username="a, realm="r", nonce="n", uri="u", response="x""#,
            r#"Digest username="a" realm="r", nonce="n", uri="u", response="x""#,
            r#"Digest username=, realm="r", nonce="n", uri="u", response="x""#,
            r#"Digest =a, realm="r", nonce="n", uri="u", response="x""#,
        ] {
            assert_eq!(DigestCredentials::parse(bad), None, "{bad:?}");
        }
        let many = format!(
            "Digest {}username=a, realm=r, nonce=n, uri=u, response=x",
            "p=1, ".repeat(40)
        );
        assert_eq!(DigestCredentials::parse(&many), None);
        let unsupported = DigestCredentials {
            algorithm: Some("MD5-sess".into()),
            ..Default::default()
        };
        assert_eq!(unsupported.algo(), None);
    }
}
