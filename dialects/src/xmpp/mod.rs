//! XMPP codec: stream reader, elements, SASL.
pub mod datetime;
pub mod element;
pub mod escape;
mod framer;
pub mod jid;
pub mod muc;
pub mod ns;
mod parse;
pub mod reader;
pub mod sasl;
