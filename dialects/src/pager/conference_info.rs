//! RFC 4575 `application/conference-info+xml` documents for `Event: conference` NOTIFYs: the
//! full room roster ([`full_document`]) and partial updates ([`partial_document`]). Every
//! occupant, SIP or XMPP, is a `<user>` with its nick as `display-text`, its role under
//! `roles/entry` and one `endpoint` whose `status` says whether it is connected.
//!
//! Output is UTF-8 XML with an XML declaration; all text and attribute values are escaped by
//! the XMPP module's writer (characters XML forbids become U+FFFD), so any nick or subject
//! gives a well-formed document.

use crate::xmpp::muc::writer::XmlWriter;
use palaver_core::model::Role;

/// The conference-info namespace (RFC 4575 §5).
pub const NS: &str = "urn:ietf:params:xml:ns:conference-info";
/// The body type of conference NOTIFYs.
pub const CONTENT_TYPE: &str = "application/conference-info+xml";

/// Whether a user's endpoint is in the room (RFC 4575 §5.6.4 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Connected,
    Disconnected,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Connected => "connected",
            EndpointStatus::Disconnected => "disconnected",
        }
    }
}

/// One occupant as a conference `<user>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfUser {
    /// The user's URI (`sip:alice@example.com` or `xmpp:alice@example.com`); also used as the
    /// endpoint's entity. Must be unique within a document.
    pub entity: String,
    /// The room nick.
    pub display_text: String,
    /// Written as `roles/entry` (`moderator`, `participant`, `visitor`); `Role::None` writes no
    /// `roles` element.
    pub role: Role,
    pub status: EndpointStatus,
}

/// The whole room for a full document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceState {
    /// The room URI, `sip:room@conference.<domain>`.
    pub entity: String,
    /// Room title (`conference-description/display-text`), left out when empty.
    pub display_text: String,
    /// Room subject (`conference-description/subject`), left out when empty.
    pub subject: String,
    pub users: Vec<ConfUser>,
}

/// What happened to a user, for a partial document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    /// A new user: written with `state="full"` (RFC 4575 has no "added" state; a new element in
    /// a partial document is sent in full).
    Added,
    /// Some of the user's data changed (nick, role, status): `state="partial"`.
    Partial,
    /// The user left: `state="deleted"`, written without children.
    Deleted,
}

impl UserState {
    fn as_str(self) -> &'static str {
        match self {
            UserState::Added => "full",
            UserState::Partial => "partial",
            UserState::Deleted => "deleted",
        }
    }
}

/// One entry of a partial document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChange {
    pub state: UserState,
    pub user: ConfUser,
}

const DECLARATION: &str = "<?xml version='1.0' encoding='UTF-8'?>\n";

/// A `state="full"` document: conference description (title, subject), conference state
/// (user count, active) and every user.
pub fn full_document(state: &ConferenceState, version: u32) -> String {
    let mut out = Vec::with_capacity(512 + 256 * state.users.len());
    out.extend_from_slice(DECLARATION.as_bytes());
    let mut w = XmlWriter::new(&mut out);
    root(&mut w, &state.entity, "full", version);
    w.open("conference-description").close_start();
    if !state.display_text.is_empty() {
        w.text_element("display-text", &state.display_text);
    }
    if !state.subject.is_empty() {
        w.text_element("subject", &state.subject);
    }
    w.end("conference-description");
    w.open("conference-state").close_start();
    w.text_element("user-count", &state.users.len().to_string());
    w.text_element("active", "true");
    w.end("conference-state");
    w.open("users").close_start();
    for user in &state.users {
        write_user(&mut w, user, UserState::Added);
    }
    w.end("users").end("conference-info");
    into_string(out)
}

/// A `state="partial"` document for the room `entity` listing only the `changed` users (the
/// `users` element carries `state="partial"` so receivers keep everyone else).
pub fn partial_document(entity: &str, changed: &[UserChange], version: u32) -> String {
    let mut out = Vec::with_capacity(256 + 256 * changed.len());
    out.extend_from_slice(DECLARATION.as_bytes());
    let mut w = XmlWriter::new(&mut out);
    root(&mut w, entity, "partial", version);
    w.open("users").attr("state", "partial").close_start();
    for change in changed {
        write_user(&mut w, &change.user, change.state);
    }
    w.end("users").end("conference-info");
    into_string(out)
}

fn root(w: &mut XmlWriter<'_>, entity: &str, state: &str, version: u32) {
    w.open("conference-info")
        .attr("xmlns", NS)
        .attr("entity", entity)
        .attr("state", state)
        .attr("version", &version.to_string())
        .close_start();
}

fn write_user(w: &mut XmlWriter<'_>, user: &ConfUser, state: UserState) {
    w.open("user")
        .attr("entity", &user.entity)
        .attr("state", state.as_str());
    if state == UserState::Deleted {
        w.close_empty();
        return;
    }
    w.close_start();
    w.text_element("display-text", &user.display_text);
    if user.role != Role::None {
        w.open("roles").close_start();
        w.text_element("entry", user.role.as_str());
        w.end("roles");
    }
    w.open("endpoint")
        .attr("entity", &user.entity)
        .attr("state", state.as_str())
        .close_start();
    w.text_element("status", user.status.as_str());
    w.end("endpoint");
    w.end("user");
}

/// The writer only ever appends valid UTF-8 (escaped `&str`s and ASCII markup).
fn into_string(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
