//! palaver-dialects: sans-IO protocol codecs (XMPP, SIP, the SIP pager room dialect, XCCOS).
pub mod pager;
pub mod sip;
pub mod xccos;
pub mod xmpp;
