//! The sans-IO XMPP stream reader: buffers socket bytes ([`StreamReader::feed`]) and yields
//! stream events ([`StreamReader::next_event`]) — the stream header, each complete depth-1
//! stanza as an [`Element`], and the stream close — plus the reader's [`Limits`] and the
//! [`StreamError`]s that map to RFC 6120 stream error conditions.
//!
//! Framing (where the header and each stanza end, limits, restricted XML) is done byte by
//! byte by the framer before quick-xml parses a complete unit, so a peer can never make the
//! reader buffer more than `max_stanza_bytes` of an incomplete stanza.

use std::collections::VecDeque;

use crate::xmpp::element::Element;
use crate::xmpp::framer::{Frame, Framer, Mode};
use crate::xmpp::ns;
use crate::xmpp::parse::{parse_element, parse_header, Scope};

/// Resource limits enforced while reading a stream.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest stanza (bytes of one depth-1 element, as sent). Default 256 KiB.
    pub max_stanza_bytes: usize,
    /// Deepest element nesting; the stanza itself is depth 1. Default 32.
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one start tag. Default 64.
    pub max_attrs: usize,
    /// Largest stream header (with the XML declaration and leading whitespace). Default 4096.
    pub max_stream_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 32,
            max_attrs: 64,
            max_stream_header_bytes: 4096,
        }
    }
}

/// Something read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// `<stream:stream ...>` opened: its attributes (to, from, version, id, xml:lang; no
    /// namespace declarations) and its default namespace (jabber:client / jabber:server /
    /// jabber:component:accept).
    Open {
        attrs: Vec<(String, String)>,
        default_ns: String,
    },
    /// A complete depth-1 child of the stream, namespaces resolved (the default namespace is
    /// inherited from the header; `stream:features` and `stream:error` get
    /// `http://etherx.jabber.org/streams`).
    Stanza(Element),
    /// `</stream:stream>` (or a self-closed header).
    Close,
}

/// Why the stream cannot be read further; [`StreamError::condition`] names the RFC 6120
/// stream error to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// Stanza or header too large, too many attributes.
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    /// DOCTYPE, processing instructions (other than the leading XML declaration), comments,
    /// entity references other than the five predefined ones and numeric references.
    #[error("restricted XML: {0}")]
    RestrictedXml(String),
    /// Nesting deeper than `max_depth`.
    #[error("elements nested too deeply")]
    DepthExceeded,
    /// Stream element not in the streams namespace (or unbound/wrong prefix), or an
    /// unsupported content namespace.
    #[error("invalid namespace: {0}")]
    InvalidNamespace(String),
    /// E.g. text between stanzas, a stanza before the stream header.
    #[error("bad format: {0}")]
    BadFormat(String),
    /// Bytes that are not UTF-8, or an XML declaration naming another encoding.
    #[error("invalid UTF-8")]
    InvalidUtf8,
}

impl StreamError {
    /// RFC 6120 §4.9.3 condition element name for the stream error.
    pub fn condition(&self) -> &'static str {
        match self {
            StreamError::NotWellFormed(_) => "not-well-formed",
            StreamError::PolicyViolation(_) | StreamError::DepthExceeded => "policy-violation",
            StreamError::RestrictedXml(_) => "restricted-xml",
            StreamError::InvalidNamespace(_) => "invalid-namespace",
            StreamError::BadFormat(_) => "bad-format",
            // §4.9.3.22: "improperly encoded the stream (e.g., by violating the rules of UTF-8)".
            StreamError::InvalidUtf8 => "unsupported-encoding",
        }
    }
}

/// Content namespaces accepted as the stream's default namespace.
const CONTENT_NAMESPACES: [&str; 3] = [ns::CLIENT, "jabber:server", "jabber:component:accept"];

/// Sans-IO reader for one XMPP stream (see the module docs).
pub struct StreamReader {
    limits: Limits,
    buf: Vec<u8>,
    /// Absolute stream offset of `buf[0]`.
    base: usize,
    framer: Framer,
    frames: VecDeque<Frame>,
    /// Namespaces declared by the stream header.
    scope: Option<Scope>,
    poisoned: Option<StreamError>,
}

