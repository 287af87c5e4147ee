//! The XMPP side of a cross case: the owner's session creating the case's instant room
//! (XEP-0045 §10.1.2) and destroying it at the end (§10.9), admin requests (§8.2, §9.1) and
//! waits for an occupant's presence.

use super::ctx::{CrossCtx, Room};
use crate::suite::session::Session;
use crate::suite::xml::{attr, presence_from, NS_MUC_ADMIN, NS_MUC_OWNER};
use anyhow::Result;
use palaver_dialects::xmpp::element::Element;

/// The owner's nick in every case.
pub const OWNER: &str = "alice";

/// User 0 logs in and creates a fresh instant room as [`OWNER`], submitting `fields` of the
/// configuration form (none: the defaults).
pub async fn create(cx: &CrossCtx, fields: &[(&str, &str)]) -> Result<(Session, Room)> {
    let mut s = cx.x.login(0).await?;
    let room = cx.room();
    s.create(&room.jid, OWNER, fields).await?;
    Ok((s, room))
}

/// Destroys `room` (errors ignored: the case's verdict is already made) and closes `s`.
pub async fn destroy(mut s: Session, room: &Room) {
    let _ = s
        .iq(
            "set",
            &room.jid,
            &format!("<query xmlns='{NS_MUC_OWNER}'><destroy/></query>"),
        )
        .await;
    s.close().await;
}

/// A muc#admin set with one `<item/>` (kick, ban…); fails on an error answer.
pub async fn admin(s: &mut Session, room: &Room, item: &str) -> Result<Element> {
    s.iq_ok(
        "set",
        &room.jid,
        &format!("<query xmlns='{NS_MUC_ADMIN}'>{item}</query>"),
    )
    .await
}

/// An `<item/>` naming an occupant by nick with `role`.
pub fn role_item(nick: &str, role: &str) -> String {
    format!("<item nick='{}' role='{role}'/>", attr(nick))
}

/// Waits for a presence from `room/nick` accepted by `pred`.
pub async fn presence(
    s: &mut Session,
    room: &Room,
    nick: &str,
    what: &str,
    pred: impl Fn(&Element) -> bool,
) -> Result<Element> {
    let occupant = room.occupant(nick);
    s.recv(what, |e| presence_from(e, &occupant) && pred(e))
        .await
}

/// Whether a presence is available (no type).
pub fn available(e: &Element) -> bool {
    e.attr("type").is_none()
}

/// Whether a presence is unavailable.
pub fn unavailable(e: &Element) -> bool {
    e.attr("type") == Some("unavailable")
}
