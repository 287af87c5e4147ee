//! Room traffic between pool nodes in the engine's terms: a [`RoomCommand`] without its reply
//! channel and sink becomes a [`WireCommand`] (`split`), and the home node turns it back into a
//! command with a reply it can wait on (`rebuild`); every reply type travels as a [`WireValue`].
//! Bodies are postcard (serde) bytes carried opaquely by the 8011 frames.

use crate::engine::commands::*;
use crate::engine::events::{EventSink, RoomEventKind};
use crate::model::{
    Affiliation, AffiliationRecord, HistoryQuery, Role, RoomConfig, StoredMessage, UserId,
};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::oneshot;

/// The client of a forwarded join, without its sink (which stays on its own node).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireClient {
    pub id: ClientId,
    pub user: UserId,
    pub resource: Arc<str>,
    pub protocol: ClientProtocol,
}

/// A forwarded join (kept by the client's node to join again when the room's home moves).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireJoin {
    pub client: WireClient,
    pub nick: String,
    pub password: Option<String>,
    pub history: HistoryRequest,
    pub payload: Option<Arc<str>>,
    pub create: bool,
    pub instant: bool,
}

/// Every forwardable room command (all but the node-local `Shutdown`, `Handover` and
/// `DropOrigin`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WireCommand {
    Join(WireJoin),
    Leave {
        client: ClientId,
        status: Option<Arc<str>>,
    },
    Post {
        client: ClientId,
        body: String,
        extra: Option<String>,
        origin_id: String,
    },
    ChangeNick {
        client: ClientId,
        nick: String,
    },
    SetSubject {
        client: ClientId,
        subject: String,
    },
    Private {
        client: ClientId,
        to_nick: String,
        body: String,
        extra: Option<String>,
        origin_id: String,
    },
    SetRole {
        client: ClientId,
        nick: String,
        role: Role,
        reason: Option<String>,
    },
    SetAffiliation {
        client: ClientId,
        actor_user: UserId,
        user: UserId,
        affiliation: Affiliation,
        reason: Option<String>,
    },
    GetAffiliations {
        actor_user: UserId,
        affiliation: Affiliation,
    },
    GetRoles {
        actor_user: UserId,
        role: Role,
    },
    Occupants {
        actor_user: UserId,
    },
    Watch {
        watcher: ClientId,
        user: UserId,
    },
    Unwatch {
        watcher: ClientId,
    },
    GetConfig {
        actor_user: UserId,
    },
    SetConfig {
        actor_user: UserId,
        config: RoomConfig,
    },
    Destroy {
        actor_user: UserId,
        reason: String,
        alternate: Option<String>,
    },
    Invite {
        client: ClientId,
        invitee: UserId,
    },
    QueryArchive {
        actor_user: UserId,
        query: HistoryQuery,
        after_id: Option<String>,
        before_id: Option<String>,
    },
    Info,
    IsOccupant {
        client: ClientId,
        nick: String,
    },
}

/// The value of a successful reply, whatever the command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WireValue {
    Unit,
    Message(Arc<StoredMessage>),
    Affiliations(Vec<AffiliationRecord>),
    Roster(Vec<RosterEntry>),
    Snapshot(RoomSnapshot),
    Config(RoomConfig),
    Invite(InviteTicket),
    Archive(ArchivePage),
    Info(RoomInfo),
    Bool(bool),
}

/// A reply as it travels back to the client's node.
pub(crate) type WireResult = Result<WireValue, RoomError>;

/// Completes a forwarded command's typed reply channel from a [`WireResult`].
pub(crate) type ReplyFn = Box<dyn FnOnce(WireResult) + Send + Sync>;

/// A command taken apart for forwarding.
pub(crate) struct Split {
    pub wire: WireCommand,
    /// `None` for commands without an answer (leave, unwatch).
    pub reply: Option<ReplyFn>,
}

/// Wraps a typed reply channel into a [`ReplyFn`] that extracts its value with `pick`
/// (a value of another kind answers `Internal`).
fn reply_fn<T: Send + 'static>(
    reply: RoomReply<T>,
    pick: fn(WireValue) -> Option<T>,
) -> Option<ReplyFn> {
    Some(Box::new(move |r: WireResult| {
        let typed = r.and_then(|v| pick(v).ok_or(RoomError::Internal));
        let _ = reply.send(typed);
    }))
}

