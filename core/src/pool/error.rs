//! [`FrameError`]: everything that can be wrong with bytes received on a pool link, or with a
//! frame we were asked to encode. Every decoding failure is one of these typed errors, never a
//! panic.

/// A pool frame could not be decoded (or encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the configured maximum frame size.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// Announced (or, when encoding, actual) length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A length prefix of 0: not even a type byte.
    #[error("empty frame (length 0)")]
    Empty,
    /// A frame type this version does not know.
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// A frame type reserved for a later protocol increment (room commands, room events,
    /// location updates, goodbye); not accepted yet.
    #[error("frame type {0:#04x} is reserved and not supported by this node yet")]
    Reserved(u8),
    /// The handshake does not start with the pool magic.
    #[error("bad handshake magic (not a palaver pool peer)")]
    BadMagic,
    /// The peer speaks a protocol version we do not.
    #[error("unsupported pool protocol version {0}")]
    UnsupportedVersion(u16),
    /// The payload ended inside a field.
    #[error("truncated frame: {0} missing")]
    Truncated(&'static str),
    /// Bytes were left after the last field.
    #[error("{0} unexpected bytes after the payload")]
    Trailing(usize),
    /// A string is longer than the protocol allows.
    #[error("{field}: string of {len} bytes exceeds {max}")]
    StringTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string is not UTF-8.
    #[error("{0}: invalid UTF-8")]
    BadUtf8(&'static str),
    /// A list has more entries than the protocol allows.
    #[error("{field}: {count} entries exceed {max}")]
    TooMany {
        /// Which list.
        field: &'static str,
        /// Announced count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An enumerated field holds a value this version does not define.
    #[error("{field}: invalid value {value}")]
    BadValue {
        /// Which field.
        field: &'static str,
        /// The value received.
        value: u64,
    },
}
