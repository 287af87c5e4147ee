//! Signing in as pidgin-sipe does and the SIP side of the session: REGISTER and INVITE with
//! digest (RFC 3261 §22), `cmd:requri` and the pool INVITE, BYE (§15.1.2) and session
//! refreshes with UPDATE (RFC 4028, RFC 3311).

use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::xccos::envelope::{commandid_envid, is_reply, resp_code, show};
use crate::xccos::session::{pool_uri, XSession};
use crate::xccos::{XCase, XCtx};
use anyhow::{bail, ensure, Context as _};
use palaver_dialects::sip::Method;

pub fn cases() -> Vec<XCase> {
    vec![
        XCase {
            id: "xccos.session.register-digest",
            clause: "RFC 3261 §10.3, §22.2",
            description: "MUST: REGISTER answered 200 (after a digest challenge, when one is made)",
            run: register,
        },
        XCase {
            id: "xccos.session.invite-lookup",
            clause: "RFC 3261 §22.3, §12.1.1",
            description: "MUST: INVITE of the lookup URI on an unregistered connection ends in 2xx (a digest challenge answered) with a To tag and a Contact",
            run: invite_lookup,
        },
        XCase {
            id: "xccos.requri.pool-uri",
            clause: "MS-XCCOSIP (cmd:requri)",
            description: "MUST: cmd:requri is answered by the server's INFO rpl:requri, code 200, commandid envid echoed, data/uib/@uri a sip: URI",
            run: requri,
        },
        XCase {
            id: "xccos.session.reinvite-pool",
            clause: "MS-XCCOSIP (cmd:requri)",
            description: "MUST: after BYE of the lookup dialog (200), INVITE of the pool URI gives a dialog where commands work",
            run: reinvite_pool,
        },
        XCase {
            id: "xccos.session.bye-ends-dialog",
            clause: "RFC 3261 §15.1.2, §12.2.2",
            description: "MUST: BYE of the chat dialog is answered 200; an INFO in it afterwards gets 481",
            run: bye,
        },
        XCase {
            id: "xccos.session-timer.update-200",
            clause: "RFC 4028 §9; RFC 3311 §5.2",
            description: "MUST: UPDATE with Session-Expires in the chat dialog is answered 200 carrying Session-Expires",
            run: update,
        },
        XCase {
            id: "xccos.session-timer.too-small-422",
            clause: "RFC 4028 §9",
            description: "MUST: UPDATE with Session-Expires below the server's minimum is answered 422 with Min-SE (N-A without session timers)",
            run: too_small,
        },
    ]
}

fn register(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::connect(&cx, 0).await?;
        s.register().await?;
        s.close().await;
        Ok(Outcome::Pass)
    })
}

fn invite_lookup(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::connect(&cx, 0).await?;
        let (r, d) = s.ua.invite(&cx.config.chat_uri).await?;
        let Some(d) = d else {
            bail!(
                "INVITE {} answered {} {}",
                cx.config.chat_uri,
                r.status().unwrap_or(0),
                r.reason().unwrap_or_default()
            );
        };
        ensure!(d.remote_tag.is_some(), "the 2xx has no To tag");
        ensure!(r.contact().is_some(), "the 2xx has no Contact");
        s.dialog = Some(d);
        s.close().await;
        Ok(Outcome::Pass)
    })
}

fn requri(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::connect(&cx, 0).await?;
        s.register().await?;
        let d = s.invite_ok(&cx.config.chat_uri).await?;
        s.dialog = Some(d);
        let envid = s.command("requri", "").await?;
        let rpl = s.wait("rpl:requri", |e| is_reply(e, "requri")).await?;
        s.close().await;
        ensure!(
            resp_code(&rpl) == 200,
            "code {}: {}",
            resp_code(&rpl),
            show(&rpl)
        );
        ensure!(
            commandid_envid(&rpl) == Some(envid),
            "commandid envid is not {envid}: {}",
            show(&rpl)
        );
        let uri = pool_uri(&rpl)?;
        ensure!(
            uri.starts_with("sip:") || uri.starts_with("sips:"),
            "pool URI {uri:?}"
        );
        Ok(Outcome::Pass)
    })
}

fn reinvite_pool(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let got = s.ask_ok("getserverinfo", "").await;
        s.close().await;
        got.context("cmd:getserverinfo on the pool dialog")?;
        Ok(Outcome::Pass)
    })
}

fn bye(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let mut d = s.dialog.take().context("no dialog")?;
        let r = s.ua.in_dialog(&mut d, Method::Bye, &[], None).await?;
        ensure!(r.status() == Some(200), "BYE answered {:?}", r.status());
        let body = crate::xccos::envelope::envelope(
            s.next_envid(),
            &crate::xccos::envelope::cmd("getserverinfo", ""),
        );
        let r =
            s.ua.in_dialog(
                &mut d,
                Method::Info,
                &[],
                Some(("text/plain", body.as_bytes())),
            )
            .await?;
        s.ua.close().await;
        ensure!(
            r.status() == Some(481),
            "INFO after BYE answered {:?}",
            r.status()
        );
        Ok(Outcome::Pass)
    })
}

fn update(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let mut d = s.dialog.take().context("no dialog")?;
        let r =
            s.ua.in_dialog(
                &mut d,
                Method::Update,
                &[
                    ("Supported", "timer"),
                    ("Session-Expires", "600;refresher=uac"),
                ],
                None,
            )
            .await?;
        s.dialog = Some(d);
        s.close().await;
        ensure!(r.status() == Some(200), "UPDATE answered {:?}", r.status());
        ensure!(
            crate::sipua::session_expires(&r).is_some(),
            "the 200 to UPDATE has no Session-Expires"
        );
        Ok(Outcome::Pass)
    })
}

fn too_small(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let mut d = s.dialog.take().context("no dialog")?;
        if d.session_expires.is_none() {
            s.dialog = Some(d);
            s.close().await;
            return Ok(Outcome::NotApplicable(
                "the INVITE's 2xx has no Session-Expires".into(),
            ));
        }
        let r =
            s.ua.in_dialog(
                &mut d,
                Method::Update,
                &[
                    ("Supported", "timer"),
                    ("Session-Expires", "10;refresher=uac"),
                ],
                None,
            )
            .await?;
        s.dialog = Some(d);
        s.close().await;
        ensure!(
            r.status() == Some(422),
            "UPDATE with Session-Expires 10 answered {:?}",
            r.status()
        );
        ensure!(r.header("Min-SE").is_some(), "the 422 has no Min-SE");
        Ok(Outcome::Pass)
    })
}
