//! Bad input: unknown commands (an error reply, the session goes on), bodies that are not
//! well-formed XML (400, RFC 3261 §21.4.1) and requests outside the dialog (481, §12.2.2).
//! Also the dialog rules the server's own INFOs follow (§12.2.1.1) and two commands
//! outstanding at once, as pidgin-sipe sends them at sign-in.

use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::xccos::envelope::{cmd, commandid_envid, envelope, resp_code, show};
use crate::xccos::session::XSession;
use crate::xccos::{XCase, XCtx};
use anyhow::{ensure, Context as _};
use palaver_dialects::sip::request::new_call_id;
use palaver_dialects::sip::Method;

pub fn cases() -> Vec<XCase> {
    vec![
        XCase {
            id: "xccos.cmd.two-outstanding",
            clause: "MS-XCCOSIP (cmd)",
            description: "MUST: two commands sent before either reply (as sipe's bjoin + getinv) are both answered, each rpl naming its envid",
            run: two_outstanding,
        },
        XCase {
            id: "xccos.server-info.in-dialog",
            clause: "RFC 3261 §12.2.1.1",
            description: "MUST: the server's INFOs carry the dialog's tags (From = its tag, To = ours) and strictly increasing CSeq",
            run: server_in_dialog,
        },
        XCase {
            id: "xccos.unknown-command.error-kept",
            clause: "MS-XCCOSIP (cmd)",
            description: "MUST: an unknown command gets a reply with a code other than 200; the session goes on",
            run: unknown_command,
        },
        XCase {
            id: "xccos.malformed.400",
            clause: "RFC 3261 §21.4.1",
            description: "SHOULD: an INFO whose body is not well-formed XML is answered 400 Bad Request; the session goes on",
            run: malformed,
        },
        XCase {
            id: "xccos.info-outside-dialog.481",
            clause: "RFC 3261 §12.2.2",
            description: "MUST: an INFO with the dialog's Call-ID but a wrong To tag is answered 481",
            run: wrong_tag,
        },
        XCase {
            id: "xccos.info-unknown-call.481",
            clause: "RFC 3261 §12.2.2",
            description: "MUST: an INFO with a To tag and an unknown Call-ID is answered 481",
            run: unknown_call,
        },
    ]
}

fn unknown_command(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let got = async {
            let envid = s.command("nosuchcommand", "").await?;
            let rpl = s
                .wait("the reply to cmd:nosuchcommand", |e| {
                    e.name == "rpl" && commandid_envid(e) == Some(envid)
                })
                .await?;
            let after = s.ask_ok("getserverinfo", "").await;
            Ok::<_, anyhow::Error>((rpl, after))
        }
        .await;
        s.close().await;
        let (rpl, after) = got?;
        ensure!(resp_code(&rpl) != 200, "answered 200: {}", show(&rpl));
        after.context("the session after the unknown command")?;
        Ok(Outcome::Pass)
    })
}

fn malformed(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let got = async {
            let envid = s.next_envid();
            let mut body = envelope(envid, &cmd("getserverinfo", ""));
            body.truncate(body.len() - 10);
            let r = s.info_raw(&body).await?;
            let after = s.ask_ok("getserverinfo", "").await;
            Ok::<_, anyhow::Error>((r.status(), after))
        }
        .await;
        s.close().await;
        let (status, after) = got?;
        ensure!(
            status == Some(400),
            "the malformed INFO was answered {status:?}"
        );
        after.context("the session after the malformed INFO")?;
        Ok(Outcome::Pass)
    })
}

fn wrong_tag(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let mut bogus = s.dialog.clone().context("no dialog")?;
        bogus.remote_tag = Some("not-the-tag-0000".into());
        let got = outside(&mut s, &mut bogus).await;
        if let Some(d) = s.dialog.as_mut() {
            d.cseq = d.cseq.max(bogus.cseq);
        }
        s.close().await;
        let status = got?;
        ensure!(status == Some(481), "answered {status:?}");
        Ok(Outcome::Pass)
    })
}

fn unknown_call(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let mut bogus = s.dialog.clone().context("no dialog")?;
        bogus.call_id = new_call_id();
        let got = outside(&mut s, &mut bogus).await;
        s.close().await;
        let status = got?;
        ensure!(status == Some(481), "answered {status:?}");
        Ok(Outcome::Pass)
    })
}

/// Sends a well-formed getserverinfo INFO in the (bogus) dialog `d`; its status.
async fn outside(s: &mut XSession, d: &mut crate::sipua::Dialog) -> anyhow::Result<Option<u16>> {
    let body = envelope(s.next_envid(), &cmd("getserverinfo", ""));
    let r =
        s.ua.in_dialog(d, Method::Info, &[], Some(("text/plain", body.as_bytes())))
            .await?;
    Ok(r.status())
}

fn two_outstanding(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let got = async {
            let first = s.command("getserverinfo", "").await?;
            let second = s
                .command(
                    "getinv",
                    &format!(
                        "<inv inviteId=\"1\" domain=\"{}\"/>",
                        crate::xccos::envelope::escape(&cx.config.domain)
                    ),
                )
                .await?;
            let a = s.reply("getserverinfo", first).await?;
            let b = s.reply("getinv", second).await?;
            Ok::<_, anyhow::Error>((a, b, first, second))
        }
        .await;
        s.close().await;
        let (a, b, first, second) = got?;
        for (rpl, envid) in [(&a, first), (&b, second)] {
            ensure!(
                resp_code(rpl) == 200,
                "code {}: {}",
                resp_code(rpl),
                show(rpl)
            );
            ensure!(
                commandid_envid(rpl) == Some(envid),
                "commandid envid is not {envid}: {}",
                show(rpl)
            );
        }
        Ok(Outcome::Pass)
    })
}

fn server_in_dialog(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let mut s = XSession::open(&cx, 0).await?;
        let got = async {
            s.ask_ok("getserverinfo", "").await?;
            s.join(&cx.config.room).await?;
            let inv = format!(
                "<inv inviteId=\"1\" domain=\"{}\"/>",
                crate::xccos::envelope::escape(&cx.config.domain)
            );
            s.ask_ok("getinv", &inv).await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        let d = s.dialog.clone();
        let infos = s.server_infos.clone();
        s.close().await;
        got?;
        let d = d.context("no dialog")?;
        ensure!(infos.len() >= 3, "only {} server INFOs seen", infos.len());
        for (cseq, from_tag, to_tag) in &infos {
            ensure!(
                from_tag.as_deref() == d.remote_tag.as_deref(),
                "INFO CSeq {cseq}: From tag {from_tag:?}, the dialog's is {:?}",
                d.remote_tag
            );
            ensure!(
                to_tag.as_deref() == Some(d.local_tag.as_str()),
                "INFO CSeq {cseq}: To tag {to_tag:?}, ours is {}",
                d.local_tag
            );
        }
        let seqs: Vec<u32> = infos.iter().map(|i| i.0).collect();
        ensure!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "CSeq not strictly increasing: {seqs:?}"
        );
        Ok(Outcome::Pass)
    })
}
