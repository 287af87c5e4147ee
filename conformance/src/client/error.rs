//! [`ClientError`]: why a client step failed, with an [`ErrorKind`] that the load report counts
//! errors by (connect, TLS, authentication, bind, join, stream error, timeout, …).

use std::fmt;

/// The kind of a failure, as counted in the load report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// TCP connect failed (refused, unreachable, no free source port…).
    Connect,
    /// STARTTLS refused or unavailable, or the TLS handshake failed.
    Tls,
    /// No usable SASL mechanism, `<failure/>`, or a bad server signature.
    Auth,
    /// Resource binding (or the legacy session) failed.
    Bind,
    /// The room refused the join presence, or the instant-room configuration.
    Join,
    /// The server sent `<stream:error/>`.
    StreamError,
    /// A step got no answer in time.
    Timeout,
    /// The server closed the stream or the connection, or a read/write failed.
    Closed,
    /// The server sent something we could not parse or did not expect.
    Protocol,
    /// A `<message type='error'/>` came back for one of our posts.
    MessageError,
    /// History mode: a MAM page held fewer results than asked for (or the archive is empty).
    HistoryShort,
    /// History mode: a MAM query was answered with an error (or without `<fin/>`).
    MamError,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Auth,
        ErrorKind::Bind,
        ErrorKind::Join,
        ErrorKind::StreamError,
        ErrorKind::Timeout,
        ErrorKind::Closed,
        ErrorKind::Protocol,
        ErrorKind::MessageError,
        ErrorKind::HistoryShort,
        ErrorKind::MamError,
    ];

    /// The kind's name in the report (`snake_case`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Auth => "auth",
            ErrorKind::Bind => "bind",
            ErrorKind::Join => "join",
            ErrorKind::StreamError => "stream_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::Protocol => "protocol",
            ErrorKind::MessageError => "message_error",
            ErrorKind::HistoryShort => "history_short",
            ErrorKind::MamError => "mam_error",
        }
    }

    /// Kinds only history mode produces (left out of the other modes' reports).
    pub fn history_only(self) -> bool {
        matches!(self, ErrorKind::HistoryShort | ErrorKind::MamError)
    }

    /// Position in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        ErrorKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed client step: its kind and a human-readable description.
#[derive(Debug, Clone)]
pub struct ClientError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ClientError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ClientError {
        ClientError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ClientError {}
