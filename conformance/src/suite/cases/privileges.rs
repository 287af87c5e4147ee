//! Privilege checks (XEP-0045 §8–§10): what occupants without the needed role or affiliation
//! may not do. Where the XEP names no single condition for the refusal (kick, ban) either
//! <forbidden/> or <not-allowed/> is accepted; destroy names <forbidden/>.

use super::enter::two_in_room;
use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::xml::{attr, is_error, NS_MUC_ADMIN, NS_MUC_OWNER};
use anyhow::ensure;

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "muc.moderator.kick-by-participant-refused",
            clause: "XEP-0045 §8.2",
            description: "MUST: a participant trying to kick the owner is refused (<not-allowed/> or <forbidden/>)",
            needs: &[],
            run: kick_forbidden,
        },
        Case {
            id: "muc.admin.ban-by-participant-refused",
            clause: "XEP-0045 §9.1",
            description: "MUST: a non-admin trying to ban is refused (<forbidden/> or <not-allowed/>)",
            needs: &[],
            run: ban_forbidden,
        },
        Case {
            id: "muc.owner.destroy-by-non-owner-forbidden",
            clause: "XEP-0045 §10.9",
            description:
                "MUST: a non-owner trying to destroy the room is refused with <forbidden/>",
            needs: &[],
            run: destroy_forbidden,
        },
        Case {
            id: "muc.owner.owner-list",
            clause: "XEP-0045 §10.5",
            description: "MUST: the owner list retrieved by an owner contains the creator",
            needs: &[],
            run: owner_list,
        },
    ]
}

fn kick_forbidden(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room, _) = two_in_room(&cx).await?;
        let got = b
            .iq(
                "set",
                &room,
                &format!("<query xmlns='{NS_MUC_ADMIN}'><item nick='alice' role='none'/></query>"),
            )
            .await;
        a.close().await;
        b.close().await;
        let got = got?;
        ensure!(
            refused(&got),
            "expected <not-allowed/> or <forbidden/>: {got}"
        );
        Ok(Outcome::Pass)
    })
}

fn refused(e: &palaver_dialects::xmpp::element::Element) -> bool {
    is_error(e, "forbidden") || is_error(e, "not-allowed")
}

fn ban_forbidden(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room, _) = two_in_room(&cx).await?;
        let carol = cx.user(2).jid.clone();
        let got = b
            .iq(
                "set",
                &room,
                &format!(
                    "<query xmlns='{NS_MUC_ADMIN}'><item affiliation='outcast' jid='{}'/></query>",
                    attr(&carol)
                ),
            )
            .await;
        a.close().await;
        b.close().await;
        let got = got?;
        ensure!(
            refused(&got),
            "expected <forbidden/> or <not-allowed/>: {got}"
        );
        Ok(Outcome::Pass)
    })
}

fn destroy_forbidden(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room, _) = two_in_room(&cx).await?;
        let got = b
            .iq(
                "set",
                &room,
                &format!("<query xmlns='{NS_MUC_OWNER}'><destroy/></query>"),
            )
            .await;
        a.close().await;
        b.close().await;
        let got = got?;
        ensure!(is_error(&got, "forbidden"), "expected <forbidden/>: {got}");
        Ok(Outcome::Pass)
    })
}

fn owner_list(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[]).await?;
        let got = a
            .iq_ok(
                "get",
                &room,
                &format!("<query xmlns='{NS_MUC_ADMIN}'><item affiliation='owner'/></query>"),
            )
            .await;
        a.close().await;
        let got = got?;
        let alice = cx.user(0).jid.clone();
        let listed = got.get_child("query", NS_MUC_ADMIN).is_some_and(|q| {
            q.children_named("item", NS_MUC_ADMIN).any(|i| {
                i.attr("jid")
                    .is_some_and(|j| j.eq_ignore_ascii_case(&alice))
            })
        });
        ensure!(listed, "{alice} not in the owner list: {got}");
        Ok(Outcome::Pass)
    })
}