/// Takes `cmd` apart; node-local commands come back as `Err(cmd)`.
pub(crate) fn split(cmd: RoomCommand) -> Result<Split, Box<RoomCommand>> {
    use RoomCommand as C;
    use WireCommand as W;
    let unit = |v| matches!(v, WireValue::Unit).then_some(());
    // The sink of a join or watch stays on this node (the caller keeps it).
    let plain = |wire| Split { wire, reply: None };
    let with = |wire, reply| Split { wire, reply };
    Ok(match cmd {
        C::Join { req, reply } => Split {
            wire: W::Join(WireJoin {
                client: WireClient {
                    id: req.client.id,
                    user: req.client.user,
                    resource: req.client.resource,
                    protocol: req.client.protocol,
                },
                nick: req.nick,
                password: req.password,
                history: req.history,
                payload: req.payload,
                create: req.create,
                instant: req.instant,
            }),
            reply: reply_fn(reply, unit),
        },
        C::Leave { client, status } => plain(W::Leave { client, status }),
        C::Post {
            client,
            body,
            extra,
            origin_id,
            reply,
        } => with(
            W::Post {
                client,
                body,
                extra,
                origin_id,
            },
            reply_fn(reply, |v| match v {
                WireValue::Message(m) => Some(m),
                _ => None,
            }),
        ),
        C::ChangeNick {
            client,
            nick,
            reply,
        } => with(W::ChangeNick { client, nick }, reply_fn(reply, unit)),
        C::SetSubject {
            client,
            subject,
            reply,
        } => with(W::SetSubject { client, subject }, reply_fn(reply, unit)),
        C::Private {
            client,
            to_nick,
            body,
            extra,
            origin_id,
            reply,
        } => with(
            W::Private {
                client,
                to_nick,
                body,
                extra,
                origin_id,
            },
            reply_fn(reply, unit),
        ),
        C::SetRole {
            client,
            nick,
            role,
            reason,
            reply,
        } => with(
            W::SetRole {
                client,
                nick,
                role,
                reason,
            },
            reply_fn(reply, unit),
        ),
        C::SetAffiliation {
            client,
            actor_user,
            user,
            affiliation,
            reason,
            reply,
        } => with(
            W::SetAffiliation {
                client,
                actor_user,
                user,
                affiliation,
                reason,
            },
            reply_fn(reply, unit),
        ),
        C::GetAffiliations {
            actor_user,
            affiliation,
            reply,
        } => with(
            W::GetAffiliations {
                actor_user,
                affiliation,
            },
            reply_fn(reply, |v| match v {
                WireValue::Affiliations(a) => Some(a),
                _ => None,
            }),
        ),
        C::GetRoles {
            actor_user,
            role,
            reply,
        } => with(W::GetRoles { actor_user, role }, reply_fn(reply, roster)),
        C::Occupants { actor_user, reply } => {
            with(W::Occupants { actor_user }, reply_fn(reply, roster))
        }
        C::Watch {
            watcher,
            user,
            sink: _,
            reply,
        } => Split {
            wire: W::Watch { watcher, user },
            reply: reply_fn(reply, |v| match v {
                WireValue::Snapshot(s) => Some(s),
                _ => None,
            }),
        },
        C::Unwatch { watcher } => plain(W::Unwatch { watcher }),
        C::GetConfig { actor_user, reply } => with(
            W::GetConfig { actor_user },
            reply_fn(reply, |v| match v {
                WireValue::Config(c) => Some(c),
                _ => None,
            }),
        ),
        C::SetConfig {
            actor_user,
            config,
            reply,
        } => with(W::SetConfig { actor_user, config }, reply_fn(reply, unit)),
        C::Destroy {
            actor_user,
            reason,
            alternate,
            reply,
        } => with(
            W::Destroy {
                actor_user,
                reason,
                alternate,
            },
            reply_fn(reply, unit),
        ),
        C::Invite {
            client,
            invitee,
            reply,
        } => with(
            W::Invite { client, invitee },
            reply_fn(reply, |v| match v {
                WireValue::Invite(t) => Some(t),
                _ => None,
            }),
        ),
        C::QueryArchive {
            actor_user,
            query,
            after_id,
            before_id,
            reply,
        } => with(
            W::QueryArchive {
                actor_user,
                query,
                after_id,
                before_id,
            },
            reply_fn(reply, |v| match v {
                WireValue::Archive(p) => Some(p),
                _ => None,
            }),
        ),
        C::Info { reply } => with(
            W::Info,
            reply_fn(reply, |v| match v {
                WireValue::Info(i) => Some(i),
                _ => None,
            }),
        ),
        C::IsOccupant {
            client,
            nick,
            reply,
        } => with(
            W::IsOccupant { client, nick },
            reply_fn(reply, |v| match v {
                WireValue::Bool(b) => Some(b),
                _ => None,
            }),
        ),
        local @ (C::Shutdown { .. } | C::Handover { .. } | C::DropOrigin { .. }) => {
            return Err(Box::new(local))
        }
    })
}

