//! What file URLs carry: HMAC-SHA256 signatures over an upload grant or a download
//! capability ([`UrlSigner`], keyed by the pool-wide `files` secret so any node checks what any
//! node signed), percent-encoding for the URLs, and the sanitised file name a download is
//! served under.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks the fields of file URLs.
#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
}

impl UrlSigner {
    pub fn new(key: &[u8]) -> UrlSigner {
        UrlSigner { key: key.to_vec() }
    }

    fn mac(&self, kind: &str, fields: &[&str]) -> HmacSha256 {
        // new_from_slice accepts keys of any length.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        for part in std::iter::once(kind).chain(fields.iter().copied()) {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// The signature of `fields` for the purpose `kind` (`"put"`, `"get"`), base64url.
    pub fn sign(&self, kind: &str, fields: &[&str]) -> String {
        let tag = self.mac(kind, fields).finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
    }

    /// Whether `sig` is the signature of `fields` for `kind` (compared in constant time).
    pub fn verify(&self, kind: &str, fields: &[&str], sig: &str) -> bool {
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        self.mac(kind, fields).verify_slice(&tag).is_ok()
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Longest file name kept (characters).
const MAX_NAME_CHARS: usize = 120;

/// The name a file is offered under: printable characters only, no path separators, no
/// leading dots, no Windows device names, at most 120 characters; `"file"` when nothing is
/// left. Non-ASCII letters stay (they go in `filename*`).
pub fn clean_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' | ';' => '_',
            c => c,
        })
        .take(MAX_NAME_CHARS)
        .collect();
    out = out.trim().trim_start_matches('.').trim().to_string();
    if out.is_empty() {
        return "file".into();
    }
    let stem = out.split('.').next().unwrap_or("").to_ascii_uppercase();
    let device = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if device {
        out.insert(0, '_');
    }
    out
}

/// `Content-Disposition` for `name`: an ASCII fallback and the UTF-8 name (RFC 6266).
pub fn content_disposition(kind: &str, name: &str) -> String {
    let clean = clean_name(name);
    let ascii: String = clean
        .chars()
        .map(|c| if c.is_ascii() && c != '%' { c } else { '_' })
        .collect();
    format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        pct(&clean)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field() {
        let s = UrlSigner::new(b"key");
        let sig = s.sign("get", &["id", "123"]);
        assert!(s.verify("get", &["id", "123"], &sig));
        assert!(!s.verify("put", &["id", "123"], &sig));
        assert!(!s.verify("get", &["id", "124"], &sig));
        assert!(
            !s.verify("get", &["id1", "23"], &sig),
            "fields are length-prefixed"
        );
        assert!(!UrlSigner::new(b"other").verify("get", &["id", "123"], &sig));
        assert!(!s.verify("get", &["id", "123"], "not base64!"));
        assert!(!s.verify("get", &["id", "123"], ""));
    }

    #[test]
    fn names_are_harmless() {
        assert_eq!(clean_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(clean_name("CON"), "_CON");
        assert_eq!(clean_name("aux.txt"), "_aux.txt");
        assert_eq!(clean_name("com1.log"), "_com1.log");
        assert_eq!(clean_name("a:b"), "a_b");
        assert_eq!(clean_name("nul\0byte"), "nulbyte");
        assert_eq!(clean_name(".hidden"), "hidden");
        assert_eq!(clean_name("..."), "file");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name(&"x".repeat(300)).len(), 120);
        assert_eq!(clean_name("Ünïcode ok.txt"), "Ünïcode ok.txt");
        assert_eq!(clean_name("line\r\nbreak"), "linebreak");
    }

    #[test]
    fn dispositions_are_ascii_with_utf8_name() {
        let d = content_disposition("attachment", "résumé \"x\".pdf");
        assert!(d.is_ascii(), "{d}");
        assert!(
            d.starts_with("attachment; filename=\"r_sum_ _x_.pdf\""),
            "{d}"
        );
        assert!(
            d.ends_with("filename*=UTF-8''r%C3%A9sum%C3%A9%20_x_.pdf"),
            "{d}"
        );
        assert_eq!(pct("a b/ü"), "a%20b%2F%C3%BC");
    }
}
