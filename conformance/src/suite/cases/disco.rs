//! Service discovery (XEP-0030) of the MUC service and of rooms (XEP-0045 §6).

use crate::suite::case::{boxed, Case, CaseFuture, Ctx, Outcome};
use crate::suite::xml::{NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC};
use anyhow::ensure;
use palaver_dialects::xmpp::element::Element;

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "disco.muc.service-info",
            clause: "XEP-0045 §6.2",
            description: "MUST: disco#info on the MUC service has identity conference/text and the muc feature",
            needs: &[],
            run: service_info,
        },
        Case {
            id: "disco.muc.room-info",
            clause: "XEP-0045 §6.4",
            description: "MUST: disco#info on a room has identity conference/text and the muc feature",
            needs: &[],
            run: room_info,
        },
        Case {
            id: "disco.muc.rooms-listed",
            clause: "XEP-0045 §6.3",
            description: "SHOULD: disco#items on the MUC service lists a room just created and configured public",
            needs: &[],
            run: rooms_listed,
        },
    ]
}

fn check_conference(answer: &Element) -> anyhow::Result<()> {
    let q = answer.get_child("query", NS_DISCO_INFO);
    let identity = q.is_some_and(|q| {
        q.children_named("identity", NS_DISCO_INFO)
            .any(|i| i.attr("category") == Some("conference"))
    });
    let feature = q.is_some_and(|q| {
        q.children_named("feature", NS_DISCO_INFO)
            .any(|f| f.attr("var") == Some(NS_MUC))
    });
    ensure!(identity, "no conference identity in {answer}");
    ensure!(feature, "no {NS_MUC} feature in {answer}");
    Ok(())
}

fn service_info(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut s = cx.login(0).await?;
        let muc = cx.config.muc.clone();
        let answer = s
            .iq_ok("get", &muc, &format!("<query xmlns='{NS_DISCO_INFO}'/>"))
            .await?;
        s.close().await;
        check_conference(&answer)?;
        Ok(Outcome::Pass)
    })
}

fn room_info(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut s = cx.login(0).await?;
        let room = cx.room();
        s.create(&room, "alice", &[]).await?;
        let answer = s
            .iq_ok("get", &room, &format!("<query xmlns='{NS_DISCO_INFO}'/>"))
            .await?;
        s.close().await;
        check_conference(&answer)?;
        Ok(Outcome::Pass)
    })
}

fn rooms_listed(cx: Ctx) -> CaseFuture {
    boxed(async move {
        let mut s = cx.login(0).await?;
        let room = cx.room();
        // §6.3 is about public rooms, and a new room's default configuration is the service's
        // choice (§10.1.2; Prosody's rooms are hidden by default): ask for a public one.
        s.create(&room, "alice", &[("muc#roomconfig_publicroom", "1")])
            .await?;
        let muc = cx.config.muc.clone();
        let answer = s
            .iq_ok("get", &muc, &format!("<query xmlns='{NS_DISCO_ITEMS}'/>"))
            .await?;
        s.close().await;
        let listed = answer.get_child("query", NS_DISCO_ITEMS).is_some_and(|q| {
            q.children_named("item", NS_DISCO_ITEMS)
                .any(|i| i.attr("jid").is_some_and(|j| j.eq_ignore_ascii_case(&room)))
        });
        ensure!(listed, "{room} not listed in {answer}");
        Ok(Outcome::Pass)
    })
}
