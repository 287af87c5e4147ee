//! The SIP side of a cross case: a pager-mode user ([`Pager`]) built on [`crate::sipua`]:
//! registered, sending MESSAGEs to room URIs (posts and `#commands`) and reading the room's
//! MESSAGEs ([`Inbound`]) from a queue, every wait bounded by `--timeout`; conference
//! subscriptions and the RFC 4575 roster of a room ([`conference_users`]).

use super::ctx::{CrossCtx, Room};
use crate::sipua::{tracer, Dialog, Ua};
use anyhow::{bail, ensure, Context as _, Result};
use palaver_dialects::xmpp::element::Element;
use std::time::Duration;

pub use crate::sipua::Inbound;

/// A registered pager-mode SIP user (the second `--user`, or `--sip-user`).
pub struct Pager {
    ua: Ua,
}

impl Pager {
    /// Connects and registers the SIP user (a 2xx required).
    pub async fn open(cx: &CrossCtx) -> Result<Pager> {
        let (user, domain, password) = &cx.sip.user;
        let mut ua = Ua::connect(tracer(&cx.x), &cx.sip.server, user, password, domain)
            .await?
            .pager();
        let status = ua.register().await?;
        if !(200..300).contains(&status) {
            ua.close().await;
            bail!("REGISTER of {user}@{domain} answered {status}");
        }
        Ok(Pager { ua })
    }

    /// Sends `text` to the room; returns the final status.
    pub async fn send(&mut self, room: &Room, text: &str) -> Result<u16> {
        self.ua.message(&room.uri, text).await
    }

    /// Sends `text` to the room and fails unless it is answered 2xx (RFC 3428 §7).
    pub async fn send_ok(&mut self, room: &Room, text: &str) -> Result<()> {
        let status = self.send(room, text).await?;
        ensure!(
            (200..300).contains(&status),
            "{:?} to the room answered {status}",
            text.chars().take(40).collect::<String>()
        );
        Ok(())
    }

    /// The first MESSAGE from the room accepted by `pred` (earlier ones stay queued).
    pub async fn recv(
        &mut self,
        room: &Room,
        what: &str,
        pred: impl Fn(&Inbound) -> bool,
    ) -> Result<Inbound> {
        self.ua
            .wait_message(what, |m| from_room(m, room) && pred(m))
            .await
    }

    /// Every MESSAGE from the room up to and including the first accepted by `pred` (and any
    /// that came in the same read after it), in order.
    pub async fn collect(
        &mut self,
        room: &Room,
        what: &str,
        pred: impl Fn(&Inbound) -> bool,
    ) -> Result<Vec<Inbound>> {
        let last = self.recv(room, what, pred).await?;
        let mut got = Vec::new();
        while let Some(m) = self
            .ua
            .message_within(Duration::ZERO, what, |m| from_room(m, room))
            .await?
        {
            got.push(m);
        }
        got.push(last);
        Ok(got)
    }

    /// How many MESSAGEs from the room contain `text`, up to the first containing `marker`.
    pub async fn count_until(&mut self, room: &Room, text: &str, marker: &str) -> Result<usize> {
        let got = self
            .collect(room, "the marker", |i| i.body.contains(marker))
            .await?;
        Ok(got.iter().filter(|i| i.body.contains(text)).count())
    }

    /// A one-time conference SUBSCRIBE (RFC 4575, `Expires: 0`): the NOTIFY's body.
    pub async fn conference(&mut self, room: &Room) -> Result<String> {
        let accept = Some("application/conference-info+xml");
        let (r, d) = self
            .ua
            .subscribe(&room.uri, "conference", 0, accept)
            .await?;
        let d = d.with_context(|| format!("SUBSCRIBE answered {}", r.status().unwrap_or(0)))?;
        let n = self
            .ua
            .wait_notify(&d, "the conference NOTIFY", |_| true)
            .await?;
        let body = String::from_utf8_lossy(n.body()).into_owned();
        ensure!(!body.is_empty(), "the NOTIFY has no body");
        Ok(body)
    }

    /// A conference subscription (RFC 4575) to the room for 600 s: its dialog and the first
    /// NOTIFY's body.
    pub async fn subscribe(&mut self, room: &Room) -> Result<(Dialog, String)> {
        let accept = Some("application/conference-info+xml");
        let (r, d) = self
            .ua
            .subscribe(&room.uri, "conference", 600, accept)
            .await?;
        let d = d.with_context(|| format!("SUBSCRIBE answered {}", r.status().unwrap_or(0)))?;
        let n = self
            .ua
            .wait_notify(&d, "the first NOTIFY", |_| true)
            .await?;
        Ok((d, String::from_utf8_lossy(n.body()).into_owned()))
    }

    /// The body of the next NOTIFY of `d` whose body `pred` accepts.
    pub async fn notified(
        &mut self,
        d: &Dialog,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let n = self
            .ua
            .wait_notify(d, what, |n| pred(&String::from_utf8_lossy(n.body())))
            .await?;
        Ok(String::from_utf8_lossy(n.body()).into_owned())
    }

    /// Ends the subscription `d` (best effort).
    pub async fn unsubscribe(&mut self, mut d: Dialog) {
        let _ = self.ua.resubscribe(&mut d, "conference", 0).await;
    }

    /// Unregisters (best effort) and closes the connection.
    pub async fn close(mut self) {
        let _ = self.ua.unregister().await;
        self.ua.close().await;
    }
}

/// Whether `m` comes from the room's URI (user and host compared case-insensitively,
/// parameters ignored).
fn from_room(m: &Inbound, room: &Room) -> bool {
    let bare = |u: &str| {
        let u = u.trim_start_matches('<').trim_end_matches('>');
        let u = u.split(';').next().unwrap_or_default();
        u.to_ascii_lowercase()
    };
    bare(&m.from) == bare(&room.uri)
}

/// A `<user/>` of a conference-info document.
#[derive(Debug, Clone)]
pub struct ConfUser {
    pub entity: String,
    pub display: String,
}

/// The `<user/>` elements of a conference-info document (RFC 4575 §5.6), anywhere in it.
pub fn conference_users(xml: &str) -> Vec<ConfUser> {
    let Ok(root) = Element::parse(xml.as_bytes()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    users_in(&root, &mut out);
    out
}

fn users_in(e: &Element, out: &mut Vec<ConfUser>) {
    for c in e.children() {
        if c.name == "user" {
            out.push(ConfUser {
                entity: c.attr("entity").unwrap_or_default().to_string(),
                display: c
                    .children()
                    .find(|d| d.name == "display-text")
                    .map(Element::text)
                    .unwrap_or_default(),
            });
        }
        users_in(c, out);
    }
}
