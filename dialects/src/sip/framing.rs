//! Cutting SIP messages out of a TCP/TLS byte stream (RFC 3261 §18.3): the header section ends
//! at the first blank line and Content-Length — mandatory on streams — gives the body length.
//! CRLFs between messages are keep-alives (RFC 5626 §4.4.1): a double CRLF is a ping the
//! caller must answer with one CRLF; a lone CRLF is a pong. The header section and the whole
//! message are bounded, the search resumes where it stopped (feeding one byte at a time is
//! O(n)), and after an error the framer stays failed: answer if possible, then close.
//!
//! A server cannot tell a pong from the first half of a ping until more bytes arrive, so it
//! waits; a user agent, which is never pinged, uses [`StreamFramer::for_client`] and gets every
//! CRLF as a pong at once (else the server's one-CRLF pong would sit unreported).

use crate::sip::error::SipError;
use crate::sip::headers::scan_headers;

/// One thing found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    /// A complete message (header section and exactly Content-Length body bytes), ready for
    /// [`crate::sip::message::parse`].
    Message(Vec<u8>),
    /// A CRLFCRLF keep-alive ping: write a single CRLF back.
    Ping,
    /// A single CRLF: the peer's pong to our ping (nothing to send).
    Pong,
}

/// The stream framer. Feed it what the socket gives, then drain [`StreamFramer::next_event`]
/// until it returns `Ok(None)` before reading again (so the buffer stays bounded by the limits
/// plus one read).
#[derive(Debug, Clone)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Consumed bytes at the front of `buf`.
    start: usize,
    /// Where (relative to `start`) to resume looking for the blank line.
    scan: usize,
    /// Total length of the message whose header section has been found.
    pending: Option<usize>,
    max_header: usize,
    max_message: usize,
    error: Option<SipError>,
    /// The header section of the message that made the framer fail, when it was complete.
    failed_head: Option<Vec<u8>>,
    /// A client's framer: every CRLF is a pong, there are no pings.
    client: bool,
}

impl StreamFramer {
    /// A framer accepting messages of at most `max_message` bytes (header section included).
    pub fn new(max_message: usize) -> Self {
        Self::with_limits(max_message, max_message)
    }

