//! Entering a room (XEP-0045 §7.2, §10.1): creation, the self-presence and its order, the
//! subject, discussion history, and the errors on entering.

use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::session::Session;
use crate::suite::xml::{
    has_status, is_error, is_groupchat_body, is_subject, item, presence_from, statuses, NS_DELAY,
    NS_MUC_ADMIN,
};
use anyhow::{bail, ensure, Result};
use palaver_dialects::xmpp::element::Element;

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "muc.create.instant-201",
            clause: "XEP-0045 §10.1.2",
            description: "MUST: entering a new room gives status 201; an empty form submit makes an instant room others can enter",
            needs: &[],
            run: create_instant,
        },
        Case {
            id: "muc.join.self-presence-110",
            clause: "XEP-0045 §7.2.2",
            description: "MUST: the self-presence carries status 110 and an item with affiliation and role",
            needs: &[],
            run: self_presence_110,
        },
        Case {
            id: "muc.join.occupants-before-self",
            clause: "XEP-0045 §7.2.2",
            description: "MUST: the presences of the existing occupants arrive before the self-presence",
            needs: &[],
            run: occupants_before_self,
        },
        Case {
            id: "muc.join.others-notified",
            clause: "XEP-0045 §7.2.2",
            description: "MUST: existing occupants receive the new occupant's presence (without 110)",
            needs: &[],
            run: others_notified,
        },
        Case {
            id: "muc.join.subject-last",
            clause: "XEP-0045 §7.2.15",
            description: "MUST: a subject message (<subject/>, no <body/>) follows the presences and the history",
            needs: &[],
            run: subject_last,
        },
        Case {
            id: "muc.history.maxstanzas-0",
            clause: "XEP-0045 §7.2.14",
            description: "MUST: <history maxstanzas='0'/> gives no history",
            needs: &[],
            run: history_none,
        },
        Case {
            id: "muc.history.maxstanzas-2",
            clause: "XEP-0045 §7.2.14",
            description: "MUST: <history maxstanzas='2'/> gives the last two messages, before the subject",
            needs: &[],
            run: history_two,
        },
        Case {
            id: "muc.history.delay",
            clause: "XEP-0045 §7.2.13, XEP-0203",
            description: "MUST: history messages carry <delay xmlns='urn:xmpp:delay'/> with from = the room JID",
            needs: &[],
            run: history_delay,
        },
        Case {
            id: "muc.join.nick-conflict",
            clause: "XEP-0045 §7.2.8",
            description: "MUST: entering with a nickname in use is refused with <conflict/>",
            needs: &[],
            run: nick_conflict,
        },
        Case {
            id: "muc.join.members-only",
            clause: "XEP-0045 §7.2.6",
            description: "MUST: a non-member entering a members-only room gets <registration-required/>",
            needs: &[],
            run: members_only,
        },
        Case {
            id: "muc.join.banned",
            clause: "XEP-0045 §7.2.7",
            description: "MUST: a banned user entering gets <forbidden/>",
            needs: &[],
            run: banned,
        },
    ]
}

/// alice creates an instant room and bob enters it; returns both sessions and the room, and
/// what bob received up to his self-presence.
pub async fn two_in_room(cx: &Ctx) -> Result<(Session, Session, String, Vec<Element>)> {
    let mut a = cx.login(0).await?;
    let room = cx.room();
    a.create(&room, "alice", &[]).await?;
    let mut b = cx.login(1).await?;
    let got = b.join(&room, "bob").await?;
    Ok((a, b, room, got))
}

fn create_instant(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, b, _, got) = two_in_room(&cx).await?;
        let me = got.last().map(|p| has_status(p, "110")).unwrap_or(false);
        a.close().await;
        b.close().await;
        ensure!(me, "the second occupant got no self-presence with 110");
        Ok(Outcome::Pass)
    })
}

fn self_presence_110(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, b, room, got) = two_in_room(&cx).await?;
        a.close().await;
        b.close().await;
        let Some(me) = got.last() else {
            bail!("no self-presence");
        };
        ensure!(
            presence_from(me, &format!("{room}/bob")) && me.attr("type").is_none(),
            "not an available self-presence: {me}"
        );
        ensure!(has_status(me, "110"), "no status 110 in {me}");
        let it = item(me);
        ensure!(
            it.is_some_and(|i| i.attr("affiliation").is_some() && i.attr("role").is_some()),
            "no item with affiliation and role in {me}"
        );
        Ok(Outcome::Pass)
    })
}

fn occupants_before_self(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, b, room, got) = two_in_room(&cx).await?;
        a.close().await;
        b.close().await;
        let alice = format!("{room}/alice");
        ensure!(
            got.iter().any(|e| presence_from(e, &alice)),
            "no presence of {alice} before the self-presence"
        );
        Ok(Outcome::Pass)
    })
}

