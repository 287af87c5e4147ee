//! XMPP codec: stream reader, elements, SASL.
pub mod datetime;
pub mod jid;
pub mod ns;
pub mod element;
pub mod escape;
mod framer;
mod parse;
pub mod reader;
pub mod sasl;
pub mod muc;
