//! [`XSession`]: one user's group-chat session as pidgin-sipe opens it — REGISTER, INVITE the
//! lookup URI, `cmd:requri`, BYE the lookup dialog, INVITE the pool URI — and what the cases
//! do in it: commands in INFO envelopes and their replies from the server's own INFOs,
//! room messages, notices, and the raw SIP requests of the bad-input cases. Every wait is
//! bounded by `--timeout`; every message goes into the case's trace.

use super::envelope::{self, commandid_envid, parse_items, resp_code};
use super::XCtx;
use crate::sipua::{tracer, Dialog, Ua};
use anyhow::{anyhow, bail, Context as _, Result};
use palaver_dialects::sip::{Method, SipMessage};
use palaver_dialects::xmpp::element::Element;
use std::collections::VecDeque;
use tokio::time::Instant;

/// A group-chat session.
pub struct XSession {
    pub ua: Ua,
    cx: XCtx,
    /// The chat-server dialog (after [`XSession::open`]).
    pub dialog: Option<Dialog>,
    envid: u32,
    /// Items (`rpl`, `ntc`, `grpchat`) of the server's INFOs on the chat-server dialog, not
    /// yet taken.
    items: VecDeque<Element>,
    /// The pool URI of the last `rpl:requri`.
    pub pool_uri: Option<String>,
    /// (CSeq, From tag, To tag) of each server INFO on the chat-server dialog, in order.
    pub server_infos: Vec<(u32, Option<String>, Option<String>)>,
}

impl XSession {
    /// A connected user agent of user `i`, nothing sent yet.
    pub async fn connect(cx: &XCtx, i: usize) -> Result<XSession> {
        let c = &cx.config;
        let u = cx.user(i).clone();
        cx.log(format!(
            "** {} connects over {}",
            u.local,
            c.transport.param()
        ));
        let conn = super::conn::Conn::open(c.server, c.transport, c.tls.as_ref())
            .await
            .with_context(|| format!("{} connecting", u.local))?;
        let ua = Ua::new(
            tracer(cx),
            c.timeout,
            conn,
            &u.local,
            &u.password,
            &u.domain,
        );
        Ok(XSession {
            ua,
            cx: cx.clone(),
            dialog: None,
            envid: rand::random::<u32>() & 0x00ff_ffff,
            items: VecDeque::new(),
            pool_uri: None,
            server_infos: Vec::new(),
        })
    }

    /// REGISTER, failing unless answered 200.
    pub async fn register(&mut self) -> Result<()> {
        let code = self.ua.register().await?;
        if code != 200 {
            bail!("{}: REGISTER answered {code}", self.ua.name);
        }
        Ok(())
    }

    /// INVITE `uri`, failing unless a dialog results.
    pub async fn invite_ok(&mut self, uri: &str) -> Result<Dialog> {
        let (r, d) = self.ua.invite(uri).await?;
        d.ok_or_else(|| {
            anyhow!(
                "{}: INVITE {uri} answered {} {}",
                self.ua.name,
                r.status().unwrap_or(0),
                r.reason().unwrap_or_default()
            )
        })
    }

    /// The whole sign-in of user `i` (see the module doc); the session then sits on the pool
    /// dialog.
    pub async fn open(cx: &XCtx, i: usize) -> Result<XSession> {
        let mut s = XSession::connect(cx, i).await?;
        s.register().await?;
        let lookup = s.invite_ok(&cx.config.chat_uri).await?;
        s.dialog = Some(lookup);
        let rpl = s.ask("requri", "").await?;
        let pool = pool_uri(&rpl)?;
        let mut lookup = s.dialog.take().context("no lookup dialog")?;
        let bye = s.ua.in_dialog(&mut lookup, Method::Bye, &[], None).await?;
        if bye.status() != Some(200) {
            bail!("BYE of the lookup dialog answered {:?}", bye.status());
        }
        s.items.clear();
        s.server_infos.clear();
        let pool_dialog = s.invite_ok(&pool).await?;
        s.dialog = Some(pool_dialog);
        s.pool_uri = Some(pool);
        Ok(s)
    }

    /// A fresh envelope id.
    pub fn next_envid(&mut self) -> u32 {
        self.envid = self.envid.wrapping_add(1);
        self.envid
    }

    /// Sends a raw INFO body (`text/plain`) in the chat-server dialog; returns the response.
    pub async fn info_raw(&mut self, body: &str) -> Result<SipMessage> {
        let mut d = self.dialog.take().context("no chat-server dialog")?;
        let r = self
            .ua
            .in_dialog(
                &mut d,
                Method::Info,
                &[],
                Some(("text/plain", body.as_bytes())),
            )
            .await;
        self.dialog = Some(d);
        r
    }

    /// Sends `inner` in an envelope; returns (SIP status, envid).
    pub async fn send_item(&mut self, inner: &str) -> Result<(u16, u32)> {
        let envid = self.next_envid();
        let r = self.info_raw(&envelope::envelope(envid, inner)).await?;
        Ok((r.status().unwrap_or(0), envid))
    }

    /// Sends `cmd:NAME` with `data` (the content of `<data/>`); fails unless the INFO got
    /// 200. Returns the envid.
    pub async fn command(&mut self, name: &str, data: &str) -> Result<u32> {
        let (code, envid) = self.send_item(&envelope::cmd(name, data)).await?;
        if code != 200 {
            bail!(
                "{}: the INFO carrying cmd:{name} was answered {code}",
                self.ua.name
            );
        }
        Ok(envid)
    }

