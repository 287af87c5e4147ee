//! palaver-dialects: sans-IO protocol codecs.
pub mod xmpp;
