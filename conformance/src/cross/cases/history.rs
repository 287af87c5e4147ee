//! What the room keeps, read from the other protocol: a SIP post in an XMPP occupant's join
//! history (XEP-0045 §7.2.13) and in the room's archive (XEP-0313 §4), an XMPP post in the
//! SIP `#history` answer.

use super::{CrossCase, CrossCtx, Scene};
use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::suite::xml::{is_groupchat_body, is_subject, NS_DELAY, NS_MAM};
use anyhow::{bail, ensure, Result};
use palaver_dialects::xmpp::element::Element;

pub fn cases() -> Vec<CrossCase> {
    vec![
        CrossCase {
            id: "cross.history.sip-post-in-xmpp-join",
            clause: "XEP-0045 §7.2.13; RFC 3428 §7",
            description: "MUST: a SIP post answered 2xx is in the history an XMPP user gets on entering, from room/nick with <delay/> (N-A without a third --user)",
            needs_third: true,
            run: sip_post_in_join_history,
        },
        CrossCase {
            id: "cross.history.xmpp-post-in-sip-history",
            clause: "pager #history; XEP-0045 §7.4",
            description: "MUST: #history is answered 2xx and a MESSAGE from the room containing an earlier XMPP post",
            needs_third: false,
            run: xmpp_post_in_sip_history,
        },
        CrossCase {
            id: "cross.mam.sip-post-archived",
            clause: "XEP-0313 §4; RFC 3428 §7",
            description: "MUST: a SIP post answered 2xx is in the room's MAM archive as a message from room/nick (N-A unless the room advertises urn:xmpp:mam:2)",
            needs_third: false,
            run: sip_post_archived,
        },
    ]
}

fn sip_post_in_join_history(cx: CrossCtx) -> CaseFuture {
    let third = cx.x.user(2).local.clone();
    boxed(async move {
        let text = cx.unique("history");
        with_scene!(Scene::open(&cx, &[]), |s| {
            s.sip.send_ok(&s.room, &text).await?;
            let room = s.room.jid.clone();
            // The post is stored once the owner has it.
            s.owner
                .recv("the SIP post", |e| is_groupchat_body(e, &room, &text))
                .await?;
            let mut c = cx.x.login(2).await?;
            let entered = c.enter(&room, &third, "<history maxstanzas='5'/>").await;
            let got = match entered {
                Ok(_) => c.collect("the subject", |e| is_subject(e, &room)).await,
                Err(e) => Err(e),
            };
            c.close().await;
            let got = got?;
            let Some(m) = got.iter().find(|e| is_groupchat_body(e, &room, &text)) else {
                bail!("the SIP post is not in the join history");
            };
            let from = s.room.occupant(&s.nick);
            let delayed = m.get_child("delay", NS_DELAY).is_some();
            ensure!(
                m.attr("from") == Some(from.as_str()) && delayed,
                "not from {from} with <delay/>: {m}"
            );
            Ok(Outcome::Pass)
        })
    })
}

fn xmpp_post_in_sip_history(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let text = cx.unique("history");
        with_scene!(Scene::open(&cx, &[]), |s| {
            let r = s.owner.say(&s.room.jid, &text).await?;
            ensure!(r.attr("type") != Some("error"), "posting failed: {r}");
            // Read the live copy first, so the next MESSAGE with the text is the answer.
            let t = text.clone();
            s.sip
                .recv(&s.room, "the live XMPP post", move |m| m.body.contains(&t))
                .await?;
            s.sip.send_ok(&s.room, "#history").await?;
            s.sip
                .recv(&s.room, "the #history answer", move |m| {
                    m.body.contains(&text)
                })
                .await?;
            Ok(Outcome::Pass)
        })
    })
}

fn sip_post_archived(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let text = cx.unique("archived");
        with_scene!(Scene::open(&cx, &[]), |s| {
            let room = s.room.jid.clone();
            let features = s.owner.disco_features(&room).await?;
            if !features.iter().any(|f| f == NS_MAM) {
                return Ok(Outcome::NotApplicable(format!(
                    "{NS_MAM} not advertised by the room"
                )));
            }
            s.sip.send_ok(&s.room, &text).await?;
            let archived = mam_messages(s, &room).await?;
            let from = s.room.occupant(&s.nick);
            let found = archived.iter().any(|m| {
                crate::client::body_text(m) == Some(text.as_str())
                    && m.attr("from") == Some(from.as_str())
            });
            ensure!(found, "no archived message from {from} with the SIP post");
            Ok(Outcome::Pass)
        })
    })
}

/// The messages a MAM query on `room` returns (XEP-0313 §4: results, then the iq result).
async fn mam_messages(s: &mut Scene, room: &str) -> Result<Vec<Element>> {
    let id = s.owner.id();
    s.owner
        .send(&format!(
            "<iq type='set' id='{id}' to='{}'><query xmlns='{NS_MAM}' queryid='{id}'/></iq>",
            crate::suite::xml::attr(room)
        ))
        .await?;
    let got = s
        .owner
        .collect("the MAM query's result", |e| {
            e.name == "iq" && e.attr("id") == Some(id.as_str())
        })
        .await?;
    if let Some(end) = got.last() {
        ensure!(
            end.attr("type") == Some("result"),
            "MAM query refused: {end}"
        );
    }
    Ok(got
        .iter()
        .filter_map(|m| m.get_child("result", NS_MAM))
        .flat_map(|r| r.children().filter(|f| f.name == "forwarded"))
        .flat_map(|f| f.children().filter(|m| m.name == "message"))
        .cloned()
        .collect())
}
