//! Plain data types shared by the room engine and the store: users, categories, rooms, room
//! configuration, affiliations, roles and stored messages. No wire protocol lives here.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC). The engine takes time as input; the store keeps it.
pub type Millis = i64;

/// Database id of a room (stable across renames; used for `ma-chan://` addresses later).
pub type RoomId = i64;

/// A user's bare address, `local@domain`, lowercased. The same account is used by XMPP and SIP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserId(pub String);

impl UserId {
    /// Builds a user id, lowercasing it. Returns `None` unless it is `local@domain` with both
    /// parts non-empty and no `/`.
    pub fn parse(s: &str) -> Option<UserId> {
        let s = s.trim();
        let (local, domain) = s.split_once('@')?;
        if local.is_empty() || domain.is_empty() || s.contains('/') || domain.contains('@') {
            return None;
        }
        Some(UserId(s.to_lowercase()))
    }
    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map(|(_, d)| d).unwrap_or("")
    }
    /// The part before `@`.
    pub fn local(&self) -> &str {
        self.0.split_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One SCRAM credential (RFC 5802): what the server keeps instead of a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// SIP digest credentials (RFC 3261 §22.4, RFC 8760) of one account for one realm: the `HA1`
/// values `H(username ":" realm ":" password)` as lowercase hex, so the password itself is never
/// kept. `username` is the user part of the account's address (the local part of its
/// [`UserId`], lowercase): RFC 3261 digest authentication uses the user part of the AOR as the
/// digest username. Made by `credentials::new_user_record` (see also `credentials::sip_ha1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipDigest {
    /// The digest realm the HA1 values were computed for (the account's domain).
    pub realm: String,
    /// Lowercase hex of `MD5(user ":" realm ":" password)` (32 characters).
    pub ha1_md5: String,
    /// Lowercase hex of `SHA-256(user ":" realm ":" password)` (64 characters).
    pub ha1_sha256: String,
}

/// A local account. Passwords are never stored: only SCRAM keys (SHA-1 and SHA-256) for XMPP
/// and, for SIP, digest HA1 values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub user: UserId,
    pub scram_sha1: ScramCredential,
    pub scram_sha256: ScramCredential,
    /// SIP digest credentials. `None` for accounts whose password was set before palaver kept
    /// them (SCRAM keys cannot be turned into HA1): such a user must set the password again
    /// (`palaver user passwd`) before a SIP client can authenticate.
    pub sip_digest: Option<SipDigest>,
    pub created_at: Millis,
}

/// Who a category rule admits: everyone, every user of a domain, or one user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Principal {
    Anyone,
    Domain(String),
    User(UserId),
}

impl Principal {
    /// Parses `*`, `@domain` / `domain` (no `@` inside) or `user@domain`.
    pub fn parse(s: &str) -> Option<Principal> {
        let s = s.trim();
        if s == "*" {
            return Some(Principal::Anyone);
        }
        if let Some(d) = s.strip_prefix('@') {
            return (!d.is_empty()).then(|| Principal::Domain(d.to_lowercase()));
        }
        if s.contains('@') {
            return UserId::parse(s).map(Principal::User);
        }
        (!s.is_empty()).then(|| Principal::Domain(s.to_lowercase()))
    }
    /// True when this principal admits `user`.
    pub fn admits(&self, user: &UserId) -> bool {
        match self {
            Principal::Anyone => true,
            Principal::Domain(d) => user.domain() == d,
            Principal::User(u) => u == user,
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Anyone => f.write_str("*"),
            Principal::Domain(d) => write!(f, "@{d}"),
            Principal::User(u) => write!(f, "{u}"),
        }
    }
}

/// A category groups rooms and says who may create rooms in it and who may join them
/// (the reference's "creators" and "allowed members" scopes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: uuid::Uuid,
    pub name: String,
    pub description: String,
    /// Who may create rooms in this category.
    pub creators: Vec<Principal>,
    /// Who may be a member of (join) rooms in this category.
    pub members: Vec<Principal>,
    pub created_at: Millis,
}

impl Category {
    pub fn may_create(&self, user: &UserId) -> bool {
        self.creators.iter().any(|p| p.admits(user))
    }
    pub fn may_join(&self, user: &UserId) -> bool {
        self.members.iter().any(|p| p.admits(user))
    }
}

/// Who may see occupants' real addresses (muc#roomconfig_whois).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Whois {
    Moderators,
    Anyone,
}

/// Room settings (the muc#roomconfig form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomConfig {
    pub title: String,
    pub description: String,
    pub persistent: bool,
    pub public: bool,
    pub members_only: bool,
    pub moderated: bool,
    pub password: Option<String>,
    /// 0 means no limit.
    pub max_users: u32,
    pub whois: Whois,
    pub allow_private_messages: bool,
    pub allow_invites: bool,
    pub occupants_may_change_subject: bool,
    pub logged: bool,
    pub history_length: u32,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            title: String::new(),
            description: String::new(),
            persistent: true,
            public: true,
            members_only: false,
            moderated: false,
            password: None,
            max_users: 0,
            whois: Whois::Moderators,
            allow_private_messages: true,
            allow_invites: true,
            occupants_may_change_subject: false,
            logged: true,
            history_length: 50,
        }
    }
}

