//! Running one pager command for a SIP user in a room: each `PagerCommand` becomes room engine
//! commands, and the result an [`Outcome`] — the response status for the MESSAGE and the text
//! (reply or error) sent back to the user. Room errors map to SIP statuses: 404 unknown room,
//! 403 not allowed (ban, members-only, not an occupant, not a moderator, nick taken), 400 bad
//! arguments, 503 when the room is full or busy.

use super::bindings::Target;
use super::occupant;
use super::SipService;
use palaver_core::engine::{RoomCommand, RoomError};
use palaver_core::model::{HistoryQuery, Role};
use palaver_core::UserId;
use palaver_dialects::pager::command::{help_text, PagerCommand};
use palaver_dialects::pager::text::{
    format_history, format_members, format_topic, hhmm_utc, Protocol,
};
use std::sync::Arc;

/// History lines `#history` sends without a count.
const DEFAULT_HISTORY: u32 = 20;

/// What to answer a MESSAGE with.
pub struct Outcome {
    pub code: u16,
    pub reason: String,
    /// Text for the user, sent as a MESSAGE from the room after the response.
    pub text: Option<String>,
}

impl Outcome {
    pub fn ok() -> Outcome {
        Outcome {
            code: 200,
            reason: "OK".into(),
            text: None,
        }
    }

    pub fn ok_text(text: impl Into<String>) -> Outcome {
        Outcome {
            text: Some(text.into()),
            ..Outcome::ok()
        }
    }

    pub fn failed(code: u16, reason: &str, text: impl Into<String>) -> Outcome {
        Outcome {
            code,
            reason: reason.into(),
            text: Some(text.into()),
        }
    }

    /// The status and explanation for a room error.
    pub fn room_error(err: RoomError) -> Outcome {
        let (code, reason) = status_for(&err);
        let mut text = err.to_string();
        if let Some(first) = text.get(..1) {
            text = first.to_uppercase() + text.get(1..).unwrap_or_default();
        }
        Outcome::failed(code, reason, format!("Error: {text}."))
    }

    /// Like [`Outcome::room_error`], but a `Forbidden` is explained by `why`: the room
    /// refuses more than banned users with it (visitors posting, topic changes by
    /// participants, destruction by non-owners, invitations), so "banned" would mislead.
    pub fn refused(err: RoomError, why: &str) -> Outcome {
        match err {
            RoomError::Forbidden => Outcome::failed(403, "Not Allowed", format!("Error: {why}")),
            other => Outcome::room_error(other),
        }
    }
}

/// The SIP status for a room error (RFC 7247 spirit).
pub fn status_for(err: &RoomError) -> (u16, &'static str) {
    match err {
        RoomError::ItemNotFound => (404, "No Such Room"),
        RoomError::RecipientUnavailable => (404, "No Such Occupant"),
        RoomError::Forbidden => (403, "Banned"),
        RoomError::RegistrationRequired => (403, "Members Only"),
        RoomError::NotAuthorized => (403, "Password Required"),
        RoomError::Conflict => (403, "Nickname In Use"),
        RoomError::NotAllowed(_) => (403, "Not Allowed"),
        RoomError::NotAcceptable => (403, "Not An Occupant"),
        RoomError::BadRequest(_) => (400, "Bad Request"),
        RoomError::ServiceUnavailable => (503, "Room Unavailable"),
        RoomError::ResourceConstraint => (503, "Too Many Requests"),
        RoomError::Locked => (480, "Room Locked"),
        RoomError::Internal => (500, "Server Error"),
    }
}

/// The answer to a command that needs the sender in the room: 404 when the room does not
/// exist (RFC 3261 §8.2.2.1), else 403 with how to join.
async fn not_joined(svc: &SipService, room: &str) -> Outcome {
    if matches!(svc.ctx.store.get_room(room).await, Ok(None)) {
        return Outcome::room_error(RoomError::ItemNotFound);
    }
    Outcome::failed(
        403,
        "Not An Occupant",
        format!("You are not in {room}. Send #join [nick] to enter it."),
    )
}

fn done(result: Result<(), RoomError>) -> Outcome {
    match result {
        Ok(()) => Outcome::ok(),
        Err(e) => Outcome::room_error(e),
    }
}

/// [`done`] with a `Forbidden` explained by `why` (see [`Outcome::refused`]).
fn done_or(result: Result<(), RoomError>, why: &str) -> Outcome {
    match result {
        Ok(()) => Outcome::ok(),
        Err(e) => Outcome::refused(e, why),
    }
}

const NO_VOICE: &str = "You cannot post here: in this moderated room visitors need voice from \
                        a moderator.";
const NO_TOPIC: &str = "Only moderators can change the topic of this room.";
const NO_DESTROY: &str = "Only the owners of this room can destroy it.";

