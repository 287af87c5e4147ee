//! [`Session`]: a logged-in client as the cases use it. Every stanza sent or received goes
//! into the case's wire trace; received stanzas wait in a queue until a case asks for one that
//! matches, so order checks can look at everything that came before; every wait is bounded by
//! `--timeout`. Also: entering rooms, creating instant rooms, iq round trips, disco#info, and
//! the raw pre-TLS stream features for the stream cases.

use super::case::Ctx;
use super::xml::{attr, has_status, NS_MUC, NS_MUC_OWNER};
use crate::client::Client;
use anyhow::{anyhow, bail, Result};
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::reader::{Limits, StreamEvent, StreamReader};
use std::collections::VecDeque;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// A logged-in session with a traced, queued receive side.
pub struct Session {
    ctx: Ctx,
    /// Who this is in the trace (the user's local part).
    pub name: String,
    client: Client,
    pending: VecDeque<Element>,
    next_id: u32,
}

impl Session {
    pub fn new(ctx: Ctx, name: String, client: Client) -> Session {
        Session {
            ctx,
            name,
            client,
            pending: VecDeque::new(),
            next_id: 0,
        }
    }

    /// The full JID the server bound.
    pub fn jid(&self) -> &str {
        &self.client.jid
    }

    /// A fresh stanza id.
    pub fn id(&mut self) -> String {
        self.next_id += 1;
        format!("c{}-{}", self.next_id, self.name)
    }

    /// Sends raw XML.
    pub async fn send(&mut self, xml: &str) -> Result<()> {
        self.ctx.log(format!("{} -> {xml}", self.name));
        tokio::time::timeout(self.ctx.config.timeout, self.client.send(xml.as_bytes()))
            .await
            .map_err(|_| anyhow!("{}: timed out writing to the server", self.name))??;
        Ok(())
    }

    /// Moves what has arrived into the queue, reading once (bounded by `deadline`) when
    /// nothing is buffered.
    async fn fill(&mut self, deadline: Instant, what: &str) -> Result<()> {
        let mut got = false;
        while let Some(e) = self.client.next_buffered()? {
            self.ctx.log(format!("{} <- {e}", self.name));
            self.pending.push_back(e);
            got = true;
        }
        if !got {
            tokio::time::timeout_at(deadline, self.client.read_more())
                .await
                .map_err(|_| anyhow!("{}: timed out waiting for {what}", self.name))??;
        }
        Ok(())
    }

    /// The first received stanza matching `pred` (earlier non-matching ones stay queued).
    pub async fn recv(&mut self, what: &str, pred: impl Fn(&Element) -> bool) -> Result<Element> {
        let deadline = Instant::now() + self.ctx.config.timeout;
        loop {
            if let Some(i) = self.pending.iter().position(&pred) {
                if let Some(e) = self.pending.remove(i) {
                    return Ok(e);
                }
            }
            self.fill(deadline, what).await?;
        }
    }

    /// Every queued stanza up to and including the first matching `pred`, in order.
    pub async fn collect(
        &mut self,
        what: &str,
        pred: impl Fn(&Element) -> bool,
    ) -> Result<Vec<Element>> {
        let deadline = Instant::now() + self.ctx.config.timeout;
        loop {
            if let Some(i) = self.pending.iter().position(&pred) {
                return Ok(self.pending.drain(..=i).collect());
            }
            self.fill(deadline, what).await?;
        }
    }

    /// Sends an iq of `kind` to `to` with `payload` and returns the answer (result or error).
    pub async fn iq(&mut self, kind: &str, to: &str, payload: &str) -> Result<Element> {
        let id = self.id();
        let to_attr = if to.is_empty() {
            String::new()
        } else {
            format!(" to='{}'", attr(to))
        };
        self.send(&format!(
            "<iq type='{kind}' id='{id}'{to_attr}>{payload}</iq>"
        ))
        .await?;
        self.recv(&format!("the answer to iq {id}"), |e| {
            e.name == "iq"
                && e.attr("id") == Some(id.as_str())
                && matches!(e.attr("type"), Some("result" | "error"))
        })
        .await
    }

    /// Like [`Session::iq`] but an error answer is a failure.
    pub async fn iq_ok(&mut self, kind: &str, to: &str, payload: &str) -> Result<Element> {
        let answer = self.iq(kind, to, payload).await?;
        if answer.attr("type") != Some("result") {
            bail!(
                "{}: iq to {to} answered {}: {}",
                self.name,
                crate::client::error_condition(&answer),
                answer
            );
        }
        Ok(answer)
    }

