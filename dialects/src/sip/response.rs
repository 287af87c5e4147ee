//! Building responses: [`response_to`] copies what RFC 3261 §8.2.6.2 requires from a parsed
//! request (Via list with the stamped `received`/`rport`, From, To plus a tag, Call-ID, CSeq,
//! and Record-Route on dialog-creating responses), then [`SipResponse`] adds headers and a body
//! and serializes with a correct Content-Length. Values are sanitized so no caller-supplied
//! text (a nick, a room name) can inject header lines.

use crate::sip::headers::same_name;
use crate::sip::message::SipMessage;
use crate::sip::syntax::{is_ascii_ctl, is_token_byte};
use crate::sip::typed::Method;

/// A response being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipResponse {
    code: u16,
    reason: String,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// Starts the response to `request` with status `code`: copies every Via (top first, as
/// stamped by [`SipMessage::stamp_source`]), From, To, Call-ID and CSeq; adds `;tag=to_tag` to
/// To when the request had none and `code` is above 100; and copies Record-Route for 101–299
/// responses to dialog-creating requests (SUBSCRIBE, INVITE, REFER; RFC 3261 §12.1.1).
pub fn response_to(
    request: &SipMessage,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> SipResponse {
    let mut response = SipResponse::new(code, reason);
    for via in request.vias() {
        response = response.with_header("Via", &via.to_string());
    }
    let raw = |name: &str| request.header(name).unwrap_or_default().to_string();
    let mut to = raw("To");
    if let (None, Some(tag), true) = (request.to().tag(), to_tag, code > 100) {
        let tag: String = tag
            .bytes()
            .filter(|b| is_token_byte(*b))
            .map(char::from)
            .collect();
        if !tag.is_empty() {
            to = format!("{to};tag={tag}");
        }
    }
    response = response
        .with_header("From", &raw("From"))
        .with_header("To", &to)
        .with_header("Call-ID", request.call_id())
        .with_header("CSeq", &request.cseq().to_string());
    let dialog_creating = matches!(
        request.method(),
        Some(Method::Subscribe | Method::Invite | Method::Refer)
    );
    if dialog_creating && (101..300).contains(&code) {
        for rr in request.header_values("Record-Route") {
            response = response.with_header("Record-Route", rr);
        }
    }
    response
}

impl SipResponse {
    /// An empty response with no headers (see [`response_to`] for the usual start).
    pub fn new(code: u16, reason: &str) -> Self {
        SipResponse {
            code,
            reason: sanitize(reason),
            headers: Vec::new(),
            content_type: None,
            body: Vec::new(),
        }
    }

    /// Appends a header. CR/LF in the value become spaces; a name that is not a token is
    /// dropped, and so is Content-Length (always computed by [`SipResponse::to_bytes`]).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let valid = !name.is_empty() && name.bytes().all(is_token_byte);
        if valid && !same_name(name, "Content-Length") {
            self.headers.push((name.to_string(), sanitize(value)));
        }
        self
    }

    /// Sets the body and its Content-Type.
    pub fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(sanitize(content_type));
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The reason phrase.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The first value of a header added so far.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| same_name(n, name))
            .map(|(_, v)| v.as_str())
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Serializes: status line, headers in order, Content-Type (with a body), Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {} {}\r\n", self.code, self.reason);
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        if let Some(ct) = &self.content_type {
            out.push_str("Content-Type: ");
            out.push_str(ct);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Replaces CR, LF and the other ASCII controls (but not HTAB) with spaces and trims: exactly
/// what the parser refuses, so a parsed value always survives being copied.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if is_ascii_ctl(c) { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizing() {
        let r = SipResponse::new(200, "OK\r\nX: y")
            .with_header("X-Nick", "a\r\nVia: evil")
            .with_header("Bad Name", "v")
            .with_header("l", "99")
            .with_header("Content-Length", "99");
        let text = String::from_utf8(r.to_bytes()).expect("should succeed");
        assert_eq!(
            text,
            "SIP/2.0 200 OK  X: y\r\nX-Nick: a  Via: evil\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(r.header("x-nick"), Some("a  Via: evil"));
    }
}
