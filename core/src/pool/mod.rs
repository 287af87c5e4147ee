//! The pool (TCP 8011), without any I/O: the wire protocol ([`frame`], [`codec`]), the
//! membership rules (roles, states, standby promotion, the majority guard — [`membership`])
//! and room-home placement by rendezvous hashing ([`placement`]). The gateway owns the
//! sockets, TLS and timers; everything here is pure and unit-tested. The protocol is described
//! in `docs/pool-protocol.md`.

pub mod codec;
pub mod error;
pub mod frame;
pub mod membership;
pub mod placement;
mod wire;

#[cfg(test)]
mod proptests;

pub use codec::{encode, FrameDecoder, DEFAULT_MAX_FRAME, HEADER_LEN};
pub use error::FrameError;
pub use frame::{
    AdminRequest, AdminResponse, Frame, FrameType, Heartbeat, Hello, HelloAck, LinkKind,
    MemberInfo, MembershipView, Refuse, RefuseCode, StatusReport, ViewSummary, MAGIC,
    PROTOCOL_VERSION,
};
pub use membership::{cert_name, effective_roles, has_majority, valid_id, MemberState, Role};
pub use placement::{home, score};
