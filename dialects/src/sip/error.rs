//! The error type of the SIP codec and the status code each error answers with (RFC 3261 §21).

use thiserror::Error;

/// Why a SIP message (or a stream of them) could not be decoded.
///
/// [`SipError::status`] gives the response a server sends for it, when the message is a request
/// that can still be answered (see [`crate::sip::stateless`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SipError {
    /// The message (or its header section) is bigger than the configured limit: 513.
    #[error("message too large: {size} bytes, limit {limit}")]
    TooLarge {
        /// Bytes seen (for a stream, at least this many).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The start line names a SIP version other than 2.0: 505.
    #[error("unsupported SIP version {0:?}")]
    Version(String),
    /// A well-formed request whose method this codec does not know: 405 (with `Allow`).
    #[error("unknown method {0:?}")]
    UnknownMethod(String),
    /// A mandatory header (Via, From, To, Call-ID, CSeq) is absent: 400.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A stream-transport message without Content-Length (RFC 3261 §18.3): 400, then close.
    #[error("Content-Length is required on stream transports")]
    MissingContentLength,
    /// Anything else that is not valid SIP: 400. The text says what was wrong (never echoes
    /// more than a short excerpt of peer bytes).
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl SipError {
    /// Shorthand for [`SipError::Malformed`].
    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        SipError::Malformed(what.into())
    }

    /// The response status code and reason phrase this error maps to.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            SipError::TooLarge { .. } => (513, "Message Too Large"),
            SipError::Version(_) => (505, "Version Not Supported"),
            SipError::UnknownMethod(_) => (405, "Method Not Allowed"),
            SipError::MissingHeader(_)
            | SipError::MissingContentLength
            | SipError::Malformed(_) => (400, "Bad Request"),
        }
    }

    /// The status code alone.
    pub fn status_code(&self) -> u16 {
        self.status().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(SipError::TooLarge { size: 2, limit: 1 }.status_code(), 513);
        assert_eq!(SipError::Version("SIP/3.0".into()).status_code(), 505);
        assert_eq!(SipError::UnknownMethod("FOO".into()).status_code(), 405);
        assert_eq!(SipError::MissingHeader("Via").status_code(), 400);
        assert_eq!(SipError::MissingContentLength.status_code(), 400);
        assert_eq!(SipError::malformed("x").status(), (400, "Bad Request"));
    }
}
