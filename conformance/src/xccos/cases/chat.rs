//! Room messages (`grpchat`): stored before the INFO's 200, delivered to the other
//! occupants and echoed to the sender, refused when too long or when the sender is not in
//! the room; and history (`cmd:bccontext`).

use super::info::server_info;
use crate::suite::case::{boxed, CaseFuture, Outcome};
use crate::xccos::envelope::{
    chanib, chat_text, commandid_envid, data_children, is_chat, is_utc_timestamp, resp_code, show,
};
use crate::xccos::session::{close_pair, join_pair, open_pair, XSession};
use crate::xccos::{XCase, XCtx};
use anyhow::{bail, ensure, Context as _, Result};
use palaver_dialects::xmpp::element::Element;

pub fn cases() -> Vec<XCase> {
    vec![
        XCase {
            id: "xccos.grpchat.stored-then-200",
            clause: "MS-XCCOSIP (grpchat)",
            description: "MUST: a room message answered 200 is in the history a new session reads right after (cmd:bccontext)",
            run: stored,
        },
        XCase {
            id: "xccos.grpchat.fanout-to-other",
            clause: "MS-XCCOSIP (grpchat)",
            description: "MUST: another occupant receives the message as a server INFO grpchat with chanUri, author, ISO-8601 ts and the text",
            run: fanout,
        },
        XCase {
            id: "xccos.grpchat.echo-to-sender",
            clause: "MS-XCCOSIP (grpchat)",
            description: "MUST: the sender receives its own message back with author = its SIP address",
            run: echo,
        },
        XCase {
            id: "xccos.grpchat.multiline",
            clause: "MS-XCCOSIP (grpchat)",
            description: "MUST: a two-line message reaches another occupant with both lines (CRLF or LF)",
            run: multiline,
        },
        XCase {
            id: "xccos.grpchat.markup-and-utf8",
            clause: "MS-XCCOSIP (grpchat)",
            description: "MUST: text with XML special characters (escaped) and non-ASCII UTF-8 reaches another occupant unchanged",
            run: markup,
        },
        XCase {
            id: "xccos.grpchat.at-limit-accepted",
            clause: "MS-XCCOSIP (grpchat)",
            description: "MUST: a message of exactly messageSizeLimit (ASCII) characters is accepted (200) and reaches another occupant",
            run: at_limit,
        },
        XCase {
            id: "xccos.grpchat.oversized-refused",
            clause: "MS-XCCOSIP (grpchat)",
            description: "MUST: a message longer than messageSizeLimit gets a non-2xx to the INFO or an error code, and is not delivered",
            run: oversized,
        },
        XCase {
            id: "xccos.grpchat.not-joined-refused",
            clause: "MS-XCCOSIP (grpchat)",
            description: "MUST: a message to a room the session has not joined gets a non-2xx to the INFO or an error code, and is not delivered",
            run: not_joined,
        },
        XCase {
            id: "xccos.bccontext.last-n-in-order",
            clause: "MS-XCCOSIP (cmd:bccontext)",
            description: "MUST: <last cnt=N/> returns the room's last N messages, oldest first",
            run: last_n,
        },
        XCase {
            id: "xccos.bccontext.message-attributes",
            clause: "MS-XCCOSIP (cmd:bccontext)",
            description: "MUST: history entries are data/chanib/msg[@id=grpchat] with chanUri, a sip: author and an ISO-8601 UTC ts",
            run: history_attributes,
        },
    ]
}

/// Posts `text` and requires the INFO's 200.
async fn post_ok(s: &mut XSession, chan: &str, text: &str) -> Result<()> {
    let (code, _) = s.post(chan, text).await?;
    ensure!(code == 200, "the grpchat INFO was answered {code}");
    Ok(())
}

/// Posts `text` as `a` (requiring the 200) and waits for `b` to receive it.
async fn post_seen(a: &mut XSession, b: &mut XSession, chan: &str, text: &str) -> Result<Element> {
    post_ok(a, chan, text).await?;
    b.wait_chat(chan, text).await
}

/// alice and bob sign in and join the room, alice posts `text` (requiring the 200) and bob
/// receives it; both close. The message bob got.
async fn posted_and_seen(cx: &XCtx, chan: &str, text: &str) -> Result<Element> {
    let (mut a, mut b) = open_pair(cx).await?;
    let got = async {
        join_pair(&mut a, &mut b, &cx.config.room).await?;
        post_seen(&mut a, &mut b, chan, text).await
    }
    .await;
    close_pair(a, b).await;
    got
}