fn roster(v: WireValue) -> Option<Vec<RosterEntry>> {
    match v {
        WireValue::Roster(r) => Some(r),
        _ => None,
    }
}

/// What waits for the home room's answer to a rebuilt command (`None`: nothing to answer).
pub(crate) type Answer = Option<BoxFuture<'static, WireResult>>;

/// Waits for `rx` and wraps its value with `wrap`.
fn answer<T: Send + 'static>(
    rx: oneshot::Receiver<Result<T, RoomError>>,
    wrap: fn(T) -> WireValue,
) -> Answer {
    Some(Box::pin(async move {
        match rx.await {
            Ok(r) => r.map(wrap),
            Err(_) => Err(RoomError::Internal),
        }
    }))
}

/// Turns a forwarded command back into a [`RoomCommand`] on the home node; `sink_for` makes
/// the sink through which a joining client or a watcher gets the room's events.
pub(crate) fn rebuild(
    wire: WireCommand,
    sink_for: impl FnOnce(ClientId) -> Arc<dyn EventSink>,
) -> (RoomCommand, Answer) {
    use RoomCommand as C;
    use WireCommand as W;
    macro_rules! ask {
        ($wrap:expr, |$reply:ident| $cmd:expr) => {{
            let (tx, rx) = oneshot::channel();
            let $reply = tx;
            ($cmd, answer(rx, $wrap))
        }};
    }
    let unit = |()| WireValue::Unit;
    match wire {
        W::Join(j) => ask!(unit, |reply| C::Join {
            req: JoinRequest {
                client: ClientRef {
                    id: j.client.id,
                    user: j.client.user,
                    resource: j.client.resource,
                    protocol: j.client.protocol,
                    sink: sink_for(j.client.id),
                },
                nick: j.nick,
                password: j.password,
                history: j.history,
                payload: j.payload,
                create: j.create,
                instant: j.instant,
            },
            reply,
        }),
        W::Leave { client, status } => (C::Leave { client, status }, None),
        W::Post {
            client,
            body,
            extra,
            origin_id,
        } => ask!(WireValue::Message, |reply| C::Post {
            client,
            body,
            extra,
            origin_id,
            reply,
        }),
        W::ChangeNick { client, nick } => ask!(unit, |reply| C::ChangeNick {
            client,
            nick,
            reply
        }),
        W::SetSubject { client, subject } => ask!(unit, |reply| C::SetSubject {
            client,
            subject,
            reply
        }),
        W::Private {
            client,
            to_nick,
            body,
            extra,
            origin_id,
        } => ask!(unit, |reply| C::Private {
            client,
            to_nick,
            body,
            extra,
            origin_id,
            reply,
        }),
        W::SetRole {
            client,
            nick,
            role,
            reason,
        } => ask!(unit, |reply| C::SetRole {
            client,
            nick,
            role,
            reason,
            reply,
        }),
        W::SetAffiliation {
            client,
            actor_user,
            user,
            affiliation,
            reason,
        } => ask!(unit, |reply| C::SetAffiliation {
            client,
            actor_user,
            user,
            affiliation,
            reason,
            reply,
        }),
        W::GetAffiliations {
            actor_user,
            affiliation,
        } => ask!(WireValue::Affiliations, |reply| C::GetAffiliations {
            actor_user,
            affiliation,
            reply,
        }),
        W::GetRoles { actor_user, role } => ask!(WireValue::Roster, |reply| C::GetRoles {
            actor_user,
            role,
            reply
        }),
        W::Occupants { actor_user } => {
            ask!(WireValue::Roster, |reply| C::Occupants {
                actor_user,
                reply
            })
        }
        W::Watch { watcher, user } => ask!(WireValue::Snapshot, |reply| C::Watch {
            watcher,
            user,
            sink: sink_for(watcher),
            reply,
        }),
        W::Unwatch { watcher } => (C::Unwatch { watcher }, None),
        W::GetConfig { actor_user } => {
            ask!(WireValue::Config, |reply| C::GetConfig {
                actor_user,
                reply
            })
        }
        W::SetConfig { actor_user, config } => ask!(unit, |reply| C::SetConfig {
            actor_user,
            config,
            reply
        }),
        W::Destroy {
            actor_user,
            reason,
            alternate,
        } => ask!(unit, |reply| C::Destroy {
            actor_user,
            reason,
            alternate,
            reply,
        }),
        W::Invite { client, invitee } => ask!(WireValue::Invite, |reply| C::Invite {
            client,
            invitee,
            reply
        }),
        W::QueryArchive {
            actor_user,
            query,
            after_id,
            before_id,
        } => ask!(WireValue::Archive, |reply| C::QueryArchive {
            actor_user,
            query,
            after_id,
            before_id,
            reply,
        }),
        W::Info => ask!(WireValue::Info, |reply| C::Info { reply }),
        W::IsOccupant { client, nick } => ask!(WireValue::Bool, |reply| C::IsOccupant {
            client,
            nick,
            reply
        }),
    }
}

