//! Server information (`cmd:getserverinfo`), channel search (`cmd:chansrch`) and pending
//! invitations (`cmd:getinv`).

use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::xccos::envelope::{data_children, escape, show};
use crate::xccos::session::XSession;
use crate::xccos::{XCase, XCtx};
use anyhow::{ensure, Context as _, Result};
use palaver_dialects::xmpp::element::Element;

pub fn cases() -> Vec<XCase> {
    vec![
        XCase {
            id: "xccos.serverinfo.limits",
            clause: "MS-XCCOSIP (cmd:getserverinfo)",
            description: "MUST: rpl:getserverinfo 200 with data/sib carrying positive searchLimit, messageSizeLimit and storySizeLimit",
            run: limits,
        },
        XCase {
            id: "xccos.serverinfo.root-category",
            clause: "MS-XCCOSIP (cmd:getserverinfo)",
            description: "MUST: data/sib/@rootUri is a ma-cat://<domain>/… category URI",
            run: root_category,
        },
        XCase {
            id: "xccos.chansrch.byname-all",
            clause: "MS-XCCOSIP (cmd:chansrch)",
            description: "MUST: BYNAME with empty criteria lists the public room as data/chanib with uri, name and a numeric ucnt info",
            run: byname_all,
        },
        XCase {
            id: "xccos.chansrch.byname-criteria",
            clause: "MS-XCCOSIP (cmd:chansrch)",
            description: "MUST: BYNAME with the room's name as criteria lists it; with a criteria matching nothing it is not listed",
            run: byname_criteria,
        },
        XCase {
            id: "xccos.chansrch.user-count",
            clause: "MS-XCCOSIP (cmd:chansrch)",
            description: "SHOULD: the room's ucnt counts a user who joined it (at least 1)",
            run: user_count,
        },
        XCase {
            id: "xccos.getinv.reply",
            clause: "MS-XCCOSIP (cmd:getinv)",
            description: "MUST: cmd:getinv is answered rpl:getinv with code 200",
            run: getinv,
        },
    ]
}

/// The `data/sib` of `rpl:getserverinfo`.
pub async fn server_info(s: &mut XSession) -> Result<Element> {
    let rpl = s.ask_ok("getserverinfo", "").await?;
    data_children(&rpl, "sib")
        .first()
        .map(|e| (*e).clone())
        .with_context(|| format!("no data/sib: {}", show(&rpl)))
}

/// The `data/chanib` entries of a BYNAME search for `criteria`.
pub async fn search(s: &mut XSession, criteria: &str) -> Result<Vec<Element>> {
    let rpl = s
        .ask_ok(
            "chansrch",
            &format!(
                "<qib qtype=\"BYNAME\" criteria=\"{}\" extended=\"false\"/>",
                escape(criteria)
            ),
        )
        .await?;
    Ok(data_children(&rpl, "chanib").into_iter().cloned().collect())
}

/// The entry of `chan` among `found`.
pub fn find<'a>(found: &'a [Element], chan: &str) -> Option<&'a Element> {
    found
        .iter()
        .find(|c| c.attr("uri").is_some_and(|u| u.eq_ignore_ascii_case(chan)))
}

/// The value of `<info id="urn:parlano:ma:info:NAME">` of a chanib.
pub fn info(chanib: &Element, name: &str) -> Option<String> {
    let id = format!("urn:parlano:ma:info:{name}");
    chanib
        .children()
        .find(|i| i.name == "info" && i.attr("id") == Some(id.as_str()))
        .map(|i| i.text().trim().to_string())
}

fn limits(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let sib = server_info(&mut s).await;
        s.close().await;
        let sib = sib?;
        for name in ["searchLimit", "messageSizeLimit", "storySizeLimit"] {
            let v = sib.attr(name).and_then(|v| v.trim().parse::<u64>().ok());
            ensure!(
                v.is_some_and(|v| v > 0),
                "{name} is {:?}: {sib}",
                sib.attr(name)
            );
        }
        Ok(Outcome::Pass)
    })
}

fn root_category(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let sib = server_info(&mut s).await;
        s.close().await;
        let sib = sib?;
        let prefix = format!("ma-cat://{}/", cx.config.domain);
        let root = sib.attr("rootUri").unwrap_or_default();
        ensure!(
            root.len() > prefix.len()
                && root
                    .to_ascii_lowercase()
                    .starts_with(&prefix.to_ascii_lowercase()),
            "rootUri {root:?} is not under {prefix}"
        );
        Ok(Outcome::Pass)
    })
}

fn byname_all(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let found = search(&mut s, "").await;
        s.close().await;
        let found = found?;
        let chan = cx.config.chan();
        let room = find(&found, &chan)
            .with_context(|| format!("{chan} not among {} channels found", found.len()))?;
        ensure!(room.attr("name").is_some(), "no name: {room}");
        let ucnt = info(room, "ucnt");
        ensure!(
            ucnt.as_deref().is_some_and(|u| u.parse::<u64>().is_ok()),
            "ucnt info {ucnt:?}: {room}"
        );
        Ok(Outcome::Pass)
    })
}

fn byname_criteria(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let chan = cx.config.chan();
        let result: Result<()> = async {
            let all = search(&mut s, "").await?;
            let name = find(&all, &chan)
                .and_then(|r| r.attr("name"))
                .with_context(|| format!("{chan} (with a name) not listed"))?
                .to_string();
            let hit = search(&mut s, &name).await?;
            ensure!(
                find(&hit, &chan).is_some(),
                "criteria {name:?} does not list {chan}"
            );
            let nonsense = cx.unique("zz-no-such-room");
            let miss = search(&mut s, &nonsense).await?;
            ensure!(
                find(&miss, &chan).is_none(),
                "criteria {nonsense:?} lists {chan}"
            );
            Ok(())
        }
        .await;
        s.close().await;
        result?;
        Ok(Outcome::Pass)
    })
}

fn user_count(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut a = XSession::open(&cx, 0).await?;
        let mut b = XSession::open(&cx, 1).await?;
        let chan = cx.config.chan();
        let result: Result<Option<String>> = async {
            a.join(&cx.config.room).await?;
            let found = search(&mut b, "").await?;
            Ok(find(&found, &chan).and_then(|r| info(r, "ucnt")))
        }
        .await;
        a.close().await;
        b.close().await;
        let ucnt = result?;
        ensure!(
            ucnt.as_deref()
                .and_then(|u| u.parse::<u64>().ok())
                .is_some_and(|n| n >= 1),
            "ucnt {ucnt:?} with alice in the room"
        );
        Ok(Outcome::Pass)
    })
}

fn getinv(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let got = s
            .ask_ok(
                "getinv",
                &format!(
                    "<inv inviteId=\"1\" domain=\"{}\"/>",
                    escape(&cx.config.domain)
                ),
            )
            .await;
        s.close().await;
        got?;
        Ok(Outcome::Pass)
    })
}
