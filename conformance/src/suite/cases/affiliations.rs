//! Granting and revoking affiliations and roles (XEP-0045 §9.3–§9.6, §10.3, §10.6) and what
//! they change: entering members-only rooms, lists, occupants' presences.

use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::session::Session;
use crate::suite::xml::{attr, has_status, item, presence_from, NS_MUC_ADMIN};
use anyhow::{ensure, Result};

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "muc.admin.member-enters-members-only",
            clause: "XEP-0045 §7.2.6, §9.3",
            description: "MUST: a user granted membership can enter the members-only room",
            needs: &[],
            run: member_enters,
        },
        Case {
            id: "muc.admin.revoke-membership",
            clause: "XEP-0045 §9.4",
            description: "MUST: a revoked member (affiliation none) no longer appears in the member list",
            needs: &[],
            run: revoke_membership,
        },
        Case {
            id: "muc.admin.grant-moderator",
            clause: "XEP-0045 §9.6",
            description: "MUST: granting moderator is broadcast as the occupant's presence with role moderator",
            needs: &[],
            run: grant_moderator,
        },
        Case {
            id: "muc.owner.grant-admin",
            clause: "XEP-0045 §10.6",
            description: "MUST: granting admin to an occupant is broadcast with affiliation admin",
            needs: &[],
            run: grant_admin,
        },
        Case {
            id: "muc.owner.grant-owner",
            clause: "XEP-0045 §10.3",
            description: "MUST: granting ownership to an occupant is broadcast with affiliation owner",
            needs: &[],
            run: grant_owner,
        },
    ]
}

async fn admin_set(s: &mut Session, room: &str, items: &str) -> Result<()> {
    s.iq_ok(
        "set",
        room,
        &format!("<query xmlns='{NS_MUC_ADMIN}'>{items}</query>"),
    )
    .await?;
    Ok(())
}

async fn list(s: &mut Session, room: &str, affiliation: &str) -> Result<Vec<String>> {
    let got = s
        .iq_ok(
            "get",
            room,
            &format!("<query xmlns='{NS_MUC_ADMIN}'><item affiliation='{affiliation}'/></query>"),
        )
        .await?;
    Ok(got
        .get_child("query", NS_MUC_ADMIN)
        .map(|q| {
            q.children_named("item", NS_MUC_ADMIN)
                .filter_map(|i| i.attr("jid").map(str::to_lowercase))
                .collect()
        })
        .unwrap_or_default())
}

fn member_enters(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[("muc#roomconfig_membersonly", "1")])
            .await?;
        let bob = cx.user(1).jid.clone();
        admin_set(
            &mut a,
            &room,
            &format!("<item affiliation='member' jid='{}'/>", attr(&bob)),
        )
        .await?;
        let mut b = cx.login(1).await?;
        let got = b.enter(&room, "bob", "").await;
        a.close().await;
        b.close().await;
        let last = got?.pop();
        ensure!(
            last.as_ref()
                .is_some_and(|p| p.attr("type").is_none() && has_status(p, "110")),
            "the member could not enter: {last:?}"
        );
        Ok(Outcome::Pass)
    })
}

fn revoke_membership(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[]).await?;
        let bob = cx.user(1).jid.to_lowercase();
        let r = async {
            admin_set(
                &mut a,
                &room,
                &format!("<item affiliation='member' jid='{}'/>", attr(&bob)),
            )
            .await?;
            let before = list(&mut a, &room, "member").await?;
            admin_set(
                &mut a,
                &room,
                &format!("<item affiliation='none' jid='{}'/>", attr(&bob)),
            )
            .await?;
            let after = list(&mut a, &room, "member").await?;
            Ok::<_, anyhow::Error>((before, after))
        }
        .await;
        a.close().await;
        let (before, after) = r?;
        ensure!(before.contains(&bob), "{bob} not listed after the grant");
        ensure!(
            !after.contains(&bob),
            "{bob} still listed after the revocation"
        );
        Ok(Outcome::Pass)
    })
}

/// alice (owner) sets `item` on bob, then waits for bob's broadcast presence with `attr_name`
/// = `value` as seen by alice.
async fn change_and_watch(cx: &Ctx, item_xml: &str, attr_name: &str, value: &str) -> Result<()> {
    let (mut a, b, room, _) = super::enter::two_in_room(cx).await?;
    let bob = format!("{room}/bob");
    let r = admin_set(&mut a, &room, item_xml).await;
    let seen = a
        .recv(&format!("bob's presence with {attr_name}={value}"), |e| {
            presence_from(e, &bob) && item(e).and_then(|i| i.attr(attr_name)) == Some(value)
        })
        .await;
    a.close().await;
    b.close().await;
    r?;
    seen?;
    Ok(())
}

fn grant_moderator(cx: Ctx) -> CaseFuture {
    boxed(async move {
        change_and_watch(
            &cx,
            "<item nick='bob' role='moderator'/>",
            "role",
            "moderator",
        )
        .await?;
        Ok(Outcome::Pass)
    })
}

fn grant_admin(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let bob = cx.user(1).jid.clone();
        let item = format!("<item affiliation='admin' jid='{}'/>", attr(&bob));
        change_and_watch(&cx, &item, "affiliation", "admin").await?;
        Ok(Outcome::Pass)
    })
}

fn grant_owner(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let bob = cx.user(1).jid.clone();
        let item = format!("<item affiliation='owner' jid='{}'/>", attr(&bob));
        change_and_watch(&cx, &item, "affiliation", "owner").await?;
        Ok(Outcome::Pass)
    })
}
