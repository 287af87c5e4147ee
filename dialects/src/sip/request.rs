//! Building the requests palaver originates (MESSAGE to room occupants, NOTIFY to conference
//! subscribers, and any other method the gateway needs): request line, Via with a fresh
//! `z9hG4bK` branch and `rport`, Max-Forwards 70, From with tag, To, Call-ID, CSeq, Contact,
//! extra headers and a body with its Content-Length. Every URI is validated and every value
//! sanitized, so text from users cannot break the message.

use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::sip::addr::NameAddr;
use crate::sip::error::SipError;
use crate::sip::headers::same_name;
use crate::sip::response::sanitize;
use crate::sip::syntax::{is_token_byte, Params};
use crate::sip::typed::{CSeq, Method};
use crate::sip::uri::SipUri;
use crate::sip::via::{Via, MAGIC_COOKIE};

fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A fresh RFC 3261 branch: `z9hG4bK` and 20 random alphanumerics.
pub fn new_branch() -> String {
    format!("{MAGIC_COOKIE}{}", random_token(20))
}

/// A fresh From/To tag (16 random alphanumerics).
pub fn new_tag() -> String {
    random_token(16)
}

/// A fresh Call-ID (24 random alphanumerics).
pub fn new_call_id() -> String {
    random_token(24)
}

/// A request built by [`RequestBuilder::build`]: the bytes to send and what a client
/// transaction needs to match responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// The serialized request.
    pub bytes: Vec<u8>,
    /// The Via branch (transaction id).
    pub branch: String,
    /// The Call-ID.
    pub call_id: String,
    /// The CSeq.
    pub cseq: CSeq,
}

/// Builder for an outgoing request. `from`, `to` and `via` are required; Call-ID defaults to a
/// fresh one, CSeq to 1, Max-Forwards to 70, the branch to [`new_branch`].
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: Method,
    request_uri: String,
    from: Option<(String, Option<String>, String)>,
    to: Option<(String, Option<String>, Option<String>)>,
    call_id: Option<String>,
    cseq: u32,
    via: Option<(String, String)>,
    branch: Option<String>,
    max_forwards: u32,
    contact: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

impl RequestBuilder {
    /// A request of `method` to `request_uri`.
    pub fn new(method: Method, request_uri: &str) -> Self {
        RequestBuilder {
            method,
            request_uri: request_uri.to_string(),
            from: None,
            to: None,
            call_id: None,
            cseq: 1,
            via: None,
            branch: None,
            max_forwards: 70,
            contact: None,
            headers: Vec::new(),
            body: None,
        }
    }

    /// A MESSAGE (RFC 3428) to `request_uri`.
    pub fn message(request_uri: &str) -> Self {
        Self::new(Method::Message, request_uri)
    }

    /// A NOTIFY (RFC 6665) to `request_uri` (the subscriber's Contact).
    pub fn notify(request_uri: &str) -> Self {
        Self::new(Method::Notify, request_uri)
    }

    /// The From header: URI, optional display name (quoted for you) and tag.
    pub fn from(mut self, uri: &str, display_name: Option<&str>, tag: &str) -> Self {
        self.from = Some((
            uri.to_string(),
            display_name.map(str::to_string),
            tag.to_string(),
        ));
        self
    }

    /// The To header: URI, optional display name, and the tag when in a dialog.
    pub fn to(mut self, uri: &str, display_name: Option<&str>, tag: Option<&str>) -> Self {
        self.to = Some((
            uri.to_string(),
            display_name.map(str::to_string),
            tag.map(str::to_string),
        ));
        self
    }

    /// The Call-ID.
    pub fn call_id(mut self, call_id: &str) -> Self {
        self.call_id = Some(call_id.to_string());
        self
    }

    /// The CSeq number.
    pub fn cseq(mut self, seq: u32) -> Self {
        self.cseq = seq;
        self
    }

    /// The Via: transport (`UDP`, `TCP`, `TLS` …) and sent-by (`host[:port]`).
    pub fn via(mut self, transport: &str, sent_by: &str) -> Self {
        self.via = Some((transport.to_string(), sent_by.to_string()));
        self
    }

    /// Overrides the generated branch (it should start with `z9hG4bK`).
    pub fn branch(mut self, branch: &str) -> Self {
        self.branch = Some(branch.to_string());
        self
    }

    /// Overrides Max-Forwards (default 70).
    pub fn max_forwards(mut self, hops: u32) -> Self {
        self.max_forwards = hops;
        self
    }

    /// The Contact URI.
    pub fn contact(mut self, uri: &str) -> Self {
        self.contact = Some(uri.to_string());
        self
    }

