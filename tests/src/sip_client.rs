//! [`SipClient`]: a small but real SIP user agent for the tests, over UDP, TCP or TLS (trusting
//! only the dev CA), built on the sans-IO codec in `palaver_dialects::sip`.
//!
//! What it does, as a SIP phone or IM client would:
//! * REGISTER with the full digest dance (401 → `Authorization`, MD5 or SHA-256, `qop=auth`,
//!   `nc`, `cnonce`), and unREGISTER;
//! * send any non-INVITE request and wait for its final response, retransmitting over UDP
//!   (timer E: T1 doubling up to T2) and answering one 401/407 challenge automatically;
//! * SUBSCRIBE to a room's conference event package and keep the dialog (to-tag, route set,
//!   CSeq) for refreshes and the final `Expires: 0`;
//! * answer every request the server sends (MESSAGE, NOTIFY, OPTIONS) at once — 200 OK, or a
//!   chosen status, or nothing ([`AutoReply`]) — and keep it in an inbox the test reads.
//!
//! For bad-input tests it also sends arbitrary bytes ([`SipClient::send_raw`]) and hands back
//! whatever arrived that no transaction claimed ([`SipClient::recv_raw`]).
//!
//! Every wait is bounded (by [`SipClient::timeout`] or an explicit duration); failures are
//! `anyhow` errors saying what was awaited and what arrived instead. Nothing the server sends
//! can make the client panic.

mod client;
mod dialog;
pub mod digest;
mod inbox;
pub mod invite;
mod io;
mod transaction;

pub use client::SipClient;
pub use io::RawFrame;
pub use palaver_dialects::sip::digest::DigestAlgo;
pub use palaver_dialects::sip::{Method, SipMessage};

use std::fmt;
use std::net::SocketAddr;

/// The transport of a [`SipClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SipTransport {
    Udp,
    Tcp,
    Tls,
}

impl SipTransport {
    /// All three, for tests that run once per transport.
    pub const ALL: [SipTransport; 3] = [SipTransport::Udp, SipTransport::Tcp, SipTransport::Tls];

    /// The Via transport token (`UDP`, `TCP`, `TLS`).
    pub fn via_token(self) -> &'static str {
        match self {
            SipTransport::Udp => "UDP",
            SipTransport::Tcp => "TCP",
            SipTransport::Tls => "TLS",
        }
    }

    /// Whether the transport is reliable (no retransmissions).
    pub fn is_reliable(self) -> bool {
        self != SipTransport::Udp
    }
}

impl fmt::Display for SipTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

/// How the client answers requests from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoReply {
    /// Answer with this status (200 by default; e.g. 481 or 486 to test failure handling).
    Status(u16),
    /// Do not answer at all (the server retransmits over UDP, then times out).
    Ignore,
}

impl From<u16> for AutoReply {
    fn from(code: u16) -> Self {
        AutoReply::Status(code)
    }
}

/// A final (or, for raw use, any) response to one of our requests.
#[derive(Debug, Clone)]
pub struct Response {
    pub code: u16,
    pub reason: String,
    pub message: SipMessage,
    /// The bytes as received.
    pub raw: Vec<u8>,
}

impl Response {
    /// Parses a response from raw bytes (e.g. what [`SipClient::recv_raw`] returned).
    pub fn parse(bytes: &[u8]) -> anyhow::Result<Response> {
        let message = palaver_dialects::sip::parse(bytes, io::MAX_MESSAGE)
            .map_err(|e| anyhow::anyhow!("not a SIP message ({e}): {}", show(bytes)))?;
        let Some(code) = message.status() else {
            anyhow::bail!("a request, not a response: {}", show(bytes));
        };
        Ok(Response {
            code,
            reason: message.reason().unwrap_or_default().to_string(),
            raw: bytes.to_vec(),
            message,
        })
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.message.header(name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(self.message.body()).into_owned()
    }

    /// Whether the code is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

/// A request the server sent us (already answered, see [`AutoReply`]).
#[derive(Debug, Clone)]
pub struct InboundRequest {
    pub method: Method,
    /// The From URI (`sip:lobby@conference.localhost`).
    pub from: String,
    /// The From display name, if any.
    pub display_name: Option<String>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    pub message: SipMessage,
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// Where it came from.
    pub source: SocketAddr,
    /// The status we answered with (`None`: not answered).
    pub answered: Option<u16>,
}

impl InboundRequest {
    fn new(message: SipMessage, raw: &[u8], source: SocketAddr, answered: Option<u16>) -> Self {
        InboundRequest {
            method: message.method().unwrap_or(Method::Options),
            from: message.from().uri.to_string(),
            display_name: message.from().display_name.clone(),
            body: String::from_utf8_lossy(message.body()).into_owned(),
            raw: raw.to_vec(),
            source,
            answered,
            message,
        }
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.message.header(name)
    }

    /// One line for failure messages.
    pub fn summary(&self) -> String {
        let mut body: String = self.body.chars().take(120).collect();
        if body.len() < self.body.len() {
            body.push('…');
        }
        format!("{} from {}: {body:?}", self.method, self.from)
    }
}

/// A reason phrase for the codes the client sends.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Provisional",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// `sip:x` for `x` without a scheme (so tests may write `lobby@conference.localhost`).
pub fn sip_uri(s: &str) -> String {
    let lower = s.get(..5).unwrap_or_default().to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        s.to_string()
    } else {
        format!("sip:{s}")
    }
}

/// Bytes for a failure message: text up to 2 KiB, control bytes other than CR/LF escaped.
pub fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes.get(..2048).unwrap_or(bytes));
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_control() && c != '\r' && c != '\n' {
                format!("\\x{:02x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect();
    if bytes.len() > 2048 {
        out.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    out
}
