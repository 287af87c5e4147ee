//! What a room tells its occupants: `RoomEvent`s, shared by every recipient behind one `Arc`,
//! with a per-dialect encode cache so each event is serialized once per wire variant, and the
//! `EventSink` trait through which sessions receive them.

use super::commands::ClientProtocol;
use crate::model::{Affiliation, Role, StoredMessage, UserId};
use bytes::Bytes;
use std::sync::{Arc, OnceLock};

/// Number of encoded variants an event can cache (dialect × per-recipient view, and the pool).
pub const ENCODE_SLOTS: usize = 7;

/// The cache slot of an event's encoding for other pool nodes (the same for every recipient).
pub const POOL_SLOT: usize = 4;

/// The cache slots of an event's XCCOS encoding (a `<grpchat>`): for recipients who see
/// occupants' real addresses, and for those who don't.
pub const XCCOS_SLOTS: [usize; 2] = [5, 6];

/// XEP-0045 status codes carried by presence and message events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StatusCodes(u32);

impl StatusCodes {
    pub const NON_ANONYMOUS: u32 = 1 << 0; // 100
    pub const SELF: u32 = 1 << 1; // 110
    pub const LOGGED: u32 = 1 << 2; // 170
    pub const UNLOGGED: u32 = 1 << 3; // 171
    pub const NOW_NON_ANONYMOUS: u32 = 1 << 4; // 172
    pub const NOW_SEMI_ANONYMOUS: u32 = 1 << 5; // 173
    pub const CREATED: u32 = 1 << 6; // 201
    pub const NICK_ASSIGNED: u32 = 1 << 7; // 210
    pub const BANNED: u32 = 1 << 8; // 301
    pub const NICK_CHANGED: u32 = 1 << 9; // 303
    pub const KICKED: u32 = 1 << 10; // 307
    pub const AFFILIATION_CHANGED: u32 = 1 << 11; // 321
    pub const MEMBERS_ONLY: u32 = 1 << 12; // 322
    pub const SHUTDOWN: u32 = 1 << 13; // 332
    pub const CONFIG_CHANGED: u32 = 1 << 14; // 104

    const TABLE: [(u32, u16); 15] = [
        (Self::NON_ANONYMOUS, 100),
        (Self::CONFIG_CHANGED, 104),
        (Self::SELF, 110),
        (Self::LOGGED, 170),
        (Self::UNLOGGED, 171),
        (Self::NOW_NON_ANONYMOUS, 172),
        (Self::NOW_SEMI_ANONYMOUS, 173),
        (Self::CREATED, 201),
        (Self::NICK_ASSIGNED, 210),
        (Self::BANNED, 301),
        (Self::NICK_CHANGED, 303),
        (Self::KICKED, 307),
        (Self::AFFILIATION_CHANGED, 321),
        (Self::MEMBERS_ONLY, 322),
        (Self::SHUTDOWN, 332),
    ];

    pub fn empty() -> Self {
        StatusCodes(0)
    }
    pub fn with(self, flag: u32) -> Self {
        StatusCodes(self.0 | flag)
    }
    pub fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The numeric codes, ascending.
    pub fn codes(self) -> impl Iterator<Item = u16> {
        Self::TABLE
            .into_iter()
            .filter(move |(f, _)| self.0 & f != 0)
            .map(|(_, c)| c)
    }
}

/// Whether an occupant is present or leaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PresenceKind {
    Available,
    Unavailable,
}

/// An occupant's presence as the room shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OccupantPresence {
    pub nick: String,
    pub user: UserId,
    /// The client address part after the bare user (XMPP resource, SIP contact), for whois.
    pub resource: String,
    pub role: Role,
    pub affiliation: Affiliation,
    /// The protocol of the occupant's first session.
    pub protocol: ClientProtocol,
    pub occupant_id: String,
    pub kind: PresenceKind,
    /// Dialect-specific presence payload given by the occupant's client (e.g. XMPP `<show/>`,
    /// `<status/>`, caps), relayed opaquely.
    pub payload: Option<Arc<str>>,
    pub codes: StatusCodes,
    /// New nick (with status 303).
    pub new_nick: Option<String>,
    /// Who kicked/banned/changed it, and why.
    pub actor: Option<String>,
    pub reason: Option<String>,
}

/// A private message between two occupants of a room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrivateMessage {
    pub from_nick: String,
    pub from_user: UserId,
    pub from_occupant_id: String,
    pub body: String,
    pub extra: Option<String>,
    pub origin_id: String,
}

/// Everything a room can send to an occupant session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RoomEventKind {
    Presence(OccupantPresence),
    /// A groupchat message (live, or from history when `history` is true).
    Message {
        message: Arc<StoredMessage>,
        history: bool,
    },
    Subject {
        nick: String,
        subject: String,
    },
    Private(PrivateMessage),
    /// Room configuration changed (status codes 104/170/171/172/173).
    ConfigChanged {
        codes: StatusCodes,
    },
    /// The room was destroyed; the occupant is out.
    Destroyed {
        reason: String,
        alternate: Option<String>,
    },
    /// The room confirms a request whose answer is just "done" (e.g. subject set).
    Notice {
        text: String,
    },
}

/// One event: the room it comes from, what happened, and the encode cache.
#[derive(Debug)]
pub struct RoomEvent {
    /// Room local name (e.g. `lobby`).
    pub room: Arc<str>,
    pub kind: RoomEventKind,
    cache: [OnceLock<Bytes>; ENCODE_SLOTS],
}

impl RoomEvent {
    pub fn new(room: Arc<str>, kind: RoomEventKind) -> Arc<RoomEvent> {
        Arc::new(RoomEvent {
            room,
            kind,
            cache: Default::default(),
        })
    }
    /// The encoded form in `slot`, computed by `encode` by the first recipient that needs it and
    /// shared by all others. A slot out of range is encoded each time (never panics).
    pub fn encoded(&self, slot: usize, encode: impl FnOnce(&RoomEvent) -> Bytes) -> Bytes {
        match self.cache.get(slot) {
            Some(cell) => cell.get_or_init(|| encode(self)).clone(),
            None => encode(self),
        }
    }
}

/// Per-recipient facts about one delivery (computed by the room, no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryFlags {
    /// The event is about the recipient's own occupant (XEP-0045 status 110).
    pub is_self: bool,
    /// The recipient may see occupants' real addresses (moderator, or non-anonymous room).
    pub sees_real_address: bool,
}

impl DeliveryFlags {
    /// As one byte for the pool wire (bit 0 self, bit 1 real address).
    pub fn to_bits(self) -> u8 {
        u8::from(self.is_self) | (u8::from(self.sees_real_address) << 1)
    }
    /// From [`DeliveryFlags::to_bits`] (other bits ignored).
    pub fn from_bits(bits: u8) -> DeliveryFlags {
        DeliveryFlags {
            is_self: bits & 1 != 0,
            sees_real_address: bits & 2 != 0,
        }
    }
}

/// The sink was full or closed: the session is too slow or gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkClosed;

/// Where a room puts events for one client session. Implementations must not block or await:
/// a full queue returns `SinkClosed` and the room treats the occupant as gone.
pub trait EventSink: Send + Sync + 'static {
    fn deliver(&self, event: &Arc<RoomEvent>, flags: DeliveryFlags) -> Result<(), SinkClosed>;
}

impl std::fmt::Debug for dyn EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}
