//! `#invite`, `#accept` and `#reject`: an occupant invites a user by `sip:`/`xmpp:` address.
//! The room checks the invitation (and, for members-only rooms, records the member), then the
//! invitee gets it on every way it is reachable: a MESSAGE to its SIP registrations (kept as
//! a pending invitation it answers with `#accept`/`#reject`) and an XEP-0045 mediated
//! invitation to its XMPP sessions.

use super::bindings::Target;
use super::commands::Outcome;
use super::occupant;
use super::SipService;
use crate::xmpp::invitation::{mediated_decline, mediated_invitation};
use palaver_core::engine::{ClientId, RoomCommand};
use palaver_core::UserId;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an invitation can be accepted.
const INVITATION_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Pending invitations kept at most (oldest dropped first).
const MAX_INVITATIONS: usize = 100_000;

/// An invitation a SIP user has not answered yet.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub inviter: UserId,
    pub inviter_nick: String,
    pub at: Instant,
}

/// The user an `#invite` address names (`sip:`, `sips:` or `xmpp:` URI, parameters dropped).
fn invitee(address: &str) -> Option<UserId> {
    let (scheme, rest) = address.split_once(':')?;
    if !["sip", "sips", "xmpp"].contains(&scheme.to_ascii_lowercase().as_str()) {
        return None;
    }
    let rest = rest.trim_start_matches("//");
    let end = rest.find([';', '?', '/', '>']).unwrap_or(rest.len());
    UserId::parse(rest.get(..end)?)
}

/// `#invite address`.
pub async fn invite(
    svc: &Arc<SipService>,
    user: &UserId,
    room: &str,
    client: Option<ClientId>,
    address: &str,
) -> Outcome {
    let Some(client) = client else {
        return Outcome::failed(
            403,
            "Not An Occupant",
            format!("Join {room} before inviting others to it."),
        );
    };
    let Some(invitee) = invitee(address) else {
        return Outcome::failed(
            400,
            "Bad Address",
            format!("{address} is not a sip: or xmpp: address of a user."),
        );
    };
    if invitee.domain() != svc.domain {
        return Outcome::failed(
            404,
            "Unknown Domain",
            format!("{invitee} is on another server; inviting remote users is not supported yet."),
        );
    }
    let who = invitee.clone();
    let ticket = match svc
        .ctx
        .engine
        .ask(room, |reply| RoomCommand::Invite {
            client,
            invitee: who,
            reply,
        })
        .await
    {
        Ok(t) => t,
        Err(e) => return Outcome::refused(e, "You may not invite people to this room."),
    };
    let mut reached = offer_over_sip(svc, room, user, &ticket.inviter_nick, &invitee);
    let room_jid = format!("{room}@{}", svc.room_domain);
    let msg = mediated_invitation(
        &room_jid,
        user.as_str(),
        &ticket.inviter_nick,
        None,
        ticket.password.as_deref(),
    );
    reached += svc.xmpp.router.deliver(&invitee.to_string(), None, msg);
    if reached == 0 {
        return Outcome::failed(
            480,
            "Temporarily Unavailable",
            format!("{invitee} is not online; the invitation was not delivered."),
        );
    }
    Outcome::ok_text(format!("Invitation sent to {invitee}."))
}

/// Offers an invitation to `invitee`'s SIP registrations (kept pending for `#accept` /
/// `#reject`); returns how many contacts it was sent to.
pub fn offer_over_sip(
    svc: &Arc<SipService>,
    room: &str,
    inviter: &UserId,
    inviter_nick: &str,
    invitee: &UserId,
) -> usize {
    let targets = svc.bindings.targets(&invitee.to_string());
    if targets.is_empty() {
        return 0;
    }
    if svc.invitations.len() >= MAX_INVITATIONS {
        let cutoff = Instant::now() - INVITATION_LIFETIME;
        svc.invitations.retain(|_, i| i.at > cutoff);
    }
    svc.invitations.insert(
        (invitee.to_string(), room.to_string()),
        Invitation {
            inviter: inviter.clone(),
            inviter_nick: inviter_nick.to_string(),
            at: Instant::now(),
        },
    );
    let room_uri = svc.room_uri(room);
    let text = format!(
        "*** {inviter_nick} ({inviter}) invites you to the room {room}. Send #accept or #reject to {room_uri}."
    );
    let reached = targets.len();
    let (svc, invitee) = (svc.clone(), invitee.clone());
    tokio::spawn(async move {
        occupant::send_text(&svc, &targets, &invitee, &room_uri, None, &text).await;
    });
    reached
}