    /// A framer with separate bounds for the header section (start line, headers and blank
    /// line) and for the whole message.
    pub fn with_limits(max_header: usize, max_message: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            start: 0,
            scan: 0,
            pending: None,
            max_header: max_header.min(max_message),
            max_message,
            error: None,
            failed_head: None,
            client: false,
        }
    }

    /// A framer for the client side of a connection (a user agent, which sends pings and is
    /// never pinged, RFC 5626 §4.4.1): each CRLF between messages is a [`FrameEvent::Pong`]
    /// as soon as it arrives, and [`FrameEvent::Ping`] never occurs.
    pub fn for_client(max_message: usize) -> Self {
        StreamFramer {
            client: true,
            ..Self::new(max_message)
        }
    }

    /// Appends bytes read from the stream (ignored once the framer has failed).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The next complete message or keep-alive; `Ok(None)` when more bytes are needed. An
    /// error (513 too large, 400 missing or bad Content-Length) is final: every later call
    /// returns it again.
    pub fn next_event(&mut self) -> Result<Option<FrameEvent>, SipError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.step();
        if let Err(error) = &result {
            self.error = Some(error.clone());
            self.buf = Vec::new();
            self.start = 0;
        }
        self.compact();
        result
    }

    /// After an error: the complete header section of the offending message, if the framer
    /// got that far, so the caller can answer it statelessly (513, or 400 for a missing or
    /// bad Content-Length) before closing.
    pub fn failed_head(&self) -> Option<&[u8]> {
        self.failed_head.as_deref()
    }

    /// The next complete message, answering nothing: keep-alives are skipped. Prefer
    /// [`StreamFramer::next_event`], which reports pings that must be answered.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, SipError> {
        loop {
            match self.next_event()? {
                Some(FrameEvent::Message(message)) => return Ok(Some(message)),
                Some(FrameEvent::Ping | FrameEvent::Pong) => continue,
                None => return Ok(None),
            }
        }
    }

    fn step(&mut self) -> Result<Option<FrameEvent>, SipError> {
        loop {
            let data = self.buf.get(self.start..).unwrap_or_default();
            if self.pending.is_none() {
                match data {
                    [] => return Ok(None),
                    [b'\r', b'\n', ..] if self.client => {
                        self.consume(2);
                        return Ok(Some(FrameEvent::Pong));
                    }
                    // A prefix of a ping: wait for the rest.
                    [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Ok(None),
                    [b'\r', b'\n', b'\r', b'\n', ..] => {
                        self.consume(4);
                        return Ok(Some(FrameEvent::Ping));
                    }
                    [b'\r', b'\n', ..] => {
                        self.consume(2);
                        return Ok(Some(FrameEvent::Pong));
                    }
                    // Stray CR or LF before a start line: ignored (RFC 3261 §7.5).
                    [b'\r' | b'\n', ..] => {
                        self.consume(1);
                        continue;
                    }
                    _ => {}
                }
                match find_blank_line(data, self.scan) {
                    Some((head_end, body_start)) => {
                        if body_start > self.max_header {
                            return Err(SipError::TooLarge {
                                size: body_start,
                                limit: self.max_header,
                            });
                        }
                        let head = data.get(..head_end).unwrap_or_default();
                        let length = content_length(head).inspect_err(|_| {
                            self.failed_head = Some(head.to_vec());
                        })?;
                        let total = body_start.saturating_add(length);
                        if total > self.max_message {
                            self.failed_head = Some(head.to_vec());
                            return Err(SipError::TooLarge {
                                size: total,
                                limit: self.max_message,
                            });
                        }
                        self.pending = Some(total);
                    }
                    None => {
                        if data.len() > self.max_header {
                            return Err(SipError::TooLarge {
                                size: data.len(),
                                limit: self.max_header,
                            });
                        }
                        // The blank line may straddle the end: re-check the last bytes.
                        self.scan = data.len().saturating_sub(2);
                        return Ok(None);
                    }
                }
            }
            let total = self.pending.unwrap_or_default();
            return match data.get(..total) {
                Some(message) => {
                    let message = message.to_vec();
                    self.consume(total);
                    Ok(Some(FrameEvent::Message(message)))
                }
                None => Ok(None),
            };
        }
    }

    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        self.scan = 0;
        self.pending = None;
    }

    fn compact(&mut self) {
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Finds the blank line ending a header section, starting the search at `from`: returns (end
/// of the last header line, start of the body). Accepts CRLF or bare LF line ends.
fn find_blank_line(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(off) = data.get(i..)?.iter().position(|b| *b == b'\n') {
        let nl = i + off;
        match (data.get(nl + 1), data.get(nl + 2)) {
            (Some(b'\n'), _) => return Some((nl + 1, nl + 2)),
            (Some(b'\r'), Some(b'\n')) => return Some((nl + 1, nl + 3)),
            (None, _) | (Some(b'\r'), None) => return None,
            _ => i = nl + 1,
        }
    }
    None
}

/// The Content-Length of a header section (required; several must agree).
fn content_length(head: &[u8]) -> Result<usize, SipError> {
    let mut found: Option<usize> = None;
    for (name, value) in scan_headers(head) {
        if name != "Content-Length" {
            continue;
        }
        let valid =
            !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
        let len = value
            .parse::<usize>()
            .ok()
            .filter(|_| valid)
            .ok_or_else(|| SipError::malformed("bad Content-Length"))?;
        if found.is_some_and(|f| f != len) {
            return Err(SipError::malformed("conflicting Content-Length headers"));
        }
        found = Some(len);
    }
    found.ok_or(SipError::MissingContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_line() {
        assert_eq!(find_blank_line(b"A\r\nB\r\n\r\nx", 0), Some((6, 8)));
        assert_eq!(find_blank_line(b"A\nB\n\nx", 0), Some((4, 5)));
        assert_eq!(find_blank_line(b"A\r\nB\r\n\r", 0), None);
        assert_eq!(find_blank_line(b"A\r\nB\r\n", 0), None);
    }

    #[test]
    fn lengths() {
        assert_eq!(content_length(b"X\r\nl: 5\r\n"), Ok(5));
        assert_eq!(
            content_length(b"X\r\nContent-Length: 5\r\ncontent-length:5\r\n"),
            Ok(5)
        );
        assert!(content_length(b"X\r\nContent-Length: 5\r\nl: 6\r\n").is_err());
        assert!(content_length(b"X\r\nContent-Length: -1\r\n").is_err());
        assert!(content_length(b"X\r\nContent-Length: 99999999999\r\n").is_err());
        assert_eq!(
            content_length(b"X\r\nVia: x\r\n"),
            Err(SipError::MissingContentLength)
        );
    }
}
