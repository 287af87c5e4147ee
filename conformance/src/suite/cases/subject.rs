//! Room subject and occupant presence updates (XEP-0045 §7.7, §8.1), and mediated
//! invitations (§7.8.2).

use super::enter::two_in_room;
use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::xml::{attr, is_error, is_subject, muc_user, presence_from, NS_MUC_USER};
use anyhow::ensure;

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "muc.subject.change-by-moderator",
            clause: "XEP-0045 §8.1",
            description: "MUST: a moderator's subject change reaches every occupant from room/nick",
            needs: &[],
            run: subject_change,
        },
        Case {
            id: "muc.subject.participant-forbidden",
            clause: "XEP-0045 §8.1",
            description: "MUST: with changesubject off, a participant's subject change gets <forbidden/>",
            needs: &[],
            run: subject_forbidden,
        },
        Case {
            id: "muc.presence.update-broadcast",
            clause: "XEP-0045 §7.7",
            description: "MUST: an occupant's changed availability (<show/>) is broadcast to the others",
            needs: &[],
            run: presence_update,
        },
        Case {
            id: "muc.invite.mediated",
            clause: "XEP-0045 §7.8.2",
            description: "MUST: a mediated invitation reaches the invitee from the room with <invite from=inviter/>",
            needs: &[],
            run: invite,
        },
    ]
}

fn subject_change(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = two_in_room(&cx).await?;
        a.send(&format!(
            "<message type='groupchat' to='{}'><subject>new topic</subject></message>",
            attr(&room)
        ))
        .await?;
        let alice = format!("{room}/alice");
        let got = b
            .recv("the new subject", |e| {
                is_subject(e, &room)
                    && e.children()
                        .any(|c| c.name == "subject" && c.text() == "new topic")
            })
            .await;
        a.close().await;
        b.close().await;
        let m = got?;
        ensure!(
            m.attr("from") == Some(alice.as_str()),
            "from {:?}",
            m.attr("from")
        );
        Ok(Outcome::Pass)
    })
}

fn subject_forbidden(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[("muc#roomconfig_changesubject", "0")])
            .await?;
        let mut b = cx.login(1).await?;
        b.join(&room, "bob").await?;
        b.send(&format!(
            "<message type='groupchat' to='{}' id='subj-1'><subject>mine</subject></message>",
            attr(&room)
        ))
        .await?;
        let got = b
            .recv("the refusal", |e| {
                e.name == "message" && e.attr("type") == Some("error")
            })
            .await;
        a.close().await;
        b.close().await;
        let m = got?;
        ensure!(is_error(&m, "forbidden"), "expected <forbidden/>: {m}");
        Ok(Outcome::Pass)
    })
}

fn presence_update(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = two_in_room(&cx).await?;
        let bob = format!("{room}/bob");
        b.send(&format!(
            "<presence to='{}'><show>away</show></presence>",
            attr(&bob)
        ))
        .await?;
        let got = a
            .recv("bob's away presence", |e| {
                presence_from(e, &bob) && e.children().any(|c| c.name == "show")
            })
            .await;
        a.close().await;
        b.close().await;
        let p = got?;
        ensure!(
            p.children().any(|c| c.name == "show" && c.text() == "away"),
            "show is not away: {p}"
        );
        Ok(Outcome::Pass)
    })
}

fn invite(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, b, room, _) = two_in_room(&cx).await?;
        let mut c = cx.login(2).await?;
        // Available, so that messages to the bare JID reach this session (RFC 6121 §8.5.2.1):
        // wait for the server's echo of the initial presence (§4.2.2), or the invitation may
        // be routed while the session is still unavailable.
        c.send("<presence/>").await?;
        let me = c.jid().to_string();
        c.recv("the echo of carol's initial presence", |e| {
            e.name == "presence" && e.attr("from") == Some(me.as_str())
        })
        .await?;
        let carol = cx.user(2).jid.clone();
        a.send(&format!(
            "<message to='{}'><x xmlns='{NS_MUC_USER}'><invite to='{}'><reason>join us</reason></invite></x></message>",
            attr(&room),
            attr(&carol)
        ))
        .await?;
        let got = c
            .recv("the invitation", |e| {
                e.name == "message"
                    && muc_user(e).is_some_and(|x| x.get_child("invite", NS_MUC_USER).is_some())
            })
            .await;
        a.close().await;
        b.close().await;
        c.close().await;
        let m = got?;
        ensure!(
            m.attr("from")
                .is_some_and(|f| f.eq_ignore_ascii_case(&room)),
            "not from the room: {m}"
        );
        let from = muc_user(&m)
            .and_then(|x| x.get_child("invite", NS_MUC_USER))
            .and_then(|i| i.attr("from"));
        ensure!(from.is_some(), "<invite/> without from: {m}");
        ensure!(!is_error(&m, "forbidden"), "refused: {m}");
        Ok(Outcome::Pass)
    })
}
