//! The SIP pager dialect: `#command` parsing for room URIs (Kamailio imc compatible) and the
//! RFC 4575 conference-info documents.

pub mod command;
pub mod conference_info;
pub mod text;
