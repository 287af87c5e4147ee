//! Who is in the room, seen from both sides: a SIP `#join` as XMPP presence (XEP-0045
//! §7.2.2), the SIP joiner's welcome and `#members` naming XMPP occupants, an XMPP entry told
//! to the SIP occupant, `#leave` as unavailable presence (§7.14) and the RFC 4575 roster, in
//! full and as it changes.

use super::{CrossCase, CrossCtx, Scene};
use crate::cross::pager::conference_users;
use crate::cross::room::{self, unavailable};
use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::suite::xml::{has_status, item};
use anyhow::ensure;

pub fn cases() -> Vec<CrossCase> {
    vec![
        CrossCase {
            id: "cross.join.sip-seen-by-xmpp",
            clause: "XEP-0045 §7.2.2; pager #join",
            description: "MUST: after a SIP #join answered 2xx, XMPP occupants get an available presence from room/nick with a muc#user item (no 110)",
            needs_third: false,
            run: sip_seen_by_xmpp,
        },
        CrossCase {
            id: "cross.join.welcome-lists-xmpp",
            clause: "pager #join; XEP-0045 §7.2.2",
            description: "SHOULD: the SIP joiner gets a MESSAGE from the room URI naming the XMPP occupant already there",
            needs_third: false,
            run: welcome_lists_xmpp,
        },
        CrossCase {
            id: "cross.members.lists-both",
            clause: "pager #members; XEP-0045 §7.2.2",
            description: "MUST: #members is answered 2xx and a MESSAGE from the room naming both the XMPP and the SIP occupant",
            needs_third: false,
            run: members_lists_both,
        },
        CrossCase {
            id: "cross.join.xmpp-seen-by-sip",
            clause: "XEP-0045 §7.2.2; pager notices",
            description: "SHOULD: when an XMPP user enters, the SIP occupant gets a MESSAGE from the room naming the new nick (N-A without a third --user)",
            needs_third: true,
            run: xmpp_seen_by_sip,
        },
        CrossCase {
            id: "cross.leave.sip-unavailable",
            clause: "XEP-0045 §7.14; pager #leave",
            description: "MUST: after a SIP #leave answered 2xx, XMPP occupants get an unavailable presence from room/nick",
            needs_third: false,
            run: sip_leave_unavailable,
        },
        CrossCase {
            id: "cross.conference.lists-xmpp",
            clause: "RFC 4575 §3.2, §5.6; XEP-0045 §7.2.2",
            description: "MUST: a conference SUBSCRIBE to the room URI gets a NOTIFY whose conference-info has a <user> for the XMPP occupant",
            needs_third: false,
            run: conference_lists_xmpp,
        },
        CrossCase {
            id: "cross.conference.xmpp-join-notified",
            clause: "RFC 4575 §3.6, §5.1; XEP-0045 §7.2.2",
            description: "MUST: a conference subscriber to the room gets a NOTIFY with a <user> for an XMPP user who enters (N-A without a third --user)",
            needs_third: true,
            run: conference_xmpp_join,
        },
    ]
}

fn sip_seen_by_xmpp(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            let Some(p) = &s.seen else {
                anyhow::bail!("no presence seen");
            };
            ensure!(!has_status(p, "110"), "110 sent to another occupant: {p}");
            ensure!(item(p).is_some(), "no muc#user item: {p}");
            Ok(Outcome::Pass)
        })
    })
}

fn welcome_lists_xmpp(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            let got = s
                .sip
                .recv(&s.room, "a MESSAGE naming the owner", |m| {
                    m.body.contains(room::OWNER)
                })
                .await;
            ensure!(
                got.is_ok(),
                "no MESSAGE from the room named {} after #join",
                room::OWNER
            );
            Ok(Outcome::Pass)
        })
    })
}

fn members_lists_both(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            // The welcome names both too: read it first.
            s.catch_up(&cx).await?;
            s.sip.send_ok(&s.room, "#members").await?;
            let nick = s.nick.clone();
            s.sip
                .recv(&s.room, "the #members answer", |m| {
                    m.body.contains(room::OWNER) && m.body.contains(&nick)
                })
                .await?;
            Ok(Outcome::Pass)
        })
    })
}

fn xmpp_seen_by_sip(cx: CrossCtx) -> CaseFuture {
    let third = cx.x.user(2).local.clone();
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            let mut c = cx.x.login(2).await?;
            c.join(&s.room.jid, &third).await?;
            let got = s
                .sip
                .recv(&s.room, "a MESSAGE naming the new occupant", |m| {
                    m.body.contains(&third)
                })
                .await;
            c.close().await;
            got?;
            Ok(Outcome::Pass)
        })
    })
}

fn sip_leave_unavailable(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            s.sip.send_ok(&s.room, "#leave").await?;
            room::presence(
                &mut s.owner,
                &s.room,
                &s.nick,
                "the unavailable presence",
                unavailable,
            )
            .await?;
            Ok(Outcome::Pass)
        })
    })
}

fn conference_lists_xmpp(cx: CrossCtx) -> CaseFuture {
    let owner_jid = cx.jid(0);
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            let info = s.sip.conference(&s.room).await?;
            let owner_occupant = s.room.occupant(room::OWNER);
            ensure!(
                lists(&info, &owner_jid, &owner_occupant, room::OWNER),
                "no <user> for the XMPP occupant {} in {info}",
                room::OWNER
            );
            Ok(Outcome::Pass)
        })
    })
}

/// Whether conference-info `xml` has a `<user/>` for the XMPP occupant `room/nick` whose
/// account is `jid` (by real JID, occupant JID or display name).
fn lists(xml: &str, jid: &str, occupant: &str, nick: &str) -> bool {
    conference_users(xml)
        .iter()
        .any(|u| u.entity.contains(jid) || u.entity.ends_with(occupant) || u.display == nick)
}

fn conference_xmpp_join(cx: CrossCtx) -> CaseFuture {
    let third = cx.x.user(2).local.clone();
    let jid = cx.jid(2);
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            let (d, first) = s.sip.subscribe(&s.room).await?;
            let occupant = s.room.occupant(&third);
            ensure!(
                !lists(&first, &jid, &occupant, &third),
                "{third} is listed before entering"
            );
            let mut c = cx.x.login(2).await?;
            let entered = c.join(&s.room.jid, &third).await;
            let got = match entered {
                Ok(_) => {
                    s.sip
                        .notified(&d, "a NOTIFY listing the new occupant", |b| {
                            lists(b, &jid, &occupant, &third)
                        })
                        .await
                }
                Err(e) => Err(e),
            };
            c.close().await;
            s.sip.unsubscribe(d).await;
            got?;
            Ok(Outcome::Pass)
        })
    })
}
