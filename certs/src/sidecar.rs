//! `server.names`: a small text file next to the certificates recording what
//! the current leaf was issued for and when the CA expires (the crate has no
//! X.509 parser to read that back from the certificates themselves).
//!
//! Format, one `key value` pair a line, `#` starts a comment:
//!
//! ```text
//! issued 1732345678
//! expires 1803625678
//! ca-expires 2047705678
//! name localhost
//! name 127.0.0.1
//! ```

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::fsutil::{write_atomic, PUBLIC};
use crate::CertError;

/// Parsed contents of the sidecar file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Meta {
    /// When the leaf was issued.
    pub issued: Option<SystemTime>,
    /// The leaf's notAfter.
    pub expires: Option<SystemTime>,
    /// The CA's notAfter, if known.
    pub ca_expires: Option<SystemTime>,
    /// Every name (DNS and IP) the leaf was issued for.
    pub names: Vec<String>,
}

impl Meta {
    /// Reads the sidecar; a missing or unreadable file yields `None`.
    pub fn read(path: &Path) -> Option<Meta> {
        std::fs::read_to_string(path)
            .ok()
            .map(|text| Meta::parse(&text))
    }

    /// Writes the sidecar atomically.
    pub fn write(&self, path: &Path) -> Result<(), CertError> {
        write_atomic(path, self.render().as_bytes(), PUBLIC)
    }

    fn parse(text: &str) -> Meta {
        let mut meta = Meta::default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(char::is_whitespace) else {
                continue;
            };
            let value = value.trim();
            match key {
                "issued" => meta.issued = parse_time(value),
                "expires" => meta.expires = parse_time(value),
                "ca-expires" => meta.ca_expires = parse_time(value),
                "name" => meta.names.push(value.to_owned()),
                _ => {}
            }
        }
        meta
    }

    fn render(&self) -> String {
        let mut out =
            String::from("# palaver development certificates; maintained by palaver-certs\n");
        for (key, time) in [
            ("issued", self.issued),
            ("expires", self.expires),
            ("ca-expires", self.ca_expires),
        ] {
            if let Some(t) = time {
                out.push_str(&format!("{key} {}\n", unix_secs(t)));
            }
        }
        for name in &self.names {
            out.push_str(&format!("name {name}\n"));
        }
        out
    }
}

/// Seconds since the Unix epoch (0 for times before it).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn parse_time(value: &str) -> Option<SystemTime> {
    let secs = value.parse::<u64>().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let meta = Meta {
            issued: Some(t),
            expires: Some(t + Duration::from_secs(10)),
            ca_expires: None,
            names: vec!["localhost".into(), "::1".into()],
        };
        assert_eq!(Meta::parse(&meta.render()), meta);
    }

    #[test]
    fn tolerates_garbage() {
        let meta = Meta::parse("nonsense\nissued soon\nname x\n\u{0}\u{1}");
        assert_eq!(meta.issued, None);
        assert_eq!(meta.names, ["x"]);
    }
}