/// Summarizes (the buffer can be large and holds peer data).
impl std::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReader")
            .field("limits", &self.limits)
            .field("offset", &(self.base + self.buf.len()))
            .field("buffered", &self.buffered())
            .field("pending_frames", &self.frames.len())
            .field("header_seen", &self.scope.is_some())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl StreamReader {
    pub fn new(limits: Limits) -> StreamReader {
        StreamReader {
            framer: Framer::new(Mode::Stream, &limits),
            limits,
            buf: Vec::new(),
            base: 0,
            frames: VecDeque::new(),
            scope: None,
            poisoned: None,
        }
    }

    /// Buffer more bytes from the socket. Returns `Err(PolicyViolation)` at once if the bytes
    /// buffered for the current (incomplete) stanza or header would exceed the limit — before
    /// parsing anything, and without buffering more than the limit (plus one byte) of it.
    /// Other problems are reported by [`StreamReader::next_event`] after the events before
    /// them. Bytes after the stream's close (or after an error) are discarded.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), StreamError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        self.compact();
        while !data.is_empty() && !self.framer.is_done() {
            let pending = self.base + self.buf.len() - self.framer.unit_start();
            let room = self.framer.unit_limit().saturating_sub(pending) + 1;
            let (now, later) = data.split_at(room.min(data.len()));
            data = later;
            self.buf.extend_from_slice(now);
            if let Err(e) = self.framer.scan(&self.buf, self.base, &mut self.frames) {
                self.frames.clear();
                self.poisoned = Some(e.clone());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Next complete event, `Ok(None)` when more bytes are needed. After an `Err` the reader
    /// is poisoned (keeps returning the error).
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, StreamError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        let Some(frame) = self.frames.pop_front() else {
            self.compact();
            return Ok(None);
        };
        let result = match frame {
            Frame::Header { start, end } => self.open(start, end),
            Frame::Stanza { start, end } => match &self.scope {
                Some(scope) => parse_element(self.slice(start, end), scope, &self.limits)
                    .map(StreamEvent::Stanza),
                None => Err(StreamError::BadFormat(
                    "stanza before the stream header".into(),
                )),
            },
            Frame::Close => Ok(StreamEvent::Close),
            Frame::Error(e) => Err(e),
        };
        match result {
            Ok(event) => Ok(Some(event)),
            Err(e) => {
                self.frames.clear();
                self.poisoned = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Forget everything (new stream after STARTTLS or SASL success: a fresh header, and
    /// optionally an XML declaration, is expected). Buffered bytes are dropped, so nothing
    /// sent before the reset can be smuggled into the new stream.
    pub fn reset(&mut self) {
        *self = StreamReader::new(self.limits.clone());
    }

    /// Bytes currently buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - (self.keep_from() - self.base).min(self.buf.len())
    }

    /// The limits this reader enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn slice(&self, start: usize, end: usize) -> &[u8] {
        match (start.checked_sub(self.base), end.checked_sub(self.base)) {
            (Some(s), Some(e)) => self.buf.get(s..e).unwrap_or_default(),
            _ => &[],
        }
    }

    fn open(&mut self, start: usize, end: usize) -> Result<StreamEvent, StreamError> {
        let (header, scope) = parse_header(self.slice(start, end), &self.limits)?;
        if header.name != "stream" {
            return Err(StreamError::BadFormat(format!(
                "expected the stream header, got <{}>",
                header.name
            )));
        }
        if header.ns != ns::STREAM {
            return Err(StreamError::InvalidNamespace(format!(
                "stream element in namespace {:?}",
                header.ns
            )));
        }
        let default_ns = scope.default_ns().to_string();
        if !CONTENT_NAMESPACES.contains(&default_ns.as_str()) {
            return Err(StreamError::InvalidNamespace(format!(
                "unsupported content namespace {default_ns:?}"
            )));
        }
        self.scope = Some(scope);
        Ok(StreamEvent::Open {
            attrs: header.attrs,
            default_ns,
        })
    }

    /// Absolute offset before which no buffered byte is needed any more.
    fn keep_from(&self) -> usize {
        let needed = match self.frames.front() {
            Some(Frame::Header { start, .. } | Frame::Stanza { start, .. }) => *start,
            Some(Frame::Close | Frame::Error(_)) | None => self.framer.unit_start(),
        };
        needed.min(self.base + self.buf.len())
    }

    /// Drops consumed bytes once they make up at least half the buffer (amortized O(1) per
    /// byte), and gives back memory after a large stanza.
    fn compact(&mut self) {
        let consumed = self.keep_from().saturating_sub(self.base);
        if consumed > 0 && consumed * 2 >= self.buf.len() {
            self.buf.drain(..consumed);
            self.base += consumed;
        }
        if self.buf.capacity() > 64 * 1024 && self.buf.len() * 4 < self.buf.capacity() {
            self.buf.shrink_to((self.buf.len() * 2).max(8 * 1024));
        }
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
