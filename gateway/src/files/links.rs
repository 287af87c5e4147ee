//! Fresh download links in archived messages: a message served from a room's history (on join,
//! or from an archive query) has every download URL of this server re-signed with a new expiry,
//! so links that expired (`files.download_ttl_secs`) work again for whoever may read the room's
//! history now, and a person who left a members-only room keeps only links that run out. Live
//! messages are not touched (they are encoded once for every occupant).
//!
//! A link is `<base>/files/<uuid>/<name>?e=<ms>&s=<sig>`; inside XML (a message's stored
//! `<x xmlns='jabber:x:oob'>` payload) the `&` is `&amp;`. Only the `e` and `s` values change.

use super::FileService;
use palaver_core::engine::HistoryRewriter;
use palaver_core::model::StoredMessage;

impl FileService {
    /// `text` with every download link of this server re-signed, or `None` when it has none.
    pub fn refresh_links(&self, text: &str) -> Option<String> {
        let prefix = format!("{}/files/", self.base_url);
        if !text.contains(&prefix) {
            return None;
        }
        let mut out = String::with_capacity(text.len() + 32);
        let mut rest = text;
        let mut changed = false;
        while let Some(at) = rest.find(&prefix) {
            let start = at + prefix.len();
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let Some(link) = parse_link(rest) else {
                continue;
            };
            let Ok(id) = uuid::Uuid::parse_str(&rest[..36]) else {
                continue;
            };
            let (expires, sig) = self.download_signature(id);
            out.push_str(&rest[..link.query_at]);
            out.push_str(&format!("?e={expires}{}s={sig}", link.amp));
            rest = &rest[link.end..];
            changed = true;
        }
        out.push_str(rest);
        changed.then_some(out)
    }
}

/// Where the query of a link starts and ends (relative to the text after `/files/`), and the
/// separator it uses between `e` and `s`.
struct Link {
    query_at: usize,
    end: usize,
    amp: &'static str,
}

/// Parses `<uuid>/<name>?e=<digits>(&|&amp;)s=<base64url>` at the start of `s`.
fn parse_link(s: &str) -> Option<Link> {
    let b = s.as_bytes();
    if b.len() < 38 || b[36] != b'/' {
        return None;
    }
    let name_len = s[37..].find(|c: char| c == '?' || c.is_whitespace() || c == '<')?;
    let query_at = 37 + name_len;
    let q = s[query_at..].strip_prefix("?e=")?;
    let digits = q.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let after = &q[digits..];
    let (amp, sig) = if let Some(x) = after.strip_prefix("&amp;s=") {
        ("&amp;", x)
    } else {
        ("&", after.strip_prefix("&s=")?)
    };
    let sig_len = sig
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        .count();
    let end = s.len() - sig.len() + sig_len;
    Some(Link { query_at, end, amp })
}

impl HistoryRewriter for FileService {
    fn rewrite(&self, message: &StoredMessage) -> Option<StoredMessage> {
        let body = self.refresh_links(&message.body);
        let extra = message.extra.as_deref().and_then(|x| self.refresh_links(x));
        if body.is_none() && extra.is_none() {
            return None;
        }
        let mut m = message.clone();
        if let Some(b) = body {
            m.body = b;
        }
        if let Some(x) = extra {
            m.extra = Some(x);
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_link;

    const ID: &str = "0b7e9a5c-3f1e-4d2a-9c8b-1a2b3c4d5e6f";

    #[test]
    fn parses_plain_and_xml_links() {
        let plain = format!("{ID}/a%20b.txt?e=123&s=AbC-_9 rest");
        let l = parse_link(&plain).expect("plain");
        assert_eq!(&plain[l.query_at..l.end], "?e=123&s=AbC-_9");
        assert_eq!(l.amp, "&");
        let xml = format!("{ID}/x.png?e=0&amp;s=zz</url>");
        let l = parse_link(&xml).expect("xml");
        assert_eq!(&xml[l.query_at..l.end], "?e=0&amp;s=zz");
        assert_eq!(l.amp, "&amp;");
    }

    #[test]
    fn rejects_what_is_not_a_link() {
        for s in [
            "short",
            &format!("{ID}x.png?e=1&s=a"),
            &format!("{ID}/x.png"),
            &format!("{ID}/x.png?e=&s=a"),
            &format!("{ID}/x.png?e=1&t=a"),
            &format!("{ID}/x y.png?e=1&s=a"),
        ] {
            assert!(parse_link(s).is_none(), "{s}");
        }
    }
}
