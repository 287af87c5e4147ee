//! Odds and ends: domain disco#info (XEP-0030), history by characters, messages from
//! non-occupants, leaving by disconnecting (RFC 6121), MAM result limits (XEP-0313/XEP-0059).

use super::enter::two_in_room;
use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::xml::{attr, is_subject, presence_from, NS_DISCO_INFO, NS_MAM};
use anyhow::{bail, ensure};

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "disco.domain.info",
            clause: "XEP-0030 §3.1",
            description: "MUST: disco#info on the domain returns an identity and the disco#info feature",
            needs: &[],
            run: domain_info,
        },
        Case {
            id: "muc.history.maxchars-0",
            clause: "XEP-0045 §7.2.14",
            description: "MUST: <history maxchars='0'/> gives no history",
            needs: &[],
            run: maxchars_zero,
        },
        Case {
            id: "muc.message.non-occupant-refused",
            clause: "XEP-0045 §7.4",
            description: "MUST NOT broadcast a groupchat message from a non-occupant; an error comes back",
            needs: &[],
            run: non_occupant,
        },
        Case {
            id: "muc.exit.on-disconnect",
            clause: "RFC 6121 §4.6.3, XEP-0045 §7.14",
            description: "MUST: when an occupant's stream ends, the others get its unavailable presence",
            needs: &[],
            run: on_disconnect,
        },
        Case {
            id: "mam.room.rsm-max",
            clause: "XEP-0313 §4.3, XEP-0059 §2.1",
            description: "MUST: a MAM query with <max>1</max> returns at most one result (N-A unless advertised)",
            needs: &[],
            run: mam_max,
        },
    ]
}

fn domain_info(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut s = cx.login(0).await?;
        let domain = cx.config.domain.clone();
        let got = s
            .iq_ok("get", &domain, &format!("<query xmlns='{NS_DISCO_INFO}'/>"))
            .await;
        s.close().await;
        let got = got?;
        let q = got.get_child("query", NS_DISCO_INFO);
        ensure!(
            q.is_some_and(|q| q.children_named("identity", NS_DISCO_INFO).next().is_some()),
            "no identity in {got}"
        );
        ensure!(
            q.is_some_and(|q| q
                .children_named("feature", NS_DISCO_INFO)
                .any(|f| f.attr("var") == Some(NS_DISCO_INFO))),
            "no disco#info feature in {got}"
        );
        Ok(Outcome::Pass)
    })
}

fn maxchars_zero(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[]).await?;
        a.say(&room, "before bob").await?;
        let mut b = cx.login(1).await?;
        let r = async {
            let entered = b.enter(&room, "bob", "<history maxchars='0'/>").await?;
            ensure!(
                entered.last().is_some_and(|p| p.attr("type").is_none()),
                "bob could not enter"
            );
            b.collect("the subject", |e| is_subject(e, &room)).await
        }
        .await;
        a.close().await;
        b.close().await;
        let got = r?;
        let n = got
            .iter()
            .filter(|e| e.name == "message" && crate::client::body_text(e).is_some())
            .count();
        ensure!(n == 0, "{n} history messages with maxchars=0");
        Ok(Outcome::Pass)
    })
}

fn non_occupant(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room, _) = two_in_room(&cx).await?;
        let mut c = cx.login(2).await?;
        c.send(&format!(
            "<message type='groupchat' to='{}' id='outsider'><body>let me in</body></message>",
            attr(&room)
        ))
        .await?;
        let answer = c
            .recv("the refusal", |e| {
                e.name == "message" && e.attr("id") == Some("outsider")
            })
            .await;
        // bob must not see it: a marker from alice afterwards proves the order.
        let mut a = a;
        let marker = a.say(&room, "marker").await;
        let seen = b
            .collect("alice's marker", |e| {
                crate::suite::xml::is_groupchat_body(e, &room, "marker")
            })
            .await;
        a.close().await;
        b.close().await;
        c.close().await;
        let answer = answer?;
        marker?;
        ensure!(
            answer.attr("type") == Some("error"),
            "not an error: {answer}"
        );
        ensure!(
            !seen?
                .iter()
                .any(|e| crate::client::body_text(e) == Some("let me in")),
            "the non-occupant's message was broadcast"
        );
        Ok(Outcome::Pass)
    })
}

fn on_disconnect(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, b, room, _) = two_in_room(&cx).await?;
        b.close().await;
        let bob = format!("{room}/bob");
        let got = a
            .recv("bob's unavailable", |e| {
                presence_from(e, &bob) && e.attr("type") == Some("unavailable")
            })
            .await;
        a.close().await;
        got?;
        Ok(Outcome::Pass)
    })
}

fn mam_max(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[]).await?;
        let has = a.disco_features(&room).await?.iter().any(|f| f == NS_MAM);
        if !has {
            a.close().await;
            return Ok(Outcome::NotApplicable(format!(
                "{NS_MAM} not advertised by the room"
            )));
        }
        let r = async {
            for body in ["one", "two", "three"] {
                a.say(&room, body).await?;
            }
            let id = a.id();
            a.send(&format!(
                "<iq type='set' id='{id}' to='{}'><query xmlns='{NS_MAM}' queryid='{id}'><set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set></query></iq>",
                attr(&room)
            ))
            .await?;
            a.collect("the MAM answer", |e| e.name == "iq" && e.attr("id") == Some(id.as_str()))
                .await
        }
        .await;
        a.close().await;
        let got = r?;
        let Some(end) = got.last() else {
            bail!("no answer");
        };
        ensure!(end.attr("type") == Some("result"), "refused: {end}");
        let n = got
            .iter()
            .filter(|m| m.get_child("result", NS_MAM).is_some())
            .count();
        ensure!(n <= 1, "{n} results for max=1");
        ensure!(n == 1, "no result for max=1 with three archived messages");
        Ok(Outcome::Pass)
    })
}