fn others_notified(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, b, room, _) = two_in_room(&cx).await?;
        let bob = format!("{room}/bob");
        let p = a.recv("bob's presence", |e| presence_from(e, &bob)).await?;
        a.close().await;
        b.close().await;
        ensure!(p.attr("type").is_none(), "not available: {p}");
        ensure!(!has_status(&p, "110"), "110 sent to another occupant: {p}");
        ensure!(item(&p).is_some(), "no muc#user item: {p}");
        Ok(Outcome::Pass)
    })
}

fn subject_last(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room, joined) = two_in_room(&cx).await?;
        let subject = b
            .collect("the subject message", |e| is_subject(e, &room))
            .await;
        a.close().await;
        b.close().await;
        subject?;
        ensure!(
            !joined.iter().any(|e| is_subject(e, &room)),
            "the subject came before the self-presence"
        );
        Ok(Outcome::Pass)
    })
}

/// alice creates a room and posts `n` messages; bob enters with `history`; returns what bob
/// got between his self-presence and the subject (excluded), and the room.
async fn history(cx: &Ctx, n: usize, history: &str) -> Result<(Vec<Element>, String)> {
    let mut a = cx.login(0).await?;
    let room = cx.room();
    a.create(&room, "alice", &[]).await?;
    for i in 1..=n {
        let r = a.say(&room, &format!("history {i}")).await?;
        ensure!(r.attr("type") != Some("error"), "posting failed: {r}");
    }
    let mut b = cx.login(1).await?;
    let entered = b.enter(&room, "bob", history).await?;
    ensure!(
        entered
            .last()
            .is_some_and(|p| p.attr("type") != Some("error")),
        "bob could not enter"
    );
    let got = b
        .collect("the subject message", |e| is_subject(e, &room))
        .await?;
    a.close().await;
    b.close().await;
    let messages = got
        .into_iter()
        .filter(|e| e.name == "message" && crate::client::body_text(e).is_some())
        .collect();
    Ok((messages, room))
}

fn history_none(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (got, _) = history(&cx, 2, "<history maxstanzas='0'/>").await?;
        ensure!(
            got.is_empty(),
            "{} history messages with maxstanzas=0",
            got.len()
        );
        Ok(Outcome::Pass)
    })
}

fn history_two(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (got, room) = history(&cx, 3, "<history maxstanzas='2'/>").await?;
        ensure!(
            got.len() == 2,
            "{} history messages with maxstanzas=2",
            got.len()
        );
        ensure!(
            is_groupchat_body(&got[0], &room, "history 2")
                && is_groupchat_body(&got[1], &room, "history 3"),
            "not the last two messages in order: {} / {}",
            got[0],
            got[1]
        );
        Ok(Outcome::Pass)
    })
}

fn history_delay(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (got, room) = history(&cx, 1, "").await?;
        let Some(m) = got.first() else {
            bail!("no history message");
        };
        let Some(d) = m.get_child("delay", NS_DELAY) else {
            bail!("no <delay/> in {m}");
        };
        ensure!(d.attr("stamp").is_some(), "<delay/> without stamp: {m}");
        ensure!(
            d.attr("from")
                .is_some_and(|f| f.eq_ignore_ascii_case(&room)),
            "<delay/> from is not the room JID: {m}"
        );
        Ok(Outcome::Pass)
    })
}

fn nick_conflict(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room, _) = two_in_room(&cx).await?;
        let mut c = cx.login(2).await?;
        let got = c.enter(&room, "bob", "").await;
        a.close().await;
        b.send("<presence type='unavailable'/>").await.ok();
        b.close().await;
        c.close().await;
        let last = got?.pop();
        ensure!(
            last.as_ref().is_some_and(|p| is_error(p, "conflict")),
            "expected <conflict/>, got {last:?}"
        );
        Ok(Outcome::Pass)
    })
}

fn members_only(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[("muc#roomconfig_membersonly", "1")])
            .await?;
        let mut b = cx.login(1).await?;
        let got = b.enter(&room, "bob", "").await;
        a.close().await;
        b.close().await;
        let last = got?.pop();
        ensure!(
            last.as_ref()
                .is_some_and(|p| is_error(p, "registration-required")),
            "expected <registration-required/>, got {last:?}"
        );
        Ok(Outcome::Pass)
    })
}

fn banned(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[]).await?;
        let bob = cx.user(1).jid.clone();
        a.iq_ok(
            "set",
            &room,
            &format!(
                "<query xmlns='{NS_MUC_ADMIN}'><item affiliation='outcast' jid='{}'/></query>",
                crate::suite::xml::attr(&bob)
            ),
        )
        .await?;
        let mut b = cx.login(1).await?;
        let got = b.enter(&room, "bob", "").await;
        a.close().await;
        b.close().await;
        let last = got?.pop();
        ensure!(
            last.as_ref().is_some_and(|p| is_error(p, "forbidden")),
            "expected <forbidden/>, got {last:?} (statuses {:?})",
            last.as_ref().map(statuses)
        );
        Ok(Outcome::Pass)
    })
}