    /// The features of `jid`'s disco#info (XEP-0030 §3.1).
    pub async fn disco_features(&mut self, jid: &str) -> Result<Vec<String>> {
        let answer = self
            .iq_ok(
                "get",
                jid,
                "<query xmlns='http://jabber.org/protocol/disco#info'/>",
            )
            .await?;
        Ok(answer
            .children()
            .filter(|q| q.name == "query")
            .flat_map(|q| q.children())
            .filter(|f| f.name == "feature")
            .filter_map(|f| f.attr("var").map(str::to_string))
            .collect())
    }

    /// Sends the join presence for `room/nick` with `extra` inside the MUC `<x/>` and returns
    /// everything received up to and including our own presence (or the error presence).
    pub async fn enter(&mut self, room: &str, nick: &str, extra: &str) -> Result<Vec<Element>> {
        let occupant = format!("{room}/{nick}");
        self.send(&format!(
            "<presence to='{}'><x xmlns='{NS_MUC}'>{extra}</x></presence>",
            attr(&occupant)
        ))
        .await?;
        self.collect(&format!("the self-presence of {occupant}"), |e| {
            e.name == "presence" && e.attr("from") == Some(occupant.as_str())
        })
        .await
    }

    /// Enters `room/nick` without history and fails unless the join succeeded.
    pub async fn join(&mut self, room: &str, nick: &str) -> Result<Vec<Element>> {
        let got = self.enter(room, nick, "<history maxstanzas='0'/>").await?;
        if let Some(last) = got.last() {
            if last.attr("type") == Some("error") {
                bail!(
                    "{}: joining {room} failed: {}",
                    self.name,
                    crate::client::error_condition(last)
                );
            }
        }
        Ok(got)
    }

    /// Creates `room` as `nick`: expects status 201 (XEP-0045 §10.1.1), then submits the
    /// configuration form with `fields` (`var`, value; none: an instant room, §10.1.2).
    pub async fn create(&mut self, room: &str, nick: &str, fields: &[(&str, &str)]) -> Result<()> {
        let got = self.join(room, nick).await?;
        let created = got.last().is_some_and(|p| has_status(p, "201"));
        if !created {
            bail!(
                "{}: entering the new room {room} gave no status 201",
                self.name
            );
        }
        self.configure(room, fields).await
    }

    /// Submits the room configuration form with `fields` (XEP-0045 §10.2).
    pub async fn configure(&mut self, room: &str, fields: &[(&str, &str)]) -> Result<()> {
        let mut form = String::new();
        if !fields.is_empty() {
            form.push_str("<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>");
            for (var, value) in fields {
                form.push_str(&format!(
                    "<field var='{}'><value>{}</value></field>",
                    attr(var),
                    attr(value)
                ));
            }
        }
        self.iq_ok(
            "set",
            room,
            &format!(
                "<query xmlns='{NS_MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'>{form}</x></query>"
            ),
        )
        .await?;
        Ok(())
    }

    /// Sends a groupchat message and waits for its reflection; returns the reflection.
    pub async fn say(&mut self, room: &str, body: &str) -> Result<Element> {
        let id = self.id();
        self.send(&format!(
            "<message type='groupchat' to='{}' id='{id}'><body>{}</body></message>",
            attr(room),
            attr(body)
        ))
        .await?;
        let b = body.to_string();
        self.recv("the reflection of our groupchat message", move |e| {
            e.name == "message"
                && e.attr("from")
                    .is_some_and(|f| f.split('/').next() == Some(room))
                && (e.attr("type") == Some("error")
                    || crate::client::body_text(e) == Some(b.as_str()))
        })
        .await
    }

    /// Closes the stream.
    pub async fn close(self) {
        self.client.close().await;
    }
}

/// Opens a plain TCP stream to the server and returns the `<stream:features/>` it offers
/// before TLS (the connection is then dropped).
pub async fn raw_features(ctx: &Ctx) -> Result<Element> {
    let c = &ctx.config;
    let deadline = Instant::now() + c.timeout;
    let mut tcp = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(c.connect.addr))
        .await
        .map_err(|_| anyhow!("connecting timed out"))??;
    let header = format!(
        "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        attr(&c.domain)
    );
    ctx.log(format!("raw -> {header}"));
    tokio::time::timeout_at(deadline, tcp.write_all(header.as_bytes()))
        .await
        .map_err(|_| anyhow!("timed out writing the stream header"))??;
    let mut reader = StreamReader::new(Limits::default());
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(ev) = reader.next_event()? {
            if let StreamEvent::Stanza(e) = ev {
                ctx.log(format!("raw <- {e}"));
                if e.name == "features" {
                    return Ok(e);
                }
            }
        }
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut buf))
            .await
            .map_err(|_| anyhow!("timed out waiting for <stream:features/>"))??;
        if n == 0 {
            bail!("the server closed the connection before <stream:features/>");
        }
        reader.feed(&buf[..n])?;
    }
}