/// `messageSizeLimit` of the server's `rpl:serverinfo`.
async fn size_limit(s: &mut XSession) -> Result<usize> {
    let sib = server_info(s).await?;
    sib.attr("messageSizeLimit")
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no messageSizeLimit: {sib}"))
}

/// Requires a `sip:` author and an ISO-8601 UTC ts on the room message `m`.
fn author_and_ts(m: &Element) -> Result<()> {
    ensure!(
        m.attr("author").is_some_and(|x| x.starts_with("sip:")),
        "author: {}",
        show(m)
    );
    ensure!(
        m.attr("ts").is_some_and(is_utc_timestamp),
        "ts: {}",
        show(m)
    );
    Ok(())
}

/// The history of `chan`: `data/chanib/msg[@id=grpchat]` of `rpl:bccontext` for `cnt`.
async fn history(s: &mut XSession, chan: &str, cnt: u32) -> Result<Vec<Element>> {
    let data = format!("{}<bcq><last cnt=\"{cnt}\"/></bcq>", chanib(chan));
    let rpl = s.ask_ok("bccontext", &data).await?;
    Ok(data_children(&rpl, "chanib")
        .into_iter()
        .flat_map(|c| {
            c.children()
                .filter(|m| m.name == "msg" && m.attr("id") == Some("grpchat"))
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect())
}

fn stored(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let chan = cx.config.chan();
        let text = cx.unique("stored");
        let mut a = XSession::open(&cx, 0).await?;
        let posted = async {
            a.join(&cx.config.room).await?;
            post_ok(&mut a, &chan, &text).await
        }
        .await;
        let read = async {
            posted?;
            let mut b = XSession::open(&cx, 1).await?;
            let got = async {
                b.join(&cx.config.room).await?;
                history(&mut b, &chan, 25).await
            }
            .await;
            b.close().await;
            got
        }
        .await;
        a.close().await;
        let msgs = read?;
        ensure!(
            msgs.iter().any(|m| is_chat(m, &chan, &text)),
            "{text:?} not in the history read after the 200 ({} entries)",
            msgs.len()
        );
        Ok(Outcome::Pass)
    })
}

fn fanout(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let chan = cx.config.chan();
        let text = cx.unique("fanout");
        let m = posted_and_seen(&cx, &chan, &text).await?;
        ensure!(m.name == "grpchat", "not a grpchat: {}", show(&m));
        author_and_ts(&m)?;
        Ok(Outcome::Pass)
    })
}

fn echo(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let chan = cx.config.chan();
        let text = cx.unique("echo");
        let mut a = XSession::open(&cx, 0).await?;
        let got = async {
            a.join(&cx.config.room).await?;
            post_ok(&mut a, &chan, &text).await?;
            a.wait_chat(&chan, &text).await
        }
        .await;
        a.close().await;
        let m = got?;
        let me = cx.user(0).aor();
        ensure!(
            m.attr("author")
                .is_some_and(|x| x.eq_ignore_ascii_case(&me)),
            "author is not {me}: {}",
            show(&m)
        );
        Ok(Outcome::Pass)
    })
}

fn multiline(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let chan = cx.config.chan();
        let first = cx.unique("line one");
        let sent = format!("{first}\r\nline two");
        let (mut a, mut b) = open_pair(&cx).await?;
        let got = async {
            join_pair(&mut a, &mut b, &cx.config.room).await?;
            post_ok(&mut a, &chan, &sent).await?;
            b.wait("the two-line message", |e| {
                e.name == "grpchat" && chat_text(e).is_some_and(|t| t.starts_with(&first))
            })
            .await
        }
        .await;
        close_pair(a, b).await;
        let m = got?;
        let t = chat_text(&m).unwrap_or_default();
        ensure!(t == format!("{first}\nline two"), "text {t:?}");
        Ok(Outcome::Pass)
    })
}

fn markup(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let chan = cx.config.chan();
        let text = cx.unique("<b>a & b</b> \"q\" 'a' ü € 😀");
        posted_and_seen(&cx, &chan, &text).await?;
        Ok(Outcome::Pass)
    })
}

