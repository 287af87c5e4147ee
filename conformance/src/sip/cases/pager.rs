//! The pager-mode group-chat convention: no RFC defines group-chat commands sent as MESSAGE
//! bodies, so these cases follow Kamailio imc's `#commands` as palaver documents them
//! (docs/sip.md): `#join [nick]`, posts fanned out from the room URI with the author's nick,
//! `#history`, `#leave`, `#members`, `#topic`, `#destroy`; a post is acknowledged after it is
//! stored; a nick in use and posts from non-occupants are refused.

use crate::sip::room::{arrives, from_room, in_room, is_2xx, post_misses, send_ok};
use crate::sip::{SCase, SCtx};
use crate::suite::case::{boxed, CaseFuture, Outcome};
use anyhow::ensure;

/// The clause of every case here.
const IMC: &str = "Kamailio imc convention (docs/sip.md)";

pub fn cases() -> Vec<SCase> {
    vec![
        SCase {
            id: "sip.pager.join-answered",
            clause: IMC,
            description: "MUST (convention): `#join` to a room is answered 2xx and the joiner gets a MESSAGE from the room URI",
            run: join_answered,
        },
        SCase {
            id: "sip.pager.post-fanout-nick",
            clause: IMC,
            description: "MUST (convention): an occupant's post reaches the other occupant from the room URI, naming the author's nick (From display name or `nick:` prefix)",
            run: post_fanout,
        },
        SCase {
            id: "sip.pager.stored-then-2xx",
            clause: IMC,
            description: "MUST (convention): a post answered 2xx is already in the history: a user joining right after gets it from `#history` (or the join answer)",
            run: stored_then_2xx,
        },
        SCase {
            id: "sip.pager.leave",
            clause: IMC,
            description: "MUST (convention): `#leave` is answered 2xx and the room's later posts no longer reach the leaver",
            run: leave,
        },
        SCase {
            id: "sip.pager.nick-conflict",
            clause: IMC,
            description: "MUST (convention): `#join` with the nick of an occupant (the creator's user name) is refused: a non-2xx answer or no room traffic afterwards",
            run: nick_conflict,
        },
        SCase {
            id: "sip.pager.members-lists-both",
            clause: IMC,
            description: "MUST (convention): `#members` is answered by a MESSAGE from the room naming both occupants' nicks",
            run: members,
        },
        SCase {
            id: "sip.pager.not-joined-refused",
            clause: IMC,
            description: "MUST (convention): a post from a user who has not joined reaches no occupant and is refused (non-2xx) or answered by a MESSAGE from the room",
            run: not_joined,
        },
        SCase {
            id: "sip.pager.topic",
            clause: IMC,
            description: "MUST (convention): the creator's `#topic TEXT` is answered 2xx and `#topic` from a user who joined after shows TEXT",
            run: topic,
        },
        SCase {
            id: "sip.pager.destroy",
            clause: IMC,
            description: "MUST (convention): the creator's `#destroy` is answered 2xx; a post to the room afterwards is not accepted",
            run: destroy,
        },
    ]
}

fn join_answered(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |_cx, _a, b, room| {
        Box::pin(async move {
            send_ok(b, &room.uri, "#join").await?;
            let uri = room.uri.clone();
            b.wait_message("a MESSAGE from the room", |m| m.from == uri)
                .await?;
            Ok(Outcome::Pass)
        })
    }))
}

/// A nick no other case uses.
fn nick(what: &str) -> String {
    format!("{what}{:06x}", rand::random::<u32>() >> 8)
}

fn post_fanout(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |cx, a, b, room| {
        Box::pin(async move {
            let n = nick("bee");
            send_ok(b, &room.uri, &format!("#join {n}")).await?;
            let text = cx.unique("fanout");
            send_ok(b, &room.uri, &text).await?;
            let got = from_room(a, room, &text).await?;
            let named = got.display.as_deref() == Some(n.as_str())
                || got.body.trim_start().starts_with(&format!("{n}:"));
            ensure!(
                named,
                "the post does not name {n}: display {:?}, body {:?}",
                got.display,
                got.body
            );
            Ok(Outcome::Pass)
        })
    }))
}

fn stored_then_2xx(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |cx, a, b, room| {
        Box::pin(async move {
            let text = cx.unique("stored");
            send_ok(a, &room.uri, &text).await?;
            // bob was not in the room when the post was made: only the history can show it.
            send_ok(b, &room.uri, "#join").await?;
            send_ok(b, &room.uri, "#history").await?;
            from_room(b, room, &text).await?;
            Ok(Outcome::Pass)
        })
    }))
}

fn leave(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, true, |cx, a, b, room| {
        Box::pin(async move {
            send_ok(b, &room.uri, "#leave").await?;
            ensure!(
                post_misses(cx, a, b, room).await?,
                "a post reached the leaver"
            );
            Ok(Outcome::Pass)
        })
    }))
}

fn nick_conflict(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |cx, a, b, room| {
        Box::pin(async move {
            // The creator's nick is its user name (`#join`'s default).
            let taken = cx.user(0).local.clone();
            let code = b.message(&room.uri, &format!("#join {taken}")).await?;
            ensure!(
                !is_2xx(code) || post_misses(cx, a, b, room).await?,
                "#join with a nick in use was answered {code} and the user is in the room"
            );
            Ok(Outcome::Pass)
        })
    }))
}

fn members(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |cx, a, b, room| {
        Box::pin(async move {
            let (na, nb) = (cx.user(0).local.clone(), nick("bee"));
            send_ok(b, &room.uri, &format!("#join {nb}")).await?;
            send_ok(a, &room.uri, "#members").await?;
            let uri = room.uri.clone();
            a.wait_message("the #members answer naming both", |m| {
                m.from == uri && m.body.contains(&na) && m.body.contains(&nb)
            })
            .await?;
            Ok(Outcome::Pass)
        })
    }))
}

fn not_joined(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |cx, a, b, room| {
        Box::pin(async move {
            let text = cx.unique("outsider");
            let code = b.message(&room.uri, &text).await?;
            ensure!(
                !arrives(a, room, &text).await?,
                "the post reached an occupant"
            );
            if is_2xx(code) {
                let uri = room.uri.clone();
                b.wait_message("a MESSAGE from the room refusing the post", |m| {
                    m.from == uri
                })
                .await?;
            }
            Ok(Outcome::Pass)
        })
    }))
}

fn topic(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, false, |cx, a, b, room| {
        Box::pin(async move {
            let text = cx.unique("topic");
            send_ok(a, &room.uri, &format!("#topic {text}")).await?;
            send_ok(b, &room.uri, "#join").await?;
            let uri = room.uri.clone();
            b.wait_message("the #join answer", |m| m.from == uri)
                .await?;
            b.clear_inbound();
            send_ok(b, &room.uri, "#topic").await?;
            from_room(b, room, &text).await?;
            Ok(Outcome::Pass)
        })
    }))
}

fn destroy(cx: SCtx) -> CaseFuture {
    boxed(in_room(cx, true, |cx, a, b, room| {
        Box::pin(async move {
            send_ok(a, &room.uri, "#destroy").await?;
            let code = b.message(&room.uri, &cx.unique("after destroy")).await?;
            ensure!(
                !is_2xx(code),
                "a post to the destroyed room was answered {code}"
            );
            Ok(Outcome::Pass)
        })
    }))
}
