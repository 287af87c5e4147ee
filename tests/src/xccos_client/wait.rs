//! Reading what the server sent an [`XccosClient`]: every request from the inbox (already
//! answered by the dialog-aware relay) is recorded, INFOs answered 200 are parsed into
//! [`XccosEvent`]s, and events wait in a queue until a test reads them.

use super::{parse_body, ChatMessage, XccosClient, XccosEvent};
use crate::sip_client::{InboundRequest, Method};
use anyhow::{bail, Result};
use std::time::Duration;
use tokio::time::Instant;

impl XccosClient {
    /// Every INFO the server sent so far (read from the inbox now), with our answer in
    /// `answered` (200 live, 487 obsolete Call-ID).
    pub fn server_infos(&mut self) -> &[InboundRequest] {
        for request in self.sip.drain_inbox() {
            self.absorb(request);
        }
        &self.infos
    }

    /// The next event (oldest unread first).
    pub async fn next_event(&mut self, timeout: Duration) -> Result<XccosEvent> {
        self.wait_for("an event", |_| true, timeout).await
    }

    /// The first unread event for which `pred` holds; the others stay queued.
    pub async fn wait_for(
        &mut self,
        what: &str,
        pred: impl Fn(&XccosEvent) -> bool,
        timeout: Duration,
    ) -> Result<XccosEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.events.iter().position(&pred) {
                if let Some(found) = self.events.remove(i) {
                    return Ok(found);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no {what} within {timeout:?}; queued: {}",
                    self.queued_summary()
                );
            }
            match self.sip.next_request(left).await {
                Ok(request) => self.absorb(request),
                Err(e) if self.sip.is_closed() => {
                    return Err(e.context(format!("waiting for {what}")))
                }
                Err(_) => {
                    bail!(
                        "no {what} within {timeout:?}; queued: {}",
                        self.queued_summary()
                    )
                }
            }
        }
    }

    /// The first unread room message for which `pred` holds.
    pub async fn wait_grpchat(
        &mut self,
        pred: impl Fn(&ChatMessage) -> bool,
        timeout: Duration,
    ) -> Result<ChatMessage> {
        let event = self
            .wait_for(
                "a matching grpchat",
                |e| matches!(e, XccosEvent::Grpchat(m) if pred(m)),
                timeout,
            )
            .await?;
        match event {
            XccosEvent::Grpchat(m) => Ok(m),
            other => bail!("not a grpchat: {other:?}"),
        }
    }

    /// Every event queued now, without waiting.
    pub fn drain_events(&mut self) -> Vec<XccosEvent> {
        for request in self.sip.drain_inbox() {
            self.absorb(request);
        }
        self.events.drain(..).collect()
    }

    pub(super) fn absorb(&mut self, request: InboundRequest) {
        if request.method == Method::Info {
            if request.answered == Some(200) {
                self.events.extend(parse_body(&request.body));
            }
            self.infos.push(request);
        } else {
            self.events
                .push_back(XccosEvent::Request(Box::new(request)));
        }
    }

    fn queued_summary(&self) -> String {
        if self.events.is_empty() {
            return "none".into();
        }
        let lines: Vec<String> = self
            .events
            .iter()
            .map(|e| crate::xml::cut(&format!("{e:?}"), 300))
            .collect();
        format!("\n  {}", lines.join("\n  "))
    }
}
