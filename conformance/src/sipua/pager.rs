//! The pager-mode API of [`Ua`]: out-of-dialog requests with a digest challenge answered
//! ([`Ua::request`], [`Ua::message`]), the server's MESSAGEs ([`Ua::wait_message`], answered
//! 200 once [`Ua::accept_messages`] is set, which [`Ua::pager`] does), SUBSCRIBE
//! ([`Ua::subscribe`], [`Ua::resubscribe`]) and its NOTIFYs ([`Ua::wait_notify`]). Every wait
//! is bounded by the UA's timeout (or a shorter one given).

use super::dialog::Dialog;
use super::ua::{Req, Ua};
use anyhow::{anyhow, Result};
use palaver_dialects::sip::request::{new_call_id, new_tag};
use palaver_dialects::sip::{Method, SipMessage};
use std::time::Duration;
use tokio::time::Instant;

/// A MESSAGE the server sent us (already answered 200).
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The From URI (a room's MESSAGEs come from the room URI).
    pub from: String,
    /// The From display name, if any (a room puts the author's nick there).
    pub display: Option<String>,
    /// The Content-Type essence (`text/plain` …), if any.
    pub content_type: Option<String>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl Inbound {
    fn of(m: &SipMessage) -> Inbound {
        let display = m.from().display_name.clone();
        Inbound {
            from: m.from().uri.to_string(),
            display,
            content_type: m.content_type().map(|c| c.essence.clone()),
            body: String::from_utf8_lossy(m.body()).into_owned(),
        }
    }
}

impl Ua {
    /// Switches to pager mode: out-of-dialog MESSAGEs from the server are answered 200 and
    /// queued for [`Ua::wait_message`].
    pub fn pager(mut self) -> Ua {
        self.accept_messages = true;
        self
    }

    /// Sends an out-of-dialog request (fresh Call-ID and From tag, To = `uri`) with `headers`
    /// and an optional (Content-Type, body); answers one digest challenge. The final response.
    pub async fn request(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<SipMessage> {
        let (call_id, tag) = (new_call_id(), new_tag());
        self.request_in(method, uri, &call_id, &tag, headers, body)
            .await
    }

    /// [`Ua::request`] with the given Call-ID and From tag.
    pub async fn request_in(
        &mut self,
        method: Method,
        uri: &str,
        call_id: &str,
        tag: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<SipMessage> {
        let req = Req {
            method,
            uri,
            to: uri,
            to_tag: None,
            from_tag: tag,
            call_id,
            cseq: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body,
            branch: None,
        };
        self.challenged(req, true).await
    }

    /// MESSAGE `text` (`text/plain;charset=UTF-8`) to `uri`; the final status.
    pub async fn message(&mut self, uri: &str, text: &str) -> Result<u16> {
        let r = self
            .request(
                Method::Message,
                uri,
                &[],
                Some(("text/plain;charset=UTF-8", text.as_bytes())),
            )
            .await?;
        Ok(r.status().unwrap_or(0))
    }

    /// The first MESSAGE from the server accepted by `pred` (earlier ones stay queued),
    /// within the UA's timeout.
    pub async fn wait_message(
        &mut self,
        what: &str,
        pred: impl Fn(&Inbound) -> bool,
    ) -> Result<Inbound> {
        self.message_within(self.timeout, what, pred)
            .await?
            .ok_or_else(|| anyhow!("{}: timed out waiting for {what}", self.name))
    }

    /// The first MESSAGE accepted by `pred` arriving within `wait`, if any (it is taken).
    pub async fn message_within(
        &mut self,
        wait: Duration,
        what: &str,
        pred: impl Fn(&Inbound) -> bool,
    ) -> Result<Option<Inbound>> {
        let found = self
            .request_within(wait, what, |m| {
                m.method() == Some(Method::Message) && pred(&Inbound::of(m))
            })
            .await?;
        Ok(found.as_ref().map(Inbound::of))
    }

    /// The first request of the server accepted by `pred` (taken from the queue) arriving
    /// within `wait`, or `None`. A broken connection is an error.
    pub async fn request_within(
        &mut self,
        wait: Duration,
        what: &str,
        pred: impl Fn(&SipMessage) -> bool,
    ) -> Result<Option<SipMessage>> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(i) = self.inbound.iter().position(&pred) {
                return Ok(self.inbound.remove(i));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            match self.pump(deadline, what).await {
                Ok(()) => {}
                Err(_) if Instant::now() >= deadline => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops every queued server request (MESSAGEs, NOTIFYs) received so far.
    pub fn clear_inbound(&mut self) {
        self.inbound.clear();
    }

    /// SUBSCRIBE `uri` to `event` for `expires` seconds (with `Accept` when given); answers
    /// one challenge. The final response and, for a 2xx, the subscription's dialog, whose
    /// NOTIFYs [`Ua::wait_notify`] returns (they are answered 200 from the start).
    pub async fn subscribe(
        &mut self,
        uri: &str,
        event: &str,
        expires: u32,
        accept: Option<&str>,
    ) -> Result<(SipMessage, Option<Dialog>)> {
        let (call_id, tag) = (new_call_id(), new_tag());
        self.live.push(call_id.clone());
        let exp = expires.to_string();
        let mut headers = vec![("Event", event), ("Expires", exp.as_str())];
        if let Some(a) = accept {
            headers.push(("Accept", a));
        }
        let r = self
            .request_in(Method::Subscribe, uri, &call_id, &tag, &headers, None)
            .await?;
        if !r.status().is_some_and(|s| (200..300).contains(&s)) {
            return Ok((r, None));
        }
        let dialog = Dialog {
            call_id,
            local_tag: tag,
            remote_tag: r.to().tag().map(str::to_string),
            remote_uri: uri.to_string(),
            target: r
                .contact()
                .map_or_else(|| uri.to_string(), |c| c.uri.to_string()),
            route: Vec::new(),
            cseq: r.cseq().seq,
            session_expires: None,
        };
        Ok((r, Some(dialog)))
    }

    /// Refreshes (or with `expires` 0 ends) the subscription `d`; the final response.
    pub async fn resubscribe(
        &mut self,
        d: &mut Dialog,
        event: &str,
        expires: u32,
    ) -> Result<SipMessage> {
        let exp = expires.to_string();
        self.in_dialog(
            d,
            Method::Subscribe,
            &[("Event", event), ("Expires", &exp)],
            None,
        )
        .await
    }

    /// The first NOTIFY of the subscription `d` accepted by `pred`, within the UA's timeout.
    pub async fn wait_notify(
        &mut self,
        d: &Dialog,
        what: &str,
        pred: impl Fn(&SipMessage) -> bool,
    ) -> Result<SipMessage> {
        let call_id = d.call_id.clone();
        self.request_within(self.timeout, what, |m| {
            m.method() == Some(Method::Notify) && m.call_id() == call_id && pred(m)
        })
        .await?
        .ok_or_else(|| anyhow!("{}: timed out waiting for {what}", self.name))
    }

    /// Unregisters (REGISTER with `Expires: 0`); the final status.
    pub async fn unregister(&mut self) -> Result<u16> {
        Ok(self.register_expires(0).await?.status().unwrap_or(0))
    }
}