    /// `cmd:NAME` and its `rpl:NAME` (matched by its `commandid` envid when it has one).
    pub async fn ask(&mut self, name: &str, data: &str) -> Result<Element> {
        let envid = self.command(name, data).await?;
        self.reply(name, envid).await
    }

    /// Waits for `rpl:NAME` answering envelope `envid`.
    pub async fn reply(&mut self, name: &str, envid: u32) -> Result<Element> {
        let id = format!("rpl:{name}");
        self.wait(&id, |e| {
            e.name == "rpl"
                && e.attr("id").is_some_and(|x| x.eq_ignore_ascii_case(&id))
                && commandid_envid(e).is_none_or(|x| x == envid)
        })
        .await
    }

    /// Like [`XSession::ask`], failing unless the reply's code is 200.
    pub async fn ask_ok(&mut self, name: &str, data: &str) -> Result<Element> {
        let rpl = self.ask(name, data).await?;
        let code = resp_code(&rpl);
        if code != 200 {
            bail!(
                "{}: rpl:{name} code {code}: {}",
                self.ua.name,
                envelope::show(&rpl)
            );
        }
        Ok(rpl)
    }

    /// The first item received matching `pred` (earlier ones stay queued).
    pub async fn wait(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Result<Element> {
        let deadline = Instant::now() + self.ua.timeout;
        loop {
            self.drain();
            if let Some(i) = self.items.iter().position(&pred) {
                if let Some(e) = self.items.remove(i) {
                    return Ok(e);
                }
            }
            self.ua.pump(deadline, what).await?;
        }
    }

    /// Whether an item matching `pred` arrives within `wait` (it is taken).
    pub async fn arrives(
        &mut self,
        wait: std::time::Duration,
        pred: impl Fn(&Element) -> bool,
    ) -> Result<bool> {
        let deadline = Instant::now() + wait;
        loop {
            self.drain();
            if let Some(i) = self.items.iter().position(&pred) {
                self.items.remove(i);
                return Ok(true);
            }
            if self.ua.pump(deadline, "more").await.is_err() {
                return Ok(false);
            }
        }
    }

    /// Moves the bodies of the server's INFOs on the chat-server dialog into the item queue.
    fn drain(&mut self) {
        let call_id = self.dialog.as_ref().map(|d| d.call_id.clone());
        while let Some(m) = self.ua.inbound.pop_front() {
            if m.method() != Some(Method::Info) || Some(m.call_id()) != call_id.as_deref() {
                continue;
            }
            self.server_infos.push((
                m.cseq().seq,
                m.from().tag().map(str::to_string),
                m.to().tag().map(str::to_string),
            ));
            match parse_items(m.body()) {
                Ok(items) => self.items.extend(items),
                Err(e) => self.ua.log(format!(
                    "{}: unparsable server INFO body: {e}",
                    self.ua.name
                )),
            }
        }
    }

    /// `cmd:join` of `room` (a channel value); the reply, which must be 200.
    pub async fn join(&mut self, room: &str) -> Result<Element> {
        let domain = self.cx.config.domain.clone();
        self.ask_ok("join", &envelope::chanid(0, &domain, room))
            .await
    }

    /// Posts `text` to `chan` (a `ma-chan://` URI); returns the INFO's SIP status.
    pub async fn post(&mut self, chan: &str, text: &str) -> Result<(u16, u32)> {
        let author = self.ua.aor.clone();
        self.send_item(&envelope::grpchat(chan, &author, text))
            .await
    }

    /// Waits for a room message in `chan` whose text is `text`.
    pub async fn wait_chat(&mut self, chan: &str, text: &str) -> Result<Element> {
        self.wait(&format!("the room message {text:?}"), |e| {
            envelope::is_chat(e, chan, text)
        })
        .await
    }

    /// BYE of the chat-server dialog (errors ignored) and close.
    pub async fn close(mut self) {
        if let Some(mut d) = self.dialog.take() {
            let _ = self.ua.in_dialog(&mut d, Method::Bye, &[], None).await;
        }
        self.ua.close().await;
    }
}

/// Signed-in sessions of alice and bob (users 0 and 1, opened in that order), for the cases
/// where one acts and the other watches.
pub async fn open_pair(cx: &XCtx) -> Result<(XSession, XSession)> {
    let a = XSession::open(cx, 0).await?;
    let b = XSession::open(cx, 1).await?;
    Ok((a, b))
}

/// Joins `a`, then `b`, to `room`.
pub async fn join_pair(a: &mut XSession, b: &mut XSession, room: &str) -> Result<()> {
    a.join(room).await?;
    b.join(room).await?;
    Ok(())
}

/// Closes `a`, then `b`.
pub async fn close_pair(a: XSession, b: XSession) {
    a.close().await;
    b.close().await;
}

/// `data/uib/@uri` of an `rpl:requri`.
pub fn pool_uri(rpl: &Element) -> Result<String> {
    if resp_code(rpl) != 200 {
        bail!(
            "rpl:requri code {}: {}",
            resp_code(rpl),
            envelope::show(rpl)
        );
    }
    envelope::data(rpl)
        .and_then(|d| d.children().find(|c| c.name == "uib"))
        .and_then(|u| u.attr("uri"))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("rpl:requri without data/uib/@uri: {}", envelope::show(rpl)))
}
