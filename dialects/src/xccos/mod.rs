//! The MS-XCCOSIP dialect (what Lync/Skype for Business and pidgin-sipe speak to a Persistent
//! Chat server), sans-IO: the `<xccos>` envelopes carried in the bodies of in-dialog SIP INFO
//! requests. [`parse`] reads a client's envelope into typed commands and room messages under
//! the same limits as XMPP (size, depth, attributes; no DTD, no entities); [`encode`] builds
//! the server's replies, notices and room messages; [`addr`] maps rooms to `ma-chan://` and
//! categories to `ma-cat://` URIs; [`resp`] holds the reply codes and their mapping from room
//! errors. See docs/xccos.md for what palaver implements.

pub mod addr;
pub mod encode;
pub mod parse;
pub mod resp;

/// The namespace of every envelope.
pub const NS: &str = "urn:parlano:xml:ns:xccos";

/// The SIP body type of envelopes (they are XML, but sent as text/plain).
pub const CONTENT_TYPE: &str = "text/plain";

pub use addr::{category_uri, channel_uri, parse_channel_uri, ChanId};
pub use parse::{parse_envelope, Command, CommandKind, Envelope, Grpchat, Item, XccosError};
pub use resp::Resp;