/// Runs `cmd` for `user` in `room`; `via` reaches the user when it has no registration.
pub async fn run(
    svc: &Arc<SipService>,
    user: &UserId,
    room: &str,
    cmd: PagerCommand,
    via: &Target,
) -> Outcome {
    let engine = &svc.ctx.engine;
    let me = occupant::find(svc, user, room);
    let client = me.as_ref().map(|o| o.client);
    match cmd {
        PagerCommand::Join { nick } => {
            let Some(nick) = nick.or_else(|| client.is_none().then(|| user.local().to_string()))
            else {
                // Already in, no nick asked for: keep the current one.
                return Outcome::ok_text(format!("You are already in {room}."));
            };
            if let Some(client) = client {
                let result = engine
                    .ask(room, |reply| RoomCommand::ChangeNick {
                        client,
                        nick: nick.clone(),
                        reply,
                    })
                    .await;
                if result != Err(RoomError::NotAcceptable) {
                    return done(result);
                }
                // We had just been removed (kicked, room gone…): join afresh.
                occupant::forget(svc, user, room, client);
            }
            done(occupant::join(svc, user, room, &nick, via.clone()).await)
        }
        PagerCommand::Accept => super::invites::accept(svc, user, room, via).await,
        PagerCommand::Reject => super::invites::reject(svc, user, room).await,
        PagerCommand::Leave => match client {
            Some(client) => {
                engine
                    .send(
                        room,
                        RoomCommand::Leave {
                            client,
                            status: None,
                        },
                    )
                    .await;
                // Out now, so an immediate `#join` enters again (the room runs the leave
                // first); the delivery task still sends the goodbye.
                occupant::forget(svc, user, room, client);
                Outcome::ok()
            }
            None => not_joined(svc, room).await,
        },
        PagerCommand::Nick(nick) => match client {
            Some(client) => done(
                engine
                    .ask(room, |reply| RoomCommand::ChangeNick {
                        client,
                        nick,
                        reply,
                    })
                    .await,
            ),
            None => not_joined(svc, room).await,
        },
        PagerCommand::Post(body) => match client {
            Some(client) => {
                let result = engine
                    .ask(room, |reply| RoomCommand::Post {
                        client,
                        body,
                        extra: None,
                        origin_id: uuid::Uuid::new_v4().to_string(),
                        reply,
                    })
                    .await;
                match result {
                    Ok(stored) => {
                        if let Some(files) = &svc.ctx.files {
                            files.note_post(room, user, &stored.body).await;
                        }
                        Outcome::ok()
                    }
                    Err(e) => Outcome::refused(e, NO_VOICE),
                }
            }
            None => not_joined(svc, room).await,
        },
        PagerCommand::Members => {
            let actor_user = user.clone();
            let result = engine
                .ask(room, |reply| RoomCommand::Occupants { actor_user, reply })
                .await;
            match result {
                Ok(list) => {
                    let rows: Vec<(&str, Role, Protocol)> = list
                        .iter()
                        .map(|e| {
                            let protocol = match e.protocol {
                                palaver_core::engine::ClientProtocol::Sip => Protocol::Sip,
                                palaver_core::engine::ClientProtocol::Xmpp => Protocol::Xmpp,
                            };
                            (e.nick.as_str(), e.role, protocol)
                        })
                        .collect();
                    Outcome::ok_text(format_members(&rows))
                }
                Err(e) => Outcome::refused(e, "You may not see who is in this room."),
            }
        }
        PagerCommand::Topic(None) => match engine.room_info(room).await {
            Some(info) if info.subject.is_empty() => Outcome::ok_text("No topic is set."),
            Some(info) => Outcome::ok_text(format_topic("", &info.subject)),
            None => Outcome::room_error(RoomError::ItemNotFound),
        },
        PagerCommand::Topic(Some(subject)) => match client {
            Some(client) => done_or(
                engine
                    .ask(room, |reply| RoomCommand::SetSubject {
                        client,
                        subject,
                        reply,
                    })
                    .await,
                NO_TOPIC,
            ),
            None => not_joined(svc, room).await,
        },
        PagerCommand::History(n) => {
            let query = HistoryQuery {
                limit: n.unwrap_or(DEFAULT_HISTORY),
                from_end: true,
                ..HistoryQuery::default()
            };
            let actor_user = user.clone();
            let result = engine
                .ask(room, |reply| RoomCommand::QueryArchive {
                    actor_user,
                    query,
                    after_id: None,
                    before_id: None,
                    reply,
                })
                .await;
            match result {
                Ok(page) => {
                    let times: Vec<String> = page.messages.iter().map(|m| hhmm_utc(m.ts)).collect();
                    let lines: Vec<(&str, &str, &str)> = page
                        .messages
                        .iter()
                        .zip(&times)
                        .map(|(m, t)| (t.as_str(), m.nick.as_str(), m.body.as_str()))
                        .collect();
                    Outcome::ok_text(format_history(&lines))
                }
                Err(e) => Outcome::refused(e, "You may not read the history of this room."),
            }
        }
        PagerCommand::Invite(address) => {
            super::invites::invite(svc, user, room, client, &address).await
        }
        PagerCommand::Rooms => super::directory::rooms(svc, user).await,
        PagerCommand::Files => match client {
            Some(_) => super::directory::files(svc, room).await,
            None => not_joined(svc, room).await,
        },
        PagerCommand::Create {
            name,
            private,
            category,
        } => super::directory::create(svc, user, &name, private, category.as_deref(), via).await,
        PagerCommand::Destroy => {
            let actor_user = user.clone();
            done_or(
                engine
                    .ask(room, |reply| RoomCommand::Destroy {
                        actor_user,
                        reason: String::new(),
                        alternate: None,
                        reply,
                    })
                    .await,
                NO_DESTROY,
            )
        }
        PagerCommand::Remove { nick, reason } => match client {
            Some(client) => done(
                engine
                    .ask(room, |reply| RoomCommand::SetRole {
                        client,
                        nick,
                        role: Role::None,
                        reason,
                        reply,
                    })
                    .await,
            ),
            None => not_joined(svc, room).await,
        },
        PagerCommand::Help => Outcome::ok_text(help_text()),
    }
}
