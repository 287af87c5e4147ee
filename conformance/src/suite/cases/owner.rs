//! Owner use cases (XEP-0045 §10): the configuration form and destroying a room.

use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::xml::{attr, muc_user, presence_from, NS_MUC_OWNER, NS_MUC_USER};
use anyhow::ensure;

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "muc.owner.config-form",
            clause: "XEP-0045 §10.2",
            description:
                "MUST: the owner gets a data form (type form) with FORM_TYPE muc#roomconfig",
            needs: &[],
            run: config_form,
        },
        Case {
            id: "muc.owner.config-non-owner-forbidden",
            clause: "XEP-0045 §10.2",
            description: "MUST: a non-owner asking for the configuration form gets <forbidden/>",
            needs: &[],
            run: config_forbidden,
        },
        Case {
            id: "muc.owner.destroy",
            clause: "XEP-0045 §10.9",
            description:
                "MUST: destroying a room sends occupants unavailable with a muc#user <destroy/>",
            needs: &[],
            run: destroy,
        },
    ]
}

fn config_form(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut a = cx.login(0).await?;
        let room = cx.room();
        a.create(&room, "alice", &[]).await?;
        let got = a
            .iq_ok("get", &room, &format!("<query xmlns='{NS_MUC_OWNER}'/>"))
            .await;
        a.close().await;
        let got = got?;
        let form = got
            .get_child("query", NS_MUC_OWNER)
            .and_then(|q| q.get_child("x", "jabber:x:data"));
        let Some(form) = form else {
            anyhow::bail!("no data form in {got}");
        };
        ensure!(
            form.attr("type") == Some("form"),
            "form type is not 'form': {got}"
        );
        let form_type = form
            .children_named("field", "jabber:x:data")
            .find(|f| f.attr("var") == Some("FORM_TYPE"))
            .and_then(|f| f.child_text("value", "jabber:x:data"));
        ensure!(
            form_type.as_deref() == Some("http://jabber.org/protocol/muc#roomconfig"),
            "FORM_TYPE is {form_type:?}"
        );
        Ok(Outcome::Pass)
    })
}

fn config_forbidden(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (a, mut b, room, _) = super::enter::two_in_room(&cx).await?;
        let got = b
            .iq("get", &room, &format!("<query xmlns='{NS_MUC_OWNER}'/>"))
            .await;
        a.close().await;
        b.close().await;
        let got = got?;
        ensure!(
            crate::suite::xml::is_error(&got, "forbidden"),
            "expected <forbidden/>: {got}"
        );
        Ok(Outcome::Pass)
    })
}

fn destroy(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let (mut a, mut b, room, _) = super::enter::two_in_room(&cx).await?;
        let r = a
            .iq_ok(
                "set",
                &room,
                &format!(
                    "<query xmlns='{NS_MUC_OWNER}'><destroy><reason>done</reason></destroy></query>"
                ),
            )
            .await;
        let bob = format!("{room}/bob");
        let got = b
            .recv("bob's removal", |e| {
                presence_from(e, &bob) && e.attr("type") == Some("unavailable")
            })
            .await;
        a.close().await;
        b.close().await;
        r?;
        let p = got?;
        ensure!(
            muc_user(&p).is_some_and(|x| x.get_child("destroy", NS_MUC_USER).is_some()),
            "no muc#user <destroy/> in {p} (room {})",
            attr(&room)
        );
        Ok(Outcome::Pass)
    })
}
