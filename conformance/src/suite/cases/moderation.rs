//! Moderator (XEP-0045 §8) and admin (§9) use cases: kick, voice in moderated rooms, ban,
//! member list.

use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::session::Session;
use crate::suite::xml::{attr, from_room, has_status, is_error, item, presence_from, NS_MUC_ADMIN};
use anyhow::{bail, ensure, Result};

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "muc.moderator.kick-307",
            clause: "XEP-0045 §8.2",
            description: "MUST: a kicked occupant gets unavailable with 307 (and 110); the others see 307",
            needs: &[],
            run: kick,
        },
        Case {
            id: "muc.moderator.visitor-cannot-post",
            clause: "XEP-0045 §7.4, §8.3",
            description: "MUST: in a moderated room a visitor's groupchat message is refused with <forbidden/>",
            needs: &[],
            run: visitor_cannot_post,
        },
        Case {
            id: "muc.moderator.grant-voice",
            clause: "XEP-0045 §8.3",
            description: "MUST: a visitor given voice becomes participant and can post",
            needs: &[],
            run: grant_voice,
        },
        Case {
            id: "muc.admin.ban-301",
            clause: "XEP-0045 §9.1",
            description: "MUST: banning an occupant removes them with unavailable and status 301",
            needs: &[],
            run: ban,
        },
        Case {
            id: "muc.admin.member-list",
            clause: "XEP-0045 §9.3, §9.5",
            description: "MUST: a user granted membership appears in the member list",
            needs: &[],
            run: member_list,
        },
    ]
}

async fn admin(s: &mut Session, room: &str, item: &str) -> Result<()> {
    s.iq_ok(
        "set",
        room,
        &format!("<query xmlns='{NS_MUC_ADMIN}'>{item}</query>"),
    )
    .await?;
    Ok(())
}

fn kick(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = super::enter::two_in_room(&cx).await?;
        let r = admin(&mut a, &room, "<item nick='bob' role='none'/>").await;
        let bob = format!("{room}/bob");
        let unavailable = |e: &palaver_dialects::xmpp::element::Element| {
            presence_from(e, &bob) && e.attr("type") == Some("unavailable")
        };
        let mine = b.recv("bob's removal", unavailable).await;
        let theirs = a.recv("bob's removal", unavailable).await;
        a.close().await;
        b.close().await;
        r?;
        let (mine, theirs) = (mine?, theirs?);
        ensure!(
            has_status(&mine, "307") && has_status(&mine, "110"),
            "kicked occupant's presence lacks 307/110: {mine}"
        );
        ensure!(
            has_status(&theirs, "307"),
            "no 307 for the others: {theirs}"
        );
        Ok(Outcome::Pass)
    })
}

/// alice creates a moderated room, bob enters and is a visitor; returns the sessions and room.
/// Visitor is the default role of a non-member there (§5.1.2), but only a SHOULD: a server
/// that makes him a participant gets his voice revoked by alice (§8.4) first.
async fn moderated(cx: &Ctx) -> Result<(Session, Session, String)> {
    let mut a = cx.login(0).await?;
    let room = cx.room();
    a.create(&room, "alice", &[("muc#roomconfig_moderatedroom", "1")])
        .await?;
    let mut b = cx.login(1).await?;
    let got = b.join(&room, "bob").await?;
    let role = got
        .last()
        .and_then(item)
        .and_then(|i| i.attr("role"))
        .map(str::to_string);
    match role.as_deref() {
        Some("visitor") => {}
        Some("participant") => {
            admin(&mut a, &room, "<item nick='bob' role='visitor'/>").await?;
            let bob = format!("{room}/bob");
            b.recv("bob's voice revoked", |e| {
                presence_from(e, &bob) && item(e).and_then(|i| i.attr("role")) == Some("visitor")
            })
            .await?;
        }
        other => bail!("a non-member entered the moderated room with role {other:?}"),
    }
    Ok((a, b, room))
}

fn visitor_cannot_post(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room) = moderated(&cx).await?;
        let got = b.say(&room, "may I?").await;
        a.close().await;
        b.close().await;
        let m = got?;
        ensure!(is_error(&m, "forbidden"), "expected <forbidden/>: {m}");
        Ok(Outcome::Pass)
    })
}

fn grant_voice(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room) = moderated(&cx).await?;
        let r = admin(&mut a, &room, "<item nick='bob' role='participant'/>").await;
        let bob = format!("{room}/bob");
        let p = b
            .recv("bob's new role", |e| {
                presence_from(e, &bob)
                    && item(e).and_then(|i| i.attr("role")) == Some("participant")
            })
            .await;
        let posted = b.say(&room, "thanks").await;
        a.close().await;
        b.close().await;
        r?;
        p?;
        let m = posted?;
        ensure!(m.attr("type") != Some("error"), "still refused: {m}");
        Ok(Outcome::Pass)
    })
}

fn ban(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = super::enter::two_in_room(&cx).await?;
        let bob_jid = cx.user(1).jid.clone();
        let r = admin(
            &mut a,
            &room,
            &format!("<item affiliation='outcast' jid='{}'/>", attr(&bob_jid)),
        )
        .await;
        let bob = format!("{room}/bob");
        let mine = b
            .recv("bob's removal", |e| {
                presence_from(e, &bob) && e.attr("type") == Some("unavailable")
            })
            .await;
        a.close().await;
        b.close().await;
        r?;
        let mine = mine?;
        ensure!(has_status(&mine, "301"), "no 301: {mine}");
        Ok(Outcome::Pass)
    })
}

fn member_list(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[]).await?;
        let bob_jid = cx.user(1).jid.clone();
        admin(
            &mut a,
            &room,
            &format!("<item affiliation='member' jid='{}'/>", attr(&bob_jid)),
        )
        .await?;
        let list = a
            .iq_ok(
                "get",
                &room,
                &format!("<query xmlns='{NS_MUC_ADMIN}'><item affiliation='member'/></query>"),
            )
            .await;
        a.close().await;
        let list = list?;
        ensure!(
            from_room(&list, &room) || list.attr("from").is_some(),
            "no from"
        );
        let listed = list.get_child("query", NS_MUC_ADMIN).is_some_and(|q| {
            q.children_named("item", NS_MUC_ADMIN).any(|i| {
                i.attr("jid")
                    .is_some_and(|j| j.eq_ignore_ascii_case(&bob_jid))
                    && i.attr("affiliation") == Some("member")
            })
        });
        ensure!(listed, "{bob_jid} not in the member list: {list}");
        Ok(Outcome::Pass)
    })
}
