//! The frames of the pool protocol (version 1) and their field layout. See
//! `docs/pool-protocol.md`; [`super::codec`] turns them into bytes and back.

use super::membership::{MemberState, Role};
use bytes::Bytes;

/// First bytes of every Hello and HelloAck payload.
pub const MAGIC: [u8; 4] = *b"PLVR";
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Frame type numbers (the byte after the length prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameType {
    /// Opens a link (dialer → listener).
    Hello = 0x01,
    /// Accepts a Hello (listener → dialer).
    HelloAck = 0x02,
    /// Refuses a Hello, with a reason; the link is closed after it.
    Refuse = 0x03,
    /// Reserved: orderly goodbye before a graceful stop.
    Goodbye = 0x04,
    /// Liveness and a summary of the sender's view.
    Heartbeat = 0x10,
    /// The sender's full membership view.
    MembershipView = 0x11,
    /// An administrative request (pool status; drain later).
    AdminRequest = 0x20,
    /// The answer to an [`FrameType::AdminRequest`].
    AdminResponse = 0x21,
    /// A client command forwarded to the room's home node.
    RoomRequest = 0x30,
    /// A room event sent to a node with local occupants, with the list of recipients.
    RoomEvent = 0x31,
    /// Reserved: a SIP registration / user location update.
    LocationUpdate = 0x32,
    /// Reserved: room home hand-over (drain, rebalancing).
    RoomMove = 0x33,
    /// The home node's answer to a [`FrameType::RoomRequest`].
    RoomReply = 0x34,
    /// A stanza for a user's client sessions on the receiving node (one-to-one messages,
    /// invitations, declines), already encoded for the client.
    UserStanza = 0x35,
    /// A SIP request for a user whose binding may live on the receiving node, to proxy
    /// there (see `docs/pool-protocol.md`).
    SipRelay = 0x36,
    /// The answer to a [`FrameType::SipRelay`]: the final SIP response, or "no binding here".
    SipRelayReply = 0x37,
}

impl FrameType {
    /// Whether `ty` is reserved for a later increment (known number, not accepted yet).
    pub fn is_reserved(ty: u8) -> bool {
        [0x04, 0x32, 0x33].contains(&ty)
    }
}

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A member-to-member link: heartbeats and views (and, later, room traffic).
    Peer = 1,
    /// An administrative session (`palaver pool status`): requests and responses only.
    Admin = 2,
}

/// The first frame on every link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version of the sender (after [`MAGIC`]).
    pub version: u16,
    /// The pool the sender belongs to.
    pub pool_id: String,
    /// The sender's node id; must match its certificate name.
    pub node_id: String,
    /// Peer link or admin session.
    pub kind: LinkKind,
    /// Random per process start, so a restart is recognizable.
    pub incarnation: u64,
}

/// The listener's acceptance of a Hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloAck {
    /// Protocol version chosen for the link.
    pub version: u16,
    /// The listener's pool.
    pub pool_id: String,
    /// The listener's node id.
    pub node_id: String,
    /// The listener's incarnation.
    pub incarnation: u64,
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseCode {
    /// The Hello names another pool.
    WrongPool = 1,
    /// The node id is not a member of the topology.
    UnknownNode = 2,
    /// The certificate does not carry the node's name.
    CertMismatch = 3,
    /// Protocol version not supported.
    UnsupportedVersion = 4,
    /// The first frame was not a valid Hello.
    BadHandshake = 5,
    /// Anything else (see the reason text).
    Other = 255,
}

impl RefuseCode {
    /// From a wire value; unknown values read as [`RefuseCode::Other`] (forward compatible).
    pub fn from_u8(v: u8) -> RefuseCode {
        match v {
            1 => RefuseCode::WrongPool,
            2 => RefuseCode::UnknownNode,
            3 => RefuseCode::CertMismatch,
            4 => RefuseCode::UnsupportedVersion,
            5 => RefuseCode::BadHandshake,
            _ => RefuseCode::Other,
        }
    }

    /// Short name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseCode::WrongPool => "wrong-pool",
            RefuseCode::UnknownNode => "unknown-node",
            RefuseCode::CertMismatch => "cert-mismatch",
            RefuseCode::UnsupportedVersion => "unsupported-version",
            RefuseCode::BadHandshake => "bad-handshake",
            RefuseCode::Other => "other",
        }
    }
}

/// A refusal, sent instead of HelloAck (or on a protocol error) before closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refuse {
    /// Machine-readable reason.
    pub code: RefuseCode,
    /// Human-readable reason (logged by the other side).
    pub reason: String,
}

/// A short summary of the sender's view, carried by every heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViewSummary {
    /// Increases at every change of the sender's view.
    pub version: u64,
    /// Members the sender sees live, itself included.
    pub live: u16,
    /// Whether the sender sees a majority of the configured active members.
    pub majority: bool,
}

/// Sent every `heartbeat_ms` on every peer link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The sender.
    pub node: String,
    /// The sender's incarnation.
    pub incarnation: u64,
    /// Increases by one per heartbeat of this incarnation.
    pub seq: u64,
    /// The sender's view in brief.
    pub view: ViewSummary,
    /// Users with a client session on the sender (XMPP or SIP).
    pub users: u32,
    /// Rooms the sender is home for.
    pub rooms: u32,
    /// The sender is draining (`pool drain`): it homes no rooms and sends its clients away.
    pub draining: bool,
}

