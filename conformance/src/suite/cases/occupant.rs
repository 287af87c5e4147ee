//! Occupant use cases (XEP-0045 §7.4–§7.14): groupchat messages, private messages, nickname
//! changes, exiting.

use super::enter::two_in_room;
use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::xml::{attr, has_status, is_error, is_groupchat_body, item, presence_from};
use anyhow::ensure;

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "muc.message.reflected-same-id",
            clause: "XEP-0045 §7.4",
            description: "MUST: a groupchat message is reflected to its sender with the same id",
            needs: &[],
            run: reflected_same_id,
        },
        Case {
            id: "muc.message.broadcast",
            clause: "XEP-0045 §7.4",
            description: "MUST: other occupants receive it type groupchat from room/nick of the sender",
            needs: &[],
            run: broadcast,
        },
        Case {
            id: "muc.private.delivered",
            clause: "XEP-0045 §7.5",
            description: "MUST: a private message to room/nick reaches that occupant from room/sender-nick",
            needs: &[],
            run: private_delivered,
        },
        Case {
            id: "muc.private.unknown-nick",
            clause: "XEP-0045 §7.5",
            description: "MUST: a private message to a nick not in the room gets <item-not-found/>",
            needs: &[],
            run: private_unknown,
        },
        Case {
            id: "muc.nick.change-303",
            clause: "XEP-0045 §7.6",
            description: "MUST: a nick change gives unavailable with 303 and the new nick, then the new presence",
            needs: &[],
            run: nick_change,
        },
        Case {
            id: "muc.nick.change-conflict",
            clause: "XEP-0045 §7.6",
            description: "MUST: changing to a nick in use is refused with <conflict/>",
            needs: &[],
            run: nick_change_conflict,
        },
        Case {
            id: "muc.exit.self-unavailable-110",
            clause: "XEP-0045 §7.14",
            description: "MUST: on exit the occupant gets unavailable with 110 and the others get unavailable",
            needs: &[],
            run: exit,
        },
    ]
}

fn reflected_same_id(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, b, room, _) = two_in_room(&cx).await?;
        a.send(&format!(
            "<message type='groupchat' to='{}' id='refl-1'><body>same id</body></message>",
            attr(&room)
        ))
        .await?;
        let got = a
            .recv("the reflection", |e| is_groupchat_body(e, &room, "same id"))
            .await;
        a.close().await;
        b.close().await;
        let m = got?;
        ensure!(
            m.attr("from") == Some(format!("{room}/alice").as_str()),
            "reflected from {:?}",
            m.attr("from")
        );
        ensure!(
            m.attr("id") == Some("refl-1"),
            "reflected with id {:?}",
            m.attr("id")
        );
        Ok(Outcome::Pass)
    })
}

fn broadcast(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = two_in_room(&cx).await?;
        a.say(&room, "to everyone").await?;
        let got = b
            .recv("alice's message", |e| {
                is_groupchat_body(e, &room, "to everyone")
            })
            .await;
        a.close().await;
        b.close().await;
        let m = got?;
        ensure!(
            m.attr("from") == Some(format!("{room}/alice").as_str()),
            "from {:?}",
            m.attr("from")
        );
        Ok(Outcome::Pass)
    })
}

fn private_delivered(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = two_in_room(&cx).await?;
        a.send(&format!(
            "<message type='chat' to='{}/bob' id='pm-1'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>",
            attr(&room)
        ))
        .await?;
        let got = b
            .recv("the private message", |e| {
                e.name == "message" && crate::client::body_text(e) == Some("psst")
            })
            .await;
        a.close().await;
        b.close().await;
        let m = got?;
        ensure!(
            m.attr("from") == Some(format!("{room}/alice").as_str()),
            "from {:?}",
            m.attr("from")
        );
        ensure!(m.attr("type") == Some("chat"), "type {:?}", m.attr("type"));
        Ok(Outcome::Pass)
    })
}

fn private_unknown(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, b, room, _) = two_in_room(&cx).await?;
        a.send(&format!(
            "<message type='chat' to='{}/nobody-here' id='pm-2'><body>hello?</body></message>",
            attr(&room)
        ))
        .await?;
        let got = a
            .recv("the error", |e| {
                e.name == "message" && e.attr("id") == Some("pm-2")
            })
            .await;
        a.close().await;
        b.close().await;
        let m = got?;
        ensure!(
            is_error(&m, "item-not-found"),
            "expected <item-not-found/>: {m}"
        );
        Ok(Outcome::Pass)
    })
}

fn nick_change(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = two_in_room(&cx).await?;
        let old = format!("{room}/bob");
        let new = format!("{room}/robert");
        b.send(&format!("<presence to='{}'/>", attr(&new))).await?;
        let gone = a
            .recv("bob's unavailable", |e| {
                presence_from(e, &old) && e.attr("type") == Some("unavailable")
            })
            .await;
        let back = a
            .recv("robert's presence", |e| presence_from(e, &new))
            .await;
        let mine = b
            .recv("bob's own unavailable", |e| {
                presence_from(e, &old) && e.attr("type") == Some("unavailable")
            })
            .await;
        a.close().await;
        b.close().await;
        let (gone, back, mine) = (gone?, back?, mine?);
        ensure!(has_status(&gone, "303"), "no 303: {gone}");
        ensure!(
            item(&gone).and_then(|i| i.attr("nick")) == Some("robert"),
            "no item nick='robert': {gone}"
        );
        ensure!(
            back.attr("type").is_none(),
            "new presence not available: {back}"
        );
        ensure!(
            has_status(&mine, "303") && has_status(&mine, "110"),
            "own unavailable lacks 303 and 110: {mine}"
        );
        Ok(Outcome::Pass)
    })
}

fn nick_change_conflict(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room, _) = two_in_room(&cx).await?;
        let target = format!("{room}/alice");
        b.send(&format!("<presence to='{}'/>", attr(&target)))
            .await?;
        let got = b
            .recv("the conflict", |e| {
                e.name == "presence" && e.attr("type") == Some("error")
            })
            .await;
        a.close().await;
        b.close().await;
        let p = got?;
        ensure!(is_error(&p, "conflict"), "expected <conflict/>: {p}");
        Ok(Outcome::Pass)
    })
}

fn exit(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = two_in_room(&cx).await?;
        let bob = format!("{room}/bob");
        b.send(&format!(
            "<presence type='unavailable' to='{}'/>",
            attr(&bob)
        ))
        .await?;
        let mine = b
            .recv("the self unavailable", |e| {
                presence_from(e, &bob) && e.attr("type") == Some("unavailable")
            })
            .await;
        let theirs = a
            .recv("bob's unavailable", |e| {
                presence_from(e, &bob) && e.attr("type") == Some("unavailable")
            })
            .await;
        a.close().await;
        b.close().await;
        let (mine, _) = (mine?, theirs?);
        ensure!(has_status(&mine, "110"), "no 110 in {mine}");
        Ok(Outcome::Pass)
    })
}