/// Encodes a command, reply or event body.
pub(crate) fn to_bytes<T: Serialize>(value: &T) -> Result<bytes::Bytes, postcard::Error> {
    postcard::to_allocvec(value).map(bytes::Bytes::from)
}

/// Decodes a body a peer sent (hostile input: any error is returned, nothing panics).
pub(crate) fn from_bytes<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(body)
}

/// The body of a room event frame: the room's name and what happened.
pub(crate) type WireEvent = (Arc<str>, RoomEventKind);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{DeliveryFlags, RoomEvent, SinkClosed};

    struct Nowhere;
    impl EventSink for Nowhere {
        fn deliver(&self, _: &Arc<RoomEvent>, _: DeliveryFlags) -> Result<(), SinkClosed> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_post_crosses_and_its_answer_comes_back_typed() {
        let (reply, rx) = oneshot::channel();
        let cmd = RoomCommand::Post {
            client: 7,
            body: "hi".into(),
            extra: None,
            origin_id: "o1".into(),
            reply,
        };
        let Ok(split) = split(cmd) else {
            panic!("post is forwardable")
        };
        let body = to_bytes(&split.wire).expect("encodes");
        let wire: WireCommand = from_bytes(&body).expect("decodes");
        let (rebuilt, answer) = rebuild(wire, |_| Arc::new(Nowhere));
        let RoomCommand::Post {
            client,
            body,
            reply: home_reply,
            ..
        } = rebuilt
        else {
            panic!("rebuilt as a post")
        };
        assert_eq!((client, body.as_str()), (7, "hi"));
        let stored = Arc::new(StoredMessage {
            room_id: 1,
            seq: 42,
            stanza_id: "s".into(),
            origin_id: "o1".into(),
            sender: UserId("a@x".into()),
            nick: "a".into(),
            occupant_id: "id".into(),
            body: "hi".into(),
            extra: None,
            ts: 5,
        });
        let _ = home_reply.send(Ok(stored.clone()));
        let result = answer.expect("a post is answered").await;
        let bytes = to_bytes(&result).expect("encodes");
        let back: WireResult = from_bytes(&bytes).expect("decodes");
        (split.reply.expect("reply"))(back);
        assert_eq!(rx.await.expect("answered").expect("ok").seq, 42);
    }

    #[test]
    fn a_reply_of_the_wrong_kind_is_an_internal_error() {
        let (reply, mut rx) = oneshot::channel();
        let Ok(split) = split(RoomCommand::Info { reply }) else {
            panic!("info is forwardable")
        };
        (split.reply.expect("reply"))(Ok(WireValue::Bool(true)));
        assert_eq!(rx.try_recv().expect("answered"), Err(RoomError::Internal));
    }

    #[test]
    fn garbage_bodies_are_errors_not_panics() {
        for junk in [&b""[..], b"\xff\xff\xff\xff\xff", b"\x00\x01\x02"] {
            let _ = from_bytes::<WireCommand>(junk);
            let _ = from_bytes::<WireResult>(junk);
            let _ = from_bytes::<WireEvent>(junk);
        }
    }
}