    /// Appends a header (name must be a token; CR/LF in the value become spaces;
    /// Content-Length is ignored — it is computed).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let valid = !name.is_empty() && name.bytes().all(is_token_byte);
        if valid && !same_name(name, "Content-Length") {
            self.headers.push((name.to_string(), sanitize(value)));
        }
        self
    }

    /// The body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((sanitize(content_type), body.into()));
        self
    }

    /// Serializes the request. Fails when From, To or Via is missing or a URI, sent-by,
    /// transport, tag or Call-ID is invalid.
    pub fn build(self) -> Result<OutgoingRequest, SipError> {
        let request_uri = SipUri::parse(&self.request_uri)?;
        let (from_uri, from_name, from_tag) = self.from.ok_or(SipError::MissingHeader("From"))?;
        let (to_uri, to_name, to_tag) = self.to.ok_or(SipError::MissingHeader("To"))?;
        let (transport, sent_by) = self.via.ok_or(SipError::MissingHeader("Via"))?;
        let branch = self.branch.unwrap_or_else(new_branch);
        let via = Via::new(&transport, &sent_by, &branch)?;
        let from = name_addr(&from_uri, from_name, Some(&from_tag))?;
        let to = name_addr(&to_uri, to_name, to_tag.as_deref())?;
        let call_id = self.call_id.unwrap_or_else(new_call_id);
        if call_id.is_empty() || call_id.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(SipError::malformed("invalid Call-ID"));
        }
        let cseq = CSeq {
            seq: self.cseq,
            method: self.method,
        };
        let mut out = format!("{} {request_uri} SIP/2.0\r\n", self.method);
        let mut push = |name: &str, value: &str| {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        };
        push("Via", &via.to_string());
        push("Max-Forwards", &self.max_forwards.to_string());
        push("From", &from.to_string());
        push("To", &to.to_string());
        push("Call-ID", &call_id);
        push("CSeq", &cseq.to_string());
        if let Some(contact) = &self.contact {
            push("Contact", &format!("<{}>", SipUri::parse(contact)?));
        }
        for (name, value) in &self.headers {
            push(name, value);
        }
        let body = match &self.body {
            Some((content_type, body)) => {
                push("Content-Type", content_type);
                body.as_slice()
            }
            None => &[],
        };
        Ok(OutgoingRequest {
            bytes: with_body(out, body),
            branch,
            call_id,
            cseq,
        })
    }
}

fn name_addr(
    uri: &str,
    display_name: Option<String>,
    tag: Option<&str>,
) -> Result<NameAddr, SipError> {
    let mut params = Params::new();
    if let Some(tag) = tag {
        if tag.is_empty() || !tag.bytes().all(is_token_byte) {
            return Err(SipError::malformed("invalid tag"));
        }
        params.set("tag", Some(tag));
    }
    Ok(NameAddr {
        display_name,
        uri: SipUri::parse(uri)?,
        params,
    })
}

/// Ends a request's head (start line and headers, each ending in CRLF) with its
/// `Content-Length`, the blank line and the body.
pub(crate) fn with_body(mut head: String, body: &[u8]) -> Vec<u8> {
    head.push_str("Content-Length: ");
    head.push_str(&body.len().to_string());
    head.push_str("\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids() {
        let (a, b) = (new_branch(), new_branch());
        assert!(a.starts_with("z9hG4bK") && a.len() == 27 && a != b);
        assert_eq!(new_tag().len(), 16);
        assert_eq!(new_call_id().len(), 24);
    }

    #[test]
    fn missing_parts() {
        let base = RequestBuilder::message("sip:a@b");
        assert_eq!(base.clone().build(), Err(SipError::MissingHeader("From")));
        let with_from = base.from("sip:r@c", None, "t");
        assert_eq!(
            with_from.clone().build(),
            Err(SipError::MissingHeader("To"))
        );
        let with_to = with_from.to("sip:a@b", None, None);
        assert_eq!(with_to.clone().build(), Err(SipError::MissingHeader("Via")));
        assert!(with_to.clone().via("UDP", "h:5060").build().is_ok());
        assert!(with_to
            .clone()
            .via("UDP", "h:5060")
            .call_id("a b")
            .build()
            .is_err());
        assert!(with_to.clone().via("UDP", "bad host").build().is_err());
        assert!(with_to
            .via("UDP", "h")
            .contact("not a uri")
            .build()
            .is_err());
        assert!(RequestBuilder::message("bad")
            .from("sip:r@c", None, "t t")
            .to("sip:a@b", None, None)
            .via("UDP", "h")
            .build()
            .is_err());
    }
}
