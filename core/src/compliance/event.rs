//! The compliance event model: what happened ([`EventKind`], with stable string names that are
//! stored and exported), when, in which room, by whom and over which protocol.

use serde::{Deserialize, Serialize};

/// What a compliance event records. The string names ([`EventKind::as_str`]) are stored in the
/// compliance database and appear in exports: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Join,
    Leave,
    Message,
    Subject,
    Config,
    Role,
    Affiliation,
    FileUpload,
    FileDownload,
    /// A private message between two occupants of a room.
    Private,
    /// An occupant's presence changed (show/status) while in the room.
    Presence,
    /// An occupant changed nick.
    Nick,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 12] = [
        EventKind::Join,
        EventKind::Leave,
        EventKind::Message,
        EventKind::Subject,
        EventKind::Config,
        EventKind::Role,
        EventKind::Affiliation,
        EventKind::FileUpload,
        EventKind::FileDownload,
        EventKind::Private,
        EventKind::Presence,
        EventKind::Nick,
    ];

    /// The stable name stored and exported.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::Message => "message",
            EventKind::Subject => "subject",
            EventKind::Config => "config",
            EventKind::Role => "role",
            EventKind::Affiliation => "affiliation",
            EventKind::FileUpload => "file_upload",
            EventKind::FileDownload => "file_download",
            EventKind::Private => "private",
            EventKind::Presence => "presence",
            EventKind::Nick => "nick",
        }
    }

    /// The kind named `s` (see [`EventKind::as_str`]).
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One event to archive (before it has a seq and hashes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceEvent {
    /// ms since the Unix epoch.
    pub at: i64,
    /// The room (its bare name or address; empty for events outside rooms).
    pub room: String,
    /// The bare address of who acted.
    pub actor: String,
    /// "xmpp", "sip", "xccos", "http", "cli", ...
    pub protocol: String,
    pub kind: EventKind,
    /// Kind-specific details as JSON text (e.g. `{"body":"hi","nick":"alice"}`).
    pub detail: String,
}

/// An archived event: the event, its place in the chain and its hashes (64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: i64,
    pub event: ComplianceEvent,
    pub prev_hash: String,
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }
}