/// A room as stored. `name` is the room's local part (`lobby` in `lobby@conference.localhost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    pub id: RoomId,
    pub name: String,
    pub category: Option<uuid::Uuid>,
    pub config: RoomConfig,
    pub subject: String,
    pub subject_nick: String,
    /// True until the owner has submitted the configuration of a reserved room (XEP-0045 §10.1.3).
    pub locked: bool,
    pub created_at: Millis,
}

/// XEP-0045 affiliation: long-lived relation of a user to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Affiliation {
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Admin => "admin",
            Affiliation::Member => "member",
            Affiliation::None => "none",
            Affiliation::Outcast => "outcast",
        }
    }
    pub fn parse(s: &str) -> Option<Affiliation> {
        Some(match s {
            "owner" => Affiliation::Owner,
            "admin" => Affiliation::Admin,
            "member" => Affiliation::Member,
            "none" => Affiliation::None,
            "outcast" => Affiliation::Outcast,
            _ => return None,
        })
    }
}

/// XEP-0045 role: the privileges of a present occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    None,
    Visitor,
    Participant,
    Moderator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Visitor => "visitor",
            Role::None => "none",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "moderator" => Role::Moderator,
            "participant" => Role::Participant,
            "visitor" => Role::Visitor,
            "none" => Role::None,
            _ => return None,
        })
    }
}

/// One affiliation row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AffiliationRecord {
    pub user: UserId,
    pub affiliation: Affiliation,
    pub reason: String,
}

/// A message as kept in room history. `seq` is assigned by the room's home and is unique per room.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredMessage {
    pub room_id: RoomId,
    pub seq: i64,
    /// XEP-0359 stanza-id given by the room (unique, opaque).
    pub stanza_id: String,
    /// The id the sender gave its message (echoed back so clients match the reflection).
    pub origin_id: String,
    pub sender: UserId,
    pub nick: String,
    /// XEP-0421 occupant id (stable per user and room).
    pub occupant_id: String,
    pub body: String,
    /// Protocol-specific extra payload kept opaque by core (e.g. XMPP child elements besides body).
    pub extra: Option<String>,
    pub ts: Millis,
}

/// Which slice of history to read. Bounds are inclusive-exclusive as named; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryQuery {
    /// Only messages with `seq > after_seq`.
    pub after_seq: Option<i64>,
    /// Only messages with `seq < before_seq`.
    pub before_seq: Option<i64>,
    /// Only messages with `ts >= start`.
    pub start: Option<Millis>,
    /// Only messages with `ts <= end`.
    pub end: Option<Millis>,
    /// Only messages from this sender.
    pub sender: Option<UserId>,
    /// At most this many rows (0 returns none).
    pub limit: u32,
    /// When true the rows closest to `before_seq`/the end are taken (the newest `limit`);
    /// the returned vector is always in ascending `seq` order.
    pub from_end: bool,
}

/// One binding of the SIP location service (RFC 3261 §10): a Contact a user registered, kept
/// until `expires_at`. Keyed by (`user`, `contact`); registering the same contact again replaces
/// the binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The registered account (the address-of-record's user).
    pub user: UserId,
    /// The Contact URI, as registered.
    pub contact: String,
    /// The `+sip.instance` Contact parameter (RFC 5626), or `""` when absent.
    pub instance: String,
    /// Transport the REGISTER arrived on: `"udp"`, `"tcp"` or `"tls"`.
    pub transport: String,
    /// `ip:port` the REGISTER came from (where requests to this contact are sent).
    pub source: String,
    /// Id of the pool node holding the client's connection/flow (`""` while single-node).
    pub node: String,
    /// Call-ID of the REGISTER that made or last refreshed the binding.
    pub call_id: String,
    /// CSeq number of that REGISTER (RFC 3261 §10.3 step 7 ordering).
    pub cseq: i64,
    /// When the binding expires (ms since the epoch); it is expired once `now >= expires_at`.
    pub expires_at: Millis,
    /// The User-Agent header of the REGISTER, or `""`.
    pub user_agent: String,
}

/// The metadata of a file posted to a room (its bytes are in the file store, by `sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The upload slot's id; part of the download URL.
    pub id: uuid::Uuid,
    /// The room it was posted to; `None` until it is posted.
    pub room: Option<RoomId>,
    /// Who uploaded it.
    pub uploader: UserId,
    /// The file name the client gave, as given (never used in a path; sanitised when served).
    pub name: String,
    /// The Content-Type the client gave.
    pub mime: String,
    pub size: u64,
    /// The blob's SHA-256 as 64 lowercase hex digits.
    pub sha256: String,
    pub created_at: Millis,
}
