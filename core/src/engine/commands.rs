//! What sessions ask a room to do (`RoomCommand`) and how the room answers (`RoomError`,
//! `JoinRequest`, `HistoryRequest`, …). Protocol-neutral: dialects translate to and from these.

use super::events::EventSink;
use crate::model::{
    Affiliation, AffiliationRecord, HistoryQuery, Millis, Role, RoomConfig, StoredMessage, UserId,
};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A pool-wide unique id of one client session (one XMPP full JID, one SIP contact). In a pool
/// the top 16 bits are the origin number of the node the session is connected to
/// ([`client_origin`]); outside a pool they are 0.
pub type ClientId = u64;

/// Bits below a client id's origin number.
pub const CLIENT_ORIGIN_SHIFT: u32 = 48;

/// The origin number (node) of a client id.
pub fn client_origin(client: ClientId) -> u16 {
    (client >> CLIENT_ORIGIN_SHIFT) as u16
}

/// The wire protocol a client session speaks, shown in rosters (e.g. the SIP `#members` list).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum ClientProtocol {
    /// XMPP c2s session.
    #[default]
    Xmpp,
    /// SIP (pager-mode MESSAGE) session.
    Sip,
}

/// A client session as a room sees it.
#[derive(Clone)]
pub struct ClientRef {
    pub id: ClientId,
    pub user: UserId,
    /// The part of the address after the bare user (XMPP resource), shown in whois.
    pub resource: Arc<str>,
    /// The protocol the session speaks.
    pub protocol: ClientProtocol,
    pub sink: Arc<dyn EventSink>,
}

impl std::fmt::Debug for ClientRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ClientRef({} {}/{} {:?})",
            self.id, self.user, self.resource, self.protocol
        )
    }
}

/// How much history a joining client wants (XEP-0045 §7.2.13). All limits combine.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryRequest {
    pub max_stanzas: Option<u32>,
    pub max_chars: Option<u32>,
    pub seconds: Option<u32>,
    pub since: Option<Millis>,
}

/// A join (or a presence update when the client is already in the room under that nick).
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub client: ClientRef,
    pub nick: String,
    pub password: Option<String>,
    pub history: HistoryRequest,
    /// Dialect presence payload to relay (show/status/caps).
    pub payload: Option<Arc<str>>,
    /// Create the room if it does not exist (XMPP join does; SIP `#join` does not).
    pub create: bool,
    /// For a room created by this join: true = instant (unlocked at once, XMPP clients that send
    /// no config and SIP), false = reserved (locked until the owner submits the config form).
    pub instant: bool,
}

/// Why a request was refused. Dialects map these to their errors (XMPP stanza errors, SIP 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum RoomError {
    #[error("no such room")]
    ItemNotFound,
    #[error("you are banned from this room")]
    Forbidden,
    #[error("this room is members-only")]
    RegistrationRequired,
    #[error("a password is required")]
    NotAuthorized,
    #[error("that nickname is in use")]
    Conflict,
    #[error("the room is full or not available right now")]
    ServiceUnavailable,
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("you are not in this room")]
    NotAcceptable,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("too many requests")]
    ResourceConstraint,
    #[error("internal error")]
    Internal,
    #[error("the room is locked until its owner configures it")]
    Locked,
    #[error("no occupant with that nickname")]
    RecipientUnavailable,
}

pub type RoomReply<T> = oneshot::Sender<Result<T, RoomError>>;

