//! Nicks and the subject across protocols: one nick space (XEP-0045 §7.2.8 both ways), a SIP
//! `#nick` as XMPP nick-change presence (§7.6), the subject set on one side read on the other
//! (§8.1, `#topic`).

use super::{CrossCase, CrossCtx, Scene};
use crate::cross::room::{self, available, unavailable, OWNER};
use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::suite::xml::{attr, has_status, is_error, is_subject, item};
use anyhow::{bail, ensure};
use palaver_dialects::xmpp::element::Element;

pub fn cases() -> Vec<CrossCase> {
    vec![
        CrossCase {
            id: "cross.nick.sip-join-taken-refused",
            clause: "XEP-0045 §7.2.8; pager #join",
            description: "MUST: a SIP #join with the nick an XMPP occupant holds is refused (non-2xx or a MESSAGE saying so); the XMPP occupant keeps it and nothing is posted under it",
            needs_third: false,
            run: sip_join_taken,
        },
        CrossCase {
            id: "cross.nick.xmpp-join-taken-conflict",
            clause: "XEP-0045 §7.2.8; pager #join",
            description: "MUST: an XMPP user entering with the nick a SIP occupant holds gets <conflict/>",
            needs_third: false,
            run: xmpp_join_taken,
        },
        CrossCase {
            id: "cross.nick.sip-change-303",
            clause: "XEP-0045 §7.6; pager #nick",
            description: "MUST: a SIP #nick answered 2xx gives XMPP occupants unavailable from the old nick with 303 and the new nick, then the new nick's presence",
            needs_third: false,
            run: sip_nick_change,
        },
        CrossCase {
            id: "cross.subject.xmpp-set-seen-by-sip",
            clause: "XEP-0045 §8.1; pager #topic",
            description: "MUST: after a moderator sets the subject over XMPP, #topic is answered 2xx and a MESSAGE from the room containing it",
            needs_third: false,
            run: xmpp_subject_seen_by_sip,
        },
        CrossCase {
            id: "cross.subject.sip-set-seen-by-xmpp",
            clause: "XEP-0045 §8.1; pager #topic",
            description: "MUST: in a room where occupants may change the subject, a SIP #topic text answered 2xx reaches XMPP occupants as a <subject/> message from room/nick",
            needs_third: false,
            run: sip_subject_seen_by_xmpp,
        },
    ]
}

fn sip_join_taken(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        with_scene!(Scene::bare(&cx, &[]), |s| {
            s.refused(&cx, &format!("#join {OWNER}"), OWNER).await?;
            Ok(Outcome::Pass)
        })
    })
}

fn xmpp_join_taken(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            let mut other = cx.x.login(0).await?;
            let got = other.enter(&s.room.jid, &s.nick, "").await;
            other.close().await;
            let got = got?;
            let Some(last) = got.last() else {
                bail!("no answer to the join");
            };
            ensure!(
                is_error(last, "conflict"),
                "not refused with <conflict/>: {last}"
            );
            Ok(Outcome::Pass)
        })
    })
}

fn sip_nick_change(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let new = format!("{}-2", cx.sip_nick());
        with_scene!(Scene::open(&cx, &[]), |s| {
            s.sip.send_ok(&s.room, &format!("#nick {new}")).await?;
            let gone = room::presence(
                &mut s.owner,
                &s.room,
                &s.nick,
                "the old nick's unavailable",
                unavailable,
            )
            .await?;
            ensure!(has_status(&gone, "303"), "no status 303: {gone}");
            let named = item(&gone).and_then(|i| i.attr("nick"));
            ensure!(
                named == Some(new.as_str()),
                "the item names {named:?}, not {new}: {gone}"
            );
            room::presence(
                &mut s.owner,
                &s.room,
                &new,
                "the new nick's presence",
                available,
            )
            .await?;
            s.nick = new.clone();
            Ok(Outcome::Pass)
        })
    })
}

fn xmpp_subject_seen_by_sip(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let subject = cx.unique("subject");
        with_scene!(Scene::open(&cx, &[]), |s| {
            let room = s.room.jid.clone();
            s.owner
                .send(&format!(
                    "<message type='groupchat' to='{}'><subject>{}</subject></message>",
                    attr(&room),
                    attr(&subject)
                ))
                .await?;
            s.owner
                .recv("the subject change", |e| subject_is(e, &room, &subject))
                .await?;
            // The live notice of the change may carry the subject too: read it first.
            s.catch_up(&cx).await?;
            s.sip.send_ok(&s.room, "#topic").await?;
            s.sip
                .recv(&s.room, "a MESSAGE with the subject", |m| {
                    m.body.contains(&subject)
                })
                .await?;
            Ok(Outcome::Pass)
        })
    })
}

fn sip_subject_seen_by_xmpp(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let subject = cx.unique("topic");
        let fields = [("muc#roomconfig_changesubject", "1")];
        with_scene!(Scene::open(&cx, &fields), |s| {
            s.sip.send_ok(&s.room, &format!("#topic {subject}")).await?;
            let room = s.room.jid.clone();
            let m = s
                .owner
                .recv("the subject change", |e| subject_is(e, &room, &subject))
                .await?;
            let from = s.room.occupant(&s.nick);
            ensure!(
                m.attr("from") == Some(from.as_str()),
                "not from {from}: {m}"
            );
            Ok(Outcome::Pass)
        })
    })
}

/// A subject message from the room setting `subject`.
fn subject_is(e: &Element, room: &str, subject: &str) -> bool {
    is_subject(e, room)
        && e.children()
            .any(|c| c.name == "subject" && c.text() == subject)
}