/// One member as seen by a node (in views and status reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Node id.
    pub id: String,
    /// Its 8011 address from the topology.
    pub address: String,
    /// Configured role.
    pub role: Role,
    /// Role after standby promotion.
    pub effective: Role,
    /// Believed state.
    pub state: MemberState,
    /// Milliseconds since its last heartbeat (0 for the reporting node; `None`: never seen).
    pub last_seen_ms: Option<u64>,
    /// Its incarnation as last seen (0: unknown).
    pub incarnation: u64,
    /// Links established with it since the reporting node started.
    pub links: u32,
    /// The last reason a link with it failed or was refused (empty: none).
    pub last_error: String,
    /// Users with a client session on it (as of its last heartbeat).
    pub users: u32,
    /// Rooms it is home for (as of its last heartbeat).
    pub rooms: u32,
}

/// The sender's whole view, sent when a link opens and whenever the view changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipView {
    /// The sender.
    pub node: String,
    /// The view's version (as in [`ViewSummary::version`]).
    pub version: u64,
    /// Every member of the topology.
    pub members: Vec<MemberInfo>,
}

/// Administrative requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRequest {
    /// Report the pool as this node sees it.
    Status,
    /// The receiving node starts draining: its rooms move to other members and its clients
    /// are asked to reconnect elsewhere. Answered with the status.
    Drain,
    /// The receiving node stops draining. Answered with the status.
    Undrain,
}

/// A node's report for `palaver pool status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The reporting node.
    pub node: String,
    /// Its pool.
    pub pool: String,
    /// Whether it sees a majority of the configured active members.
    pub majority: bool,
    /// Every member of the topology, the reporting node included.
    pub members: Vec<MemberInfo>,
}

/// Administrative answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminResponse {
    /// Answer to [`AdminRequest::Status`].
    Status(StatusReport),
    /// The request failed.
    Error(String),
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`HelloAck`].
    HelloAck(HelloAck),
    /// See [`Refuse`].
    Refuse(Refuse),
    /// See [`Heartbeat`].
    Heartbeat(Heartbeat),
    /// See [`MembershipView`].
    MembershipView(MembershipView),
    /// An admin request with the id its response will carry.
    AdminRequest {
        /// Chosen by the requester.
        id: u32,
        /// What is asked.
        request: AdminRequest,
    },
    /// The response to the admin request `id`.
    AdminResponse {
        /// The request's id.
        id: u32,
        /// The answer.
        response: AdminResponse,
    },
    /// A room command forwarded to the room's home. The body is the command in the engine's
    /// room-traffic encoding (`palaver_core::engine` — opaque to the link layer).
    RoomRequest {
        /// Chosen by the sender; the reply carries it.
        id: u64,
        /// Room local name.
        room: String,
        /// The encoded command.
        body: Bytes,
    },
    /// The home's answer to the request `id`.
    RoomReply {
        /// The request's id.
        id: u64,
        /// The encoded result.
        body: Bytes,
    },
    /// A stanza for the sessions of `user` (bare address) on the receiving node: every
    /// available session, or only the one with `resource` when it is not empty.
    UserStanza {
        /// Bare user address (`alice@example.org`).
        user: String,
        /// Resource of one session; empty for all of them.
        resource: String,
        /// The stanza as the client gets it.
        stanza: Bytes,
    },
    /// A SIP request (out of dialog, non-INVITE) for `user`, to proxy to the user's bindings
    /// on the receiving node. The request is as the sending node received it (its Vias
    /// stamped with `received`/`rport`); the sender already authenticated it.
    SipRelay {
        /// Chosen by the sender; the reply carries it.
        id: u64,
        /// Bare user address (`bob@example.org`) whose bindings are wanted.
        user: String,
        /// The serialized SIP request.
        request: Bytes,
    },
    /// The answer to the relay `id`: `found` is false when the receiving node holds no live
    /// binding of the user (then `response` is empty); otherwise `response` is the final
    /// response to relay to the requester, the receiving node's own Via already removed.
    SipRelayReply {
        /// The relay's id.
        id: u64,
        /// Whether the node had a binding and `response` is a response.
        found: bool,
        /// The serialized SIP response (empty when not found).
        response: Bytes,
    },
    /// One room event for several client sessions of the receiving node: encoded once, with
    /// each recipient's client id and delivery flags.
    RoomEvent {
        /// (client id, delivery flags) of every recipient on the receiving node.
        recipients: Vec<(u64, u8)>,
        /// The encoded event.
        body: Bytes,
    },
}

impl Frame {
    /// The frame's type number.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::Hello(_) => FrameType::Hello,
            Frame::HelloAck(_) => FrameType::HelloAck,
            Frame::Refuse(_) => FrameType::Refuse,
            Frame::Heartbeat(_) => FrameType::Heartbeat,
            Frame::MembershipView(_) => FrameType::MembershipView,
            Frame::AdminRequest { .. } => FrameType::AdminRequest,
            Frame::AdminResponse { .. } => FrameType::AdminResponse,
            Frame::RoomRequest { .. } => FrameType::RoomRequest,
            Frame::RoomReply { .. } => FrameType::RoomReply,
            Frame::RoomEvent { .. } => FrameType::RoomEvent,
            Frame::UserStanza { .. } => FrameType::UserStanza,
            Frame::SipRelay { .. } => FrameType::SipRelay,
            Frame::SipRelayReply { .. } => FrameType::SipRelayReply,
        }
    }
}
