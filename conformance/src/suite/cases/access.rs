//! Room access variants on entering (XEP-0045 §7.2.3–§7.2.10): non-anonymous and
//! semi-anonymous rooms, password-protected rooms, locked (unconfigured) rooms.

use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::xml::{has_status, is_error, item, presence_from};
use anyhow::{bail, ensure};

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "muc.join.non-anonymous-100",
            clause: "XEP-0045 §7.2.3",
            description: "MUST: entering a non-anonymous room gives status 100 and items with real JIDs",
            needs: &[],
            run: non_anonymous,
        },
        Case {
            id: "muc.join.semi-anonymous-hides-jid",
            clause: "XEP-0045 §7.2.4",
            description: "MUST NOT: a semi-anonymous room shows no real JIDs to a participant",
            needs: &[],
            run: semi_anonymous,
        },
        Case {
            id: "muc.join.password-required",
            clause: "XEP-0045 §7.2.5",
            description: "MUST: entering a password-protected room without the password gets <not-authorized/>",
            needs: &[],
            run: password_required,
        },
        Case {
            id: "muc.join.password-accepted",
            clause: "XEP-0045 §7.2.5",
            description: "MUST: entering with the right <password/> succeeds",
            needs: &[],
            run: password_accepted,
        },
        Case {
            id: "muc.join.locked-room",
            clause: "XEP-0045 §7.2.10, §10.1.1",
            description: "MUST: a room not yet configured by its creator refuses others with <item-not-found/>",
            needs: &[],
            run: locked_room,
        },
    ]
}

fn non_anonymous(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[("muc#roomconfig_whois", "anyone")])
            .await?;
        let mut b = cx.login(1).await?;
        let got = b.join(&room, "bob").await;
        a.close().await;
        b.close().await;
        let got = got?;
        let alice = format!("{room}/alice");
        let Some(me) = got.last() else {
            bail!("no self-presence");
        };
        ensure!(has_status(me, "100"), "no status 100 in {me}");
        let Some(p) = got.iter().find(|e| presence_from(e, &alice)) else {
            bail!("no presence of {alice}");
        };
        ensure!(
            item(p).and_then(|i| i.attr("jid")).is_some(),
            "no real JID in {p}"
        );
        Ok(Outcome::Pass)
    })
}

fn semi_anonymous(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[("muc#roomconfig_whois", "moderators")])
            .await?;
        let mut b = cx.login(1).await?;
        let got = b.join(&room, "bob").await;
        a.close().await;
        b.close().await;
        let got = got?;
        let alice = format!("{room}/alice");
        let Some(p) = got.iter().find(|e| presence_from(e, &alice)) else {
            bail!("no presence of {alice}");
        };
        let Some(me) = got.last() else {
            bail!("no self-presence");
        };
        if item(me).and_then(|i| i.attr("role")) == Some("moderator") {
            return Ok(Outcome::NotApplicable("bob entered as a moderator".into()));
        }
        ensure!(
            item(p).and_then(|i| i.attr("jid")).is_none(),
            "real JID shown to a participant: {p}"
        );
        Ok(Outcome::Pass)
    })
}

async fn password_room(
    cx: &Ctx,
    extra: &str,
) -> anyhow::Result<Option<palaver_dialects::xmpp::element::Element>> {
    let mut a = cx.login(0).await?;
    let room = cx.room();
    a.create(
        &room,
        "alice",
        &[
            ("muc#roomconfig_passwordprotectedroom", "1"),
            ("muc#roomconfig_roomsecret", "s3cret"),
        ],
    )
    .await?;
    let mut b = cx.login(1).await?;
    let got = b.enter(&room, "bob", extra).await;
    a.close().await;
    b.close().await;
    Ok(got?.pop())
}

fn password_required(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let last = password_room(&cx, "").await?;
        ensure!(
            last.as_ref().is_some_and(|p| is_error(p, "not-authorized")),
            "expected <not-authorized/>, got {last:?}"
        );
        Ok(Outcome::Pass)
    })
}

fn password_accepted(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let last = password_room(&cx, "<password>s3cret</password>").await?;
        ensure!(
            last.as_ref()
                .is_some_and(|p| p.attr("type").is_none() && has_status(p, "110")),
            "expected the self-presence, got {last:?}"
        );
        Ok(Outcome::Pass)
    })
}

fn locked_room(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        let got = a.join(&room, "alice").await?;
        if !got.last().is_some_and(|p| has_status(p, "201")) {
            a.close().await;
            bail!("no status 201 on creating {room}");
        }
        let mut b = cx.login(1).await?;
        let got = b.enter(&room, "bob", "").await;
        a.close().await;
        b.close().await;
        let last = got?.pop();
        ensure!(
            last.as_ref().is_some_and(|p| is_error(p, "item-not-found")),
            "expected <item-not-found/> from the locked room, got {last:?}"
        );
        Ok(Outcome::Pass)
    })
}