/// What a client can do with a room, sent to the room's task.
#[derive(Debug)]
pub enum RoomCommand {
    /// Enter (or update presence). Events (other occupants, self presence, history, subject)
    /// arrive through the sink; the reply says whether the join succeeded.
    Join {
        req: JoinRequest,
        reply: RoomReply<()>,
    },
    /// Leave the room (all or one session of an occupant).
    Leave {
        client: ClientId,
        status: Option<Arc<str>>,
    },
    /// Post a groupchat message; the reply (after the store commit) carries the stored message.
    Post {
        client: ClientId,
        body: String,
        extra: Option<String>,
        origin_id: String,
        reply: RoomReply<Arc<StoredMessage>>,
    },
    ChangeNick {
        client: ClientId,
        nick: String,
        reply: RoomReply<()>,
    },
    SetSubject {
        client: ClientId,
        subject: String,
        reply: RoomReply<()>,
    },
    Private {
        client: ClientId,
        to_nick: String,
        body: String,
        extra: Option<String>,
        origin_id: String,
        reply: RoomReply<()>,
    },
    SetRole {
        client: ClientId,
        nick: String,
        role: Role,
        reason: Option<String>,
        reply: RoomReply<()>,
    },
    SetAffiliation {
        client: ClientId,
        /// Actor when not a present occupant (admin CLI / XMPP admin not in room).
        actor_user: UserId,
        user: UserId,
        affiliation: Affiliation,
        reason: Option<String>,
        reply: RoomReply<()>,
    },
    /// Users with an affiliation (admins see all lists).
    GetAffiliations {
        actor_user: UserId,
        affiliation: Affiliation,
        reply: RoomReply<Vec<AffiliationRecord>>,
    },
    /// Occupants with a role (moderators only).
    GetRoles {
        actor_user: UserId,
        role: Role,
        reply: RoomReply<Vec<RosterEntry>>,
    },
    /// Every present occupant, sorted by nick. Allowed to a user who is in the room, or who
    /// could enter it (not an outcast, a member of a members-only room): `Forbidden` /
    /// `RegistrationRequired` otherwise.
    Occupants {
        actor_user: UserId,
        reply: RoomReply<Vec<RosterEntry>>,
    },
    /// Registers (or replaces, same `watcher` id) an observer that is not an occupant but gets
    /// the room's presence, subject and destruction events (RFC 4575 conference state). Same
    /// access rule as `Occupants`; the reply is the state to start from.
    Watch {
        watcher: ClientId,
        user: UserId,
        sink: Arc<dyn EventSink>,
        reply: RoomReply<RoomSnapshot>,
    },
    /// Removes a watcher (nothing happens when it isn't one).
    Unwatch { watcher: ClientId },
    GetConfig {
        actor_user: UserId,
        reply: RoomReply<RoomConfig>,
    },
    /// Owner submits a configuration (also unlocks a reserved room).
    SetConfig {
        actor_user: UserId,
        config: RoomConfig,
        reply: RoomReply<()>,
    },
    Destroy {
        actor_user: UserId,
        reason: String,
        alternate: Option<String>,
        reply: RoomReply<()>,
    },
    /// Check whether an invitation from this occupant is allowed, and record a member
    /// affiliation for members-only rooms when the inviter is an admin (XEP-0045 §7.8).
    Invite {
        client: ClientId,
        invitee: UserId,
        reply: RoomReply<InviteTicket>,
    },
    /// Read the archive (XEP-0313) after an access check.
    QueryArchive {
        actor_user: UserId,
        query: HistoryQuery,
        /// RSM ids to resolve into seq bounds.
        after_id: Option<String>,
        before_id: Option<String>,
        reply: RoomReply<ArchivePage>,
    },
    /// Public facts for disco and room listings.
    Info { reply: RoomReply<RoomInfo> },
    /// Is this client in the room under this nick? (XEP-0410 self-ping)
    IsOccupant {
        client: ClientId,
        nick: String,
        reply: RoomReply<bool>,
    },
    /// Server shutting down: occupants get unavailable presence with status 332.
    Shutdown { reply: oneshot::Sender<()> },
    /// Pool: this node is no longer the room's home. The room finishes its pending commits and
    /// stops without telling anyone (every node joins its clients again at the new home); the
    /// reply is who was present, so this node can show its clients those who do not come back.
    Handover {
        reply: oneshot::Sender<Vec<super::events::OccupantPresence>>,
    },
    /// Pool: the node with this origin number is gone; its clients' sessions leave the room
    /// (everyone else sees them go) and its watchers are dropped.
    DropOrigin { origin: u16 },
}

/// An occupant as listed to moderators and in disco/roster answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RosterEntry {
    pub nick: String,
    pub user: UserId,
    pub role: Role,
    pub affiliation: Affiliation,
    /// The protocol of the occupant's first session.
    pub protocol: ClientProtocol,
}

/// What a new watcher starts from: the room's facts and who is in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomSnapshot {
    /// Room local name (e.g. `lobby`).
    pub name: String,
    pub title: String,
    pub subject: String,
    /// Anyone may see occupants' real addresses (whois anyone).
    pub non_anonymous: bool,
    /// Present occupants, sorted by nick.
    pub occupants: Vec<RosterEntry>,
}

/// What an invitation needs: the inviter's nick and user, and the room password if any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InviteTicket {
    pub inviter_nick: String,
    pub inviter: UserId,
    pub password: Option<String>,
}

/// One page of archive results with what RSM needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArchivePage {
    pub messages: Vec<Arc<StoredMessage>>,
    /// True when no more results exist in the paging direction.
    pub complete: bool,
    pub count: u64,
}

/// Room facts for disco#info, listings and admin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoomInfo {
    pub name: String,
    pub config: RoomConfig,
    pub subject: String,
    pub occupants: u32,
    pub locked: bool,
    pub category: Option<uuid::Uuid>,
}

impl RoomCommand {
    /// The session acting as an occupant in this command (posts, private messages, subject,
    /// nick and role changes, invitations), if any. Joins and leaves are not counted.
    pub fn acting_client(&self) -> Option<ClientId> {
        match self {
            RoomCommand::Post { client, .. }
            | RoomCommand::Private { client, .. }
            | RoomCommand::SetSubject { client, .. }
            | RoomCommand::ChangeNick { client, .. }
            | RoomCommand::SetRole { client, .. }
            | RoomCommand::Invite { client, .. } => Some(*client),
            _ => None,
        }
    }

    /// Answers the command's reply channel (if any) with `err`.
    pub fn fail(self, err: RoomError) {
        match self {
            RoomCommand::Join { reply, .. }
            | RoomCommand::ChangeNick { reply, .. }
            | RoomCommand::SetSubject { reply, .. }
            | RoomCommand::Private { reply, .. }
            | RoomCommand::SetRole { reply, .. }
            | RoomCommand::SetAffiliation { reply, .. }
            | RoomCommand::SetConfig { reply, .. }
            | RoomCommand::Destroy { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::Post { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::GetAffiliations { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::GetRoles { reply, .. } | RoomCommand::Occupants { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::Watch { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::GetConfig { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::Invite { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::QueryArchive { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::Info { reply } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::IsOccupant { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            RoomCommand::Leave { .. }
            | RoomCommand::Unwatch { .. }
            | RoomCommand::DropOrigin { .. } => {}
            RoomCommand::Handover { reply } => {
                let _ = reply.send(Vec::new());
            }
            RoomCommand::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }
}
