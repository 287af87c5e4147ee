//! The room's side of XEP-0045 §7.8.2 mediated invitations: the invitation the room sends an
//! invitee and the decline it passes back to the inviter. Used by XMPP occupants' invitations
//! and by the SIP pager's `#invite` / `#reject`, so both protocols send the same stanzas.

use bytes::Bytes;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::ns;

/// The room `room_jid`'s invitation from `from` (the inviter's JID), with the reason and the
/// room password when there are any, and a readable body.
pub fn mediated_invitation(
    room_jid: &str,
    from: &str,
    inviter_nick: &str,
    reason: Option<&str>,
    password: Option<&str>,
) -> Bytes {
    let mut invite = Element::new("invite", ns::MUC_USER).with_attr("from", from);
    if let Some(r) = reason {
        invite.append_child(Element::new("reason", ns::MUC_USER).with_text(r));
    }
    let mut x = Element::new("x", ns::MUC_USER).with_child(invite);
    if let Some(pw) = password {
        x.append_child(Element::new("password", ns::MUC_USER).with_text(pw));
    }
    let body = format!("{inviter_nick} invites you to the room {room_jid}");
    let msg = Element::new("message", ns::CLIENT)
        .with_attr("from", room_jid)
        .with_child(x)
        .with_child(Element::new("body", ns::CLIENT).with_text(body));
    Bytes::from(msg.to_bytes(ns::CLIENT))
}

/// The room `room_jid` telling an inviter that `from` declined, with the decliner's reason
/// and, for clients that show only bodies, a readable `body`.
pub fn mediated_decline(
    room_jid: &str,
    from: &str,
    reason: Option<&str>,
    body: Option<&str>,
) -> Bytes {
    let mut decline = Element::new("decline", ns::MUC_USER).with_attr("from", from);
    if let Some(r) = reason {
        decline.append_child(Element::new("reason", ns::MUC_USER).with_text(r));
    }
    let mut msg = Element::new("message", ns::CLIENT)
        .with_attr("from", room_jid)
        .with_child(Element::new("x", ns::MUC_USER).with_child(decline));
    if let Some(b) = body {
        msg.append_child(Element::new("body", ns::CLIENT).with_text(b));
    }
    Bytes::from(msg.to_bytes(ns::CLIENT))
}
