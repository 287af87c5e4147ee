//! Stateless answers to requests that could not be parsed (RFC 3261 §8.2.6): scrape Via, From,
//! To, Call-ID and CSeq out of the raw bytes as far as they go and answer 400 (or the status an
//! [`SipError`] maps to). Never answers responses or ACKs, and answers nothing when the five
//! headers cannot all be found. The To tag is derived from the request so retransmissions get
//! the same response.

use sha2::{Digest, Sha256};

use crate::sip::error::SipError;
use crate::sip::headers::{find_head_end, scan_headers, skip_leading_crlf};
use crate::sip::response::SipResponse;

/// Only this many bytes of a bad message are looked at.
const SCRAPE_LIMIT: usize = 16 * 1024;

/// A stateless `400 Bad Request` for `raw`, if enough headers can be scraped.
pub fn bad_request_response(raw: &[u8]) -> Option<Vec<u8>> {
    stateless_response(raw, 400, "Bad Request", &[])
}

/// The stateless response for a [`crate::sip::message::parse`] error: its status (400, 405
/// with `Allow: allow`, 505, 513), if enough headers can be scraped.
pub fn error_response(raw: &[u8], error: &SipError, allow: &str) -> Option<Vec<u8>> {
    let (code, reason) = error.status();
    let extra: &[(&str, &str)] = if code == 405 {
        &[("Allow", allow)]
    } else {
        &[]
    };
    stateless_response(raw, code, reason, extra)
}

/// A stateless response with status `code`, echoing the scraped Via (all of them), From, To
/// (tagged), Call-ID and CSeq, then `extra` headers. `None` for responses, ACKs, or when any of
/// the five headers is missing.
pub fn stateless_response(
    raw: &[u8],
    code: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> Option<Vec<u8>> {
    let raw = skip_leading_crlf(raw);
    let raw = raw.get(..raw.len().min(SCRAPE_LIMIT))?;
    let first_line = raw.split(|b| *b == b'\n').next()?;
    let method = first_line.split(|b| *b == b' ').next()?;
    if method.len() >= 4 && method.get(..4)?.eq_ignore_ascii_case(b"SIP/") || method == b"ACK" {
        return None;
    }
    let head = match find_head_end(raw) {
        Some((end, _)) => raw.get(..end)?,
        None => raw,
    };
    let headers = scan_headers(head);
    let first = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let (from, to, call_id, cseq) = (
        first("From")?,
        first("To")?,
        first("Call-ID")?,
        first("CSeq")?,
    );
    if cseq.split_ascii_whitespace().nth(1) == Some("ACK") {
        return None;
    }
    let vias: Vec<&str> = headers
        .iter()
        .filter(|(n, v)| n == "Via" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    if vias.is_empty() {
        return None;
    }
    let mut response = SipResponse::new(code, reason);
    for via in &vias {
        response = response.with_header("Via", via);
    }
    let to = if to.to_ascii_lowercase().contains(";tag=") {
        to.to_string()
    } else {
        let mut hash = Sha256::new();
        for part in [
            from,
            call_id,
            cseq,
            vias.first().copied().unwrap_or_default(),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        let tag: String = hash
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{to};tag={tag}")
    };
    response = response
        .with_header("From", from)
        .with_header("To", &to)
        .with_header("Call-ID", call_id)
        .with_header("CSeq", cseq);
    for (name, value) in extra {
        response = response.with_header(name, value);
    }
    Some(response.to_bytes())
}
