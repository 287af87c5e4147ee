//! The header section of a SIP message as lines: finding the start line and the blank line,
//! unfolding continuation lines, expanding compact header names (RFC 3261 §7.3.3) to their
//! canonical spelling, and rejecting bytes that have no business in a header. rsip 0.4 does
//! none of these (a folded header or `f:` breaks it), so this runs before rsip sees anything.

/// At most this many header fields in one message (a defence against a flood of tiny lines).
pub const MAX_HEADER_FIELDS: usize = 256;

/// One header field: canonical name and unfolded, trimmed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// Canonical name (`Call-ID`, `Via`, …; unknown names as sent).
    pub name: String,
    /// The value (continuation lines joined with one space).
    pub value: String,
}

/// Compact forms (RFC 3261 §7.3.3 and later RFCs) and the canonical spelling of known names.
const NAMES: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("n", "Identity-Info"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

const CANONICAL: &[&str] = &[
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Organization",
    "Path",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "Server",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

/// The canonical spelling of a header name: compact forms expanded, known names in their RFC
/// capitalization, anything else unchanged.
pub fn canonical_name(name: &str) -> String {
    if let Some((_, full)) = NAMES.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
        return (*full).to_string();
    }
    CANONICAL
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_string(), |c| (*c).to_string())
}

/// Whether two header names denote the same header (case and compact form ignored).
pub fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || canonical_name(a).eq_ignore_ascii_case(&canonical_name(b))
}

/// Leading CR/LF bytes, ignored before a start line (RFC 3261 §7.5).
pub(crate) fn skip_leading_crlf(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    bytes.get(n..).unwrap_or_default()
}

/// Finds the blank line ending the header section of `bytes` (which starts at the start line):
/// returns (end of the last header line, start of the body). Accepts CRLF or bare LF.
pub(crate) fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut line_start = 0;
    while let Some(off) = bytes.get(line_start..)?.iter().position(|b| *b == b'\n') {
        let nl = line_start + off;
        let line = bytes.get(line_start..nl)?;
        if line.is_empty() || line == b"\r" {
            return (line_start > 0).then_some((line_start, nl + 1));
        }
        line_start = nl + 1;
    }
    None
}

/// A message split into start line, header fields and body.
#[derive(Debug)]
pub(crate) struct Split<'a> {
    pub start_line: &'a str,
    pub fields: Vec<HeaderField>,
    pub body: &'a [u8],
}

/// Splits a whole message (leading CRLFs already skipped).
pub(crate) fn split_message(bytes: &[u8]) -> Result<Split<'_>, crate::sip::SipError> {
    use crate::sip::SipError;
    let (head_end, body_start) =
        find_head_end(bytes).ok_or_else(|| SipError::malformed("header section not terminated"))?;
    let head = bytes.get(..head_end).unwrap_or_default();
    let head = std::str::from_utf8(head)
        .map_err(|_| SipError::malformed("header section is not UTF-8"))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or_default();
    check_line(start_line)?;
    let mut fields: Vec<HeaderField> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue; // the terminating CRLF of the last header line
        }
        check_line(line)?;
        if line.starts_with([' ', '\t']) {
            let last = fields
                .last_mut()
                .ok_or_else(|| SipError::malformed("continuation line before any header"))?;
            if !last.value.is_empty() {
                last.value.push(' ');
            }
            last.value.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| SipError::malformed("header line without ':'"))?;
        let name = name.trim_end_matches([' ', '\t']);
        if !crate::sip::syntax::is_token(name) {
            return Err(SipError::malformed("invalid header name"));
        }
        if fields.len() >= MAX_HEADER_FIELDS {
            return Err(SipError::malformed("too many header fields"));
        }
        fields.push(HeaderField {
            name: canonical_name(name),
            value: value.trim().to_string(),
        });
    }
    Ok(Split {
        start_line,
        fields,
        body: bytes.get(body_start..).unwrap_or_default(),
    })
}

/// Control characters other than HTAB are not allowed in the header section.
fn check_line(line: &str) -> Result<(), crate::sip::SipError> {
    if line.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(crate::sip::SipError::malformed(
            "control character in header",
        ));
    }
    Ok(())
}

/// Tolerant header scan over raw bytes for framing and stateless answers: yields (canonical
/// name, value) for every `name: value` line of the header section, skipping lines that are
/// not UTF-8 or not headers. Continuation lines are appended. Stops at the blank line.
pub(crate) fn scan_headers(head: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut lines = head
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let _start_line = lines.next();
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if check_line(line).is_err() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim_end_matches([' ', '\t']);
            if crate::sip::syntax::is_token(name) && out.len() < MAX_HEADER_FIELDS {
                out.push((canonical_name(name), value.trim().to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(canonical_name("v"), "Via");
        assert_eq!(canonical_name("I"), "Call-ID");
        assert_eq!(canonical_name("call-id"), "Call-ID");
        assert_eq!(canonical_name("www-authenticate"), "WWW-Authenticate");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
        assert!(same_name("l", "content-length"));
        assert!(!same_name("l", "Content-Type"));
    }

    #[test]
    fn head_end() {
        assert_eq!(find_head_end(b"A\r\nB: c\r\n\r\nbody"), Some((9, 11)));
        assert_eq!(find_head_end(b"A\nB: c\n\nbody"), Some((7, 8)));
        assert_eq!(find_head_end(b"A\r\nB: c\r\n"), None);
        assert_eq!(find_head_end(b"\r\n"), None);
    }

    #[test]
    fn splitting() {
        let m = b"MESSAGE sip:a@b SIP/2.0\r\nSubject: a\r\n  b\r\n\tc\r\nf : <sip:x@y>\r\n\r\nhi";
        let s = split_message(m).expect("should succeed");
        assert_eq!(s.start_line, "MESSAGE sip:a@b SIP/2.0");
        assert_eq!(s.fields[0].value, "a b c");
        assert_eq!(s.fields[1].name, "From");
        assert_eq!(s.body, b"hi");
        assert!(split_message(b"A\r\n b\r\n\r\n").is_err());
        assert!(split_message(b"A\r\nB c\r\n\r\n").is_err());
        assert!(split_message(b"A\r\nB\x01: c\r\n\r\n").is_err());
        assert!(split_message(b"A\r\nB: \x00\r\n\r\n").is_err());
        assert!(split_message(b"A\r\nB: \xff\r\n\r\n").is_err());
        let many = format!("A\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEADER_FIELDS + 1));
        assert!(split_message(many.as_bytes()).is_err());
    }

    #[test]
    fn tolerant_scan() {
        let h =
            scan_headers(b"GARBAGE\r\nv: a\r\n b\r\n\xff\xfe: x\r\nnocolon\r\ni:c\r\n\r\nX: no");
        assert_eq!(
            h,
            vec![
                ("Via".to_string(), "a b".to_string()),
                ("Call-ID".to_string(), "c".to_string())
            ]
        );
    }
}
