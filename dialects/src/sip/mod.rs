//! SIP codec (RFC 3261): message parsing over rsip with bounds, stream framing, responses,
//! digest authentication (RFC 8760).
//!
//! Everything here is sans-IO: bytes and the current time go in, typed values and bytes come
//! out. Entry points:
//!
//! * [`message::parse`] → [`SipMessage`] (typed accessors over rsip's request/response);
//! * [`framing::StreamFramer`] for TCP/TLS (Content-Length framing, RFC 5626 keep-alives);
//! * [`response::response_to`] / [`SipResponse`], [`request::RequestBuilder`] and
//!   [`stateless::bad_request_response`] for writing;
//! * [`digest::DigestServer`] for REGISTER authentication (SHA-256 and MD5);
//! * [`transaction`] for non-INVITE client timers and server retransmission handling;
//! * [`forward`] for proxying: a parsed request re-written for its next hop, a response
//!   without our Via.
pub mod addr;
pub mod digest;
pub mod digest_header;
pub mod error;
pub mod forward;
pub mod framing;
pub mod headers;
pub mod message;
pub mod request;
pub mod response;
pub mod stateless;
pub mod syntax;
pub mod transaction;
pub mod typed;
pub mod uri;
pub mod via;

pub use addr::NameAddr;
pub use error::SipError;
pub use forward::{forward_request, strip_top_via, Forward};
pub use framing::{FrameEvent, StreamFramer};
pub use message::{is_keepalive, parse, SipMessage};
pub use request::{OutgoingRequest, RequestBuilder};
pub use response::{response_to, SipResponse};
pub use stateless::{bad_request_response, error_response, stateless_response};
pub use syntax::Params;
pub use typed::{CSeq, Event, MediaType, Method, SubscriptionState};
pub use uri::SipUri;
pub use via::Via;
