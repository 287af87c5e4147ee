//! Moderation and access across protocols: an XMPP moderator kicks a SIP occupant (XEP-0045
//! §8.2), the owner destroys the room (§10.9), a voiceless SIP visitor posts in a moderated
//! room (§8.3), a non-member (§7.2.6) or a banned user (§9.1, §7.2.7) tries to enter over SIP.

use super::{CrossCase, CrossCtx, Scene};
use crate::cross::room::{self, role_item, unavailable};
use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::suite::xml::{attr, has_status, is_groupchat_body, NS_MUC_OWNER};
use anyhow::ensure;

pub fn cases() -> Vec<CrossCase> {
    vec![
        CrossCase {
            id: "cross.kick.xmpp-kicks-sip",
            clause: "XEP-0045 §8.2; pager convention",
            description: "MUST: a moderator's kick of a SIP occupant is broadcast as unavailable with 307 from room/nick, and the kicked user's next post is not broadcast",
            needs_third: false,
            run: kick_sip,
        },
        CrossCase {
            id: "cross.kick.sip-told",
            clause: "XEP-0045 §8.2; pager convention",
            description: "SHOULD: the kicked SIP occupant gets a MESSAGE from the room after the kick (telling it)",
            needs_third: false,
            run: kick_told,
        },
        CrossCase {
            id: "cross.destroy.sip-told",
            clause: "XEP-0045 §10.9; pager convention",
            description: "SHOULD: when the owner destroys the room over XMPP, the SIP occupant gets a MESSAGE from the room telling it",
            needs_third: false,
            run: destroy_told,
        },
        CrossCase {
            id: "cross.moderated.sip-visitor-refused",
            clause: "XEP-0045 §7.4, §8.3; pager",
            description: "MUST: in a moderated room a SIP occupant without voice is refused when posting (non-2xx or a MESSAGE saying so) and the post is not broadcast",
            needs_third: false,
            run: visitor_refused,
        },
        CrossCase {
            id: "cross.members-only.sip-join-refused",
            clause: "XEP-0045 §7.2.6; pager #join",
            description: "MUST: a non-member's SIP #join of a members-only room is refused (non-2xx or a MESSAGE saying so) and it never appears as an occupant",
            needs_third: false,
            run: members_only_refused,
        },
        CrossCase {
            id: "cross.ban.sip-join-refused",
            clause: "XEP-0045 §9.1; pager #join",
            description: "MUST: a user banned over XMPP (outcast) is refused when entering with SIP #join (non-2xx or a MESSAGE saying so) and never appears as an occupant",
            needs_third: false,
            run: ban_then_sip_join,
        },
    ]
}

fn kick_sip(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let after = cx.unique("after kick");
        let marker = cx.unique("marker");
        with_scene!(Scene::open(&cx, &[]), |s| {
            let nick = s.nick.clone();
            room::admin(&mut s.owner, &s.room, &role_item(&nick, "none")).await?;
            let gone = room::presence(
                &mut s.owner,
                &s.room,
                &nick,
                "the kicked occupant's unavailable",
                unavailable,
            )
            .await?;
            ensure!(has_status(&gone, "307"), "no status 307: {gone}");
            let _ = s.sip.send(&s.room, &after).await?;
            let before = s.owner_marker(&marker).await?;
            let room = s.room.jid.clone();
            ensure!(
                !before.iter().any(|e| is_groupchat_body(e, &room, &after)),
                "the kicked SIP user's post was broadcast"
            );
            Ok(Outcome::Pass)
        })
    })
}

fn kick_told(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            s.catch_up(&cx).await?;
            let nick = s.nick.clone();
            room::admin(&mut s.owner, &s.room, &role_item(&nick, "none")).await?;
            s.sip
                .recv(&s.room, "a MESSAGE about the kick", |_| true)
                .await?;
            Ok(Outcome::Pass)
        })
    })
}

fn ban_then_sip_join(cx: CrossCtx) -> CaseFuture {
    let jid = cx.sip_jid();
    boxed(async move {
        with_scene!(Scene::bare(&cx, &[]), |s| {
            let ban = format!("<item affiliation='outcast' jid='{}'/>", attr(&jid));
            room::admin(&mut s.owner, &s.room, &ban).await?;
            let nick = s.nick.clone();
            s.refused(&cx, &format!("#join {nick}"), &nick).await?;
            Ok(Outcome::Pass)
        })
    })
}

fn destroy_told(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        with_scene!(Scene::open(&cx, &[]), |s| {
            s.catch_up(&cx).await?;
            let destroy = format!("<query xmlns='{NS_MUC_OWNER}'><destroy/></query>");
            s.owner.iq_ok("set", &s.room.jid, &destroy).await?;
            s.sip
                .recv(&s.room, "a MESSAGE about the destruction", |_| true)
                .await?;
            Ok(Outcome::Pass)
        })
    })
}

fn visitor_refused(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let post = cx.unique("voiceless");
        let fields = [("muc#roomconfig_moderatedroom", "1")];
        with_scene!(Scene::open(&cx, &fields), |s| {
            let nick = s.nick.clone();
            s.refused(&cx, &post, &nick).await?;
            Ok(Outcome::Pass)
        })
    })
}

fn members_only_refused(cx: CrossCtx) -> CaseFuture {
    boxed(async move {
        let fields = [("muc#roomconfig_membersonly", "1")];
        with_scene!(Scene::bare(&cx, &fields), |s| {
            let nick = s.nick.clone();
            s.refused(&cx, &format!("#join {nick}"), &nick).await?;
            Ok(Outcome::Pass)
        })
    })
}