/// Invitations made by XMPP occupants reach users on SIP through this (see
/// `Context::invitation_relay`).
pub struct SipInvitationRelay(pub std::sync::Weak<SipService>);

impl crate::context::InvitationRelay for SipInvitationRelay {
    fn relay(&self, room: &str, inviter: &UserId, inviter_nick: &str, invitee: &UserId) -> usize {
        match self.0.upgrade() {
            Some(svc) if invitee.domain() == svc.domain => {
                offer_over_sip(&svc, room, inviter, inviter_nick, invitee)
            }
            _ => 0,
        }
    }
}

fn take_invitation(svc: &SipService, user: &UserId, room: &str) -> Option<Invitation> {
    let (_, inv) = svc
        .invitations
        .remove(&(user.to_string(), room.to_string()))?;
    (inv.at.elapsed() < INVITATION_LIFETIME).then_some(inv)
}

fn no_invitation(room: &str) -> Outcome {
    Outcome::failed(
        404,
        "No Pending Invitation",
        format!("You have no pending invitation to {room}."),
    )
}

/// `#accept`: join the room of a pending invitation under the user's name.
pub async fn accept(svc: &Arc<SipService>, user: &UserId, room: &str, via: &Target) -> Outcome {
    let Some(inv) = take_invitation(svc, user, room) else {
        return no_invitation(room);
    };
    tracing::info!(user = %user, room, inviter = %inv.inviter, nick = %inv.inviter_nick, "SIP invitation accepted");
    if occupant::find(svc, user, room).is_some() {
        return Outcome::ok_text(format!("You are already in {room}."));
    }
    match occupant::join(svc, user, room, user.local(), via.clone()).await {
        Ok(()) => Outcome::ok(),
        Err(e) => {
            // Still pending: the user can fix the problem (e.g. a nick in use) and accept again.
            svc.invitations
                .insert((user.to_string(), room.to_string()), inv);
            Outcome::room_error(e)
        }
    }
}

/// `#reject`: decline a pending invitation; the inviter is told where it can be reached.
pub async fn reject(svc: &Arc<SipService>, user: &UserId, room: &str) -> Outcome {
    let Some(inv) = take_invitation(svc, user, room) else {
        return no_invitation(room);
    };
    let room_uri = svc.room_uri(room);
    let text = format!("*** {user} declined your invitation to {room}.");
    let targets = svc.bindings.targets(&inv.inviter.to_string());
    if !targets.is_empty() {
        let (svc2, inviter, text2) = (svc.clone(), inv.inviter.clone(), text.clone());
        tokio::spawn(async move {
            occupant::send_text(&svc2, &targets, &inviter, &room_uri, None, &text2).await;
        });
    }
    let room_jid = format!("{room}@{}", svc.room_domain);
    let msg = mediated_decline(&room_jid, user.as_str(), None, Some(&text));
    svc.xmpp.router.deliver(&inv.inviter.to_string(), None, msg);
    Outcome::ok_text(format!("You declined the invitation to {room}."))
}

#[cfg(test)]
mod tests {
    use super::invitee;

    #[test]
    fn invite_addresses() {
        assert_eq!(
            invitee("sip:bob@localhost")
                .map(|u| u.to_string())
                .as_deref(),
            Some("bob@localhost")
        );
        assert_eq!(
            invitee("xmpp:bob@localhost")
                .map(|u| u.to_string())
                .as_deref(),
            Some("bob@localhost")
        );
        assert_eq!(
            invitee("sips:bob@localhost;transport=tls")
                .map(|u| u.to_string())
                .as_deref(),
            Some("bob@localhost")
        );
        assert!(invitee("tel:+123").is_none());
        assert!(invitee("bob").is_none());
    }
}
