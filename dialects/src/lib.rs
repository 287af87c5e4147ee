//! palaver-dialects: sans-IO protocol codecs (XMPP, SIP, the SIP pager room dialect).
pub mod pager;
pub mod sip;
pub mod xmpp;
