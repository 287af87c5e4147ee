//! SIP codec (RFC 3261): message parsing over rsip with bounds, stream framing, responses,
//! digest authentication (RFC 8760).