/// Posts `text` (expected to be refused) as `a` while `b` listens; Ok when refused and not
/// delivered.
async fn refused(a: &mut XSession, b: &mut XSession, chan: &str, text: &str) -> Result<()> {
    let (code, envid) = a.post(chan, text).await?;
    if code == 200 {
        let rpl = a
            .wait("an error reply to the grpchat", |e| {
                e.name == "rpl" && commandid_envid(e) == Some(envid)
            })
            .await
            .context("the INFO got 200 and no reply followed")?;
        ensure!(resp_code(&rpl) != 200, "accepted: {}", show(&rpl));
    } else {
        ensure!(code >= 300, "the INFO was answered {code}");
    }
    let wait = b.ua.timeout.min(std::time::Duration::from_secs(2));
    if b.arrives(wait, |e| is_chat(e, chan, text)).await? {
        bail!("the refused message was delivered");
    }
    Ok(())
}

fn oversized(cx: XCtx) -> CaseFuture {
    boxed(sized(cx, true))
}

fn at_limit(cx: XCtx) -> CaseFuture {
    boxed(sized(cx, false))
}

/// alice (reading `messageSizeLimit`) and bob join the room; alice posts a message longer
/// than the limit when `over` (it must be refused and not delivered), else one of exactly
/// the limit (it must be accepted and reach bob).
async fn sized(cx: XCtx, over: bool) -> Result<Outcome> {
    let chan = cx.config.chan();
    let (mut a, mut b) = open_pair(&cx).await?;
    let got = async {
        let limit = size_limit(&mut a).await?;
        join_pair(&mut a, &mut b, &cx.config.room).await?;
        if over {
            let mut text = cx.unique("big");
            while text.chars().count() <= limit {
                text.push('x');
            }
            refused(&mut a, &mut b, &chan, &text).await
        } else {
            let mut text = cx.unique("limit");
            text.truncate(limit);
            while text.len() < limit {
                text.push('y');
            }
            post_seen(&mut a, &mut b, &chan, &text).await.map(drop)
        }
    }
    .await;
    close_pair(a, b).await;
    got?;
    Ok(Outcome::Pass)
}

fn not_joined(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let chan = cx.config.chan();
        let text = cx.unique("not joined");
        let (mut a, mut b) = open_pair(&cx).await?;
        let got = async {
            b.join(&cx.config.room).await?;
            refused(&mut a, &mut b, &chan, &text).await
        }
        .await;
        close_pair(a, b).await;
        got?;
        Ok(Outcome::Pass)
    })
}

fn last_n(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let chan = cx.config.chan();
        let texts: Vec<String> = (1..=3)
            .map(|i| cx.unique(&format!("history {i}")))
            .collect();
        let mut a = XSession::open(&cx, 0).await?;
        let got = async {
            a.join(&cx.config.room).await?;
            for t in &texts {
                post_ok(&mut a, &chan, t).await?;
            }
            let all = history(&mut a, &chan, 25).await?;
            let two = history(&mut a, &chan, 2).await?;
            Ok::<_, anyhow::Error>((all, two))
        }
        .await;
        a.close().await;
        let (all, two) = got?;
        let pos: Vec<Option<usize>> = texts
            .iter()
            .map(|t| all.iter().position(|m| is_chat(m, &chan, t)))
            .collect();
        ensure!(
            pos.iter().all(Option::is_some) && pos.windows(2).all(|w| w[0] < w[1]),
            "the three posts are not in order in <last cnt=25/> (positions {pos:?})"
        );
        let got: Vec<String> = two.iter().filter_map(chat_text).collect();
        ensure!(
            got == texts[1..],
            "<last cnt=2/> gave {got:?}, expected the last two posts"
        );
        Ok(Outcome::Pass)
    })
}

fn history_attributes(cx: XCtx) -> CaseFuture {
    boxed(async move {
        let chan = cx.config.chan();
        let text = cx.unique("attributes");
        let mut a = XSession::open(&cx, 0).await?;
        let got = async {
            a.join(&cx.config.room).await?;
            post_ok(&mut a, &chan, &text).await?;
            history(&mut a, &chan, 5).await
        }
        .await;
        a.close().await;
        let msgs = got?;
        let m = msgs
            .iter()
            .find(|m| is_chat(m, &chan, &text))
            .with_context(|| format!("{text:?} not in the history ({} entries)", msgs.len()))?;
        author_and_ts(m)?;
        Ok(Outcome::Pass)
    })
}
