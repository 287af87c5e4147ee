//! The client side of SIP digest authentication (RFC 3261 §22.4, RFC 7616, RFC 8760): reading a
//! `WWW-Authenticate` / `Proxy-Authenticate` challenge and computing the `Authorization` /
//! `Proxy-Authorization` answer with `qop=auth`, MD5 or SHA-256.
//!
//! The hashes are computed here with `md-5` and `sha2` directly, not with the server's helpers
//! in `palaver_dialects::sip::digest_header`, so that the self-test (client answer checked by
//! `DigestServer::verify`) compares two independent implementations.

use md5::Md5;
use palaver_dialects::sip::digest::DigestAlgo;
use sha2::{Digest as _, Sha256};

/// One parsed `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `None` when the challenge named an algorithm this client does not implement.
    pub algo: Option<DigestAlgo>,
    /// The `algorithm` token as sent (absent means MD5).
    pub algorithm: Option<String>,
    /// The `qop` options offered (`auth`, `auth-int` …), lower-cased.
    pub qop: Vec<String>,
    /// `stale=true`.
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses `Digest realm="…", nonce="…", …`; `None` for another scheme, a malformed value, or
    /// one without realm or nonce.
    pub fn parse(value: &str) -> Option<DigestChallenge> {
        let value = value.trim();
        let (scheme, rest) = value.split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let params = parse_auth_params(rest)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let algorithm = get("algorithm");
        let algo = match &algorithm {
            None => Some(DigestAlgo::Md5),
            Some(name) => DigestAlgo::from_name(name),
        };
        Some(DigestChallenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algo,
            algorithm,
            qop: get("qop")
                .map(|q| {
                    q.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// Whether `qop=auth` is offered.
    pub fn offers_auth(&self) -> bool {
        self.qop.iter().any(|q| q == "auth")
    }
}

/// Picks the challenge to answer among the values of a 401/407: the first one using `prefer`
/// when given, else the first one whose algorithm this client implements.
pub fn pick_challenge<'a>(
    values: impl IntoIterator<Item = &'a str>,
    prefer: Option<DigestAlgo>,
) -> Option<DigestChallenge> {
    let usable: Vec<DigestChallenge> = values
        .into_iter()
        .filter_map(DigestChallenge::parse)
        .filter(|c| c.algo.is_some())
        .collect();
    match prefer {
        Some(want) => usable.into_iter().find(|c| c.algo == Some(want)),
        None => usable.into_iter().next(),
    }
}

/// Lower-case hex digest of `data` with `algo`.
pub fn hash_hex(algo: DigestAlgo, data: &[u8]) -> String {
    let bytes: Vec<u8> = match algo {
        DigestAlgo::Md5 => Md5::digest(data).to_vec(),
        DigestAlgo::Sha256 => Sha256::digest(data).to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an answer to a challenge needs besides the challenge itself.
#[derive(Debug, Clone)]
pub struct DigestAnswer<'a> {
    /// The digest username: the user part of the address of record.
    pub username: &'a str,
    pub password: &'a str,
    /// The request method (`REGISTER`, `MESSAGE` …).
    pub method: &'a str,
    /// The digest-uri: the Request-URI of the request.
    pub uri: &'a str,
    /// The client nonce.
    pub cnonce: &'a str,
    /// The nonce count (1 for the first use of a nonce).
    pub nc: u32,
}

/// The `Authorization` (or `Proxy-Authorization`) value answering `challenge`: `qop=auth` when
/// the challenge offers it (else the RFC 2069 form), the challenge's algorithm (MD5 when it
/// named an unsupported one — the server will refuse that, which is what such a test wants).
pub fn authorization(challenge: &DigestChallenge, answer: &DigestAnswer<'_>) -> String {
    let algo = challenge.algo.unwrap_or(DigestAlgo::Md5);
    let ha1 = hash_hex(
        algo,
        format!(
            "{}:{}:{}",
            answer.username, challenge.realm, answer.password
        )
        .as_bytes(),
    );
    let ha2 = hash_hex(algo, format!("{}:{}", answer.method, answer.uri).as_bytes());
    let nc = format!("{:08x}", answer.nc);
    let with_qop = challenge.offers_auth();
    let response = if with_qop {
        hash_hex(
            algo,
            format!(
                "{ha1}:{}:{nc}:{}:auth:{ha2}",
                challenge.nonce, answer.cnonce
            )
            .as_bytes(),
        )
    } else {
        hash_hex(algo, format!("{ha1}:{}:{ha2}", challenge.nonce).as_bytes())
    };
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(answer.username),
        quote(&challenge.realm),
        quote(&challenge.nonce),
        quote(answer.uri),
        algo.name(),
    );
    if with_qop {
        out.push_str(&format!(
            ", qop=auth, nc={nc}, cnonce={}",
            quote(answer.cnonce)
        ));
    }
    if let Some(opaque) = &challenge.opaque {
        out.push_str(&format!(", opaque={}", quote(opaque)));
    }
    out
}

/// An RFC 3261 quoted-string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if !c.is_ascii_control() {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// `name=value` pairs separated by commas; values are tokens or quoted strings (unescaped).
fn parse_auth_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(out);
        }
        let eq = rest.find('=')?;
        let name = rest.get(..eq)?.trim();
        if name.is_empty() || name.contains([' ', '\t', ',', '"']) {
            return None;
        }
        rest = rest.get(eq + 1..)?.trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => v.push(chars.next()?.1),
                    c => v.push(c),
                }
            }
            value = v;
            rest = quoted.get(end?..)?;
        } else {
            let end = rest.find([',', ' ', '\t']).unwrap_or(rest.len());
            value = rest.get(..end)?.to_string();
            if value.is_empty() {
                return None;
            }
            rest = rest.get(end..)?;
        }
        rest = rest.trim_start();
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
        out.push((name.to_string(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = DigestChallenge::parse(
            r#"Digest realm="localhost", nonce="abc", opaque="o\"p", algorithm=SHA-256, qop="auth,auth-int", stale=TRUE"#,
        )
        .expect("a challenge");
        assert_eq!(c.realm, "localhost");
        assert_eq!(c.opaque.as_deref(), Some("o\"p"));
        assert_eq!(c.algo, Some(DigestAlgo::Sha256));
        assert_eq!(c.qop, ["auth", "auth-int"]);
        assert!(c.stale && c.offers_auth());
        let md5 = DigestChallenge::parse("digest realm=r,nonce=n").expect("a challenge");
        assert_eq!((md5.algo, md5.stale), (Some(DigestAlgo::Md5), false));
        for bad in [
            "",
            "Basic realm=x",
            "Digest realm=\"r",
            "Digest nonce=n",
            "Digest a b=c",
        ] {
            assert_eq!(DigestChallenge::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc_2617_example() {
        // RFC 2617 §3.5 (qop=auth): Mufasa / "Circle Of Life".
        let c = DigestChallenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            algo: Some(DigestAlgo::Md5),
            algorithm: None,
            qop: vec!["auth".into()],
            stale: false,
        };
        let auth = authorization(
            &c,
            &DigestAnswer {
                username: "Mufasa",
                password: "Circle Of Life",
                method: "GET",
                uri: "/dir/index.html",
                cnonce: "0a4f113b",
                nc: 1,
            },
        );
        assert!(
            auth.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{auth}"
        );
        assert!(auth.contains("nc=00000001"), "{auth}");
    }
}
