//! Reading what the server sent a [`SipClient`]: the inbox of requests (already answered by
//! the reader task), unclaimed raw frames, and the end of the connection.

use super::io::RawFrame;
use super::{InboundRequest, Method, Response, SipClient};
use anyhow::{anyhow, bail, Context as _, Result};
use std::time::Duration;
use tokio::time::Instant;

impl SipClient {
    /// The next request from the server (oldest unread first).
    pub async fn next_request(&mut self, timeout: Duration) -> Result<InboundRequest> {
        self.wait_request("a request", |_| true, timeout).await
    }

    /// The first unread request for which `pred` holds; the others stay unread.
    pub async fn wait_request(
        &mut self,
        what: &str,
        pred: impl Fn(&InboundRequest) -> bool,
        timeout: Duration,
    ) -> Result<InboundRequest> {
        if let Some(i) = self.unread.iter().position(&pred) {
            if let Some(found) = self.unread.remove(i) {
                return Ok(found);
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.inbox.recv()).await {
                Ok(Some(request)) if pred(&request) => return Ok(request),
                Ok(Some(request)) => self.unread.push_back(request),
                Ok(None) => bail!(
                    "the connection ended while waiting for {what} ({}); unread: {}",
                    self.closed_reason(),
                    self.unread_summary()
                ),
                Err(_) => bail!(
                    "no {what} within {timeout:?}; unread: {}{}",
                    self.unread_summary(),
                    self.junk_note()
                ),
            }
        }
    }

    /// The first unread MESSAGE for which `pred` holds (`from`, `body`, headers…).
    pub async fn wait_message(
        &mut self,
        pred: impl Fn(&InboundRequest) -> bool,
        timeout: Duration,
    ) -> Result<InboundRequest> {
        self.wait_request(
            "a matching MESSAGE",
            |r| r.method == Method::Message && pred(r),
            timeout,
        )
        .await
    }

    /// The first unread NOTIFY (headers in `.message`, conference-info in `.body`).
    pub async fn wait_notify(&mut self, timeout: Duration) -> Result<InboundRequest> {
        self.wait_request("a NOTIFY", |r| r.method == Method::Notify, timeout)
            .await
    }

    /// Fails if a request is unread now or arrives within `within`.
    pub async fn expect_no_request(&mut self, within: Duration) -> Result<()> {
        if !self.unread.is_empty() {
            bail!("unexpected requests: {}", self.unread_summary());
        }
        match tokio::time::timeout(within, self.inbox.recv()).await {
            Ok(Some(request)) => {
                let summary = request.summary();
                self.unread.push_back(request);
                bail!("unexpected request within {within:?}: {summary}")
            }
            Ok(None) | Err(_) => Ok(()),
        }
    }

    /// Every request received so far and not yet read, without waiting.
    pub fn drain_inbox(&mut self) -> Vec<InboundRequest> {
        while let Ok(request) = self.inbox.try_recv() {
            self.unread.push_back(request);
        }
        self.unread.drain(..).collect()
    }

    fn unread_summary(&self) -> String {
        if self.unread.is_empty() {
            return "none".into();
        }
        let lines: Vec<String> = self.unread.iter().map(InboundRequest::summary).collect();
        format!("\n  {}", lines.join("\n  "))
    }

    // ----- raw -----

    /// Sends `bytes` as they are (one datagram over UDP).
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<()> {
        self.shared
            .writer
            .send(bytes)
            .await
            .with_context(|| format!("sending {} raw bytes to {}", bytes.len(), self.server))
    }

    /// The next frame no transaction claimed: an unparsable one, or a response to a request
    /// sent with [`SipClient::send_raw`] (parse it with [`Response::parse`]).
    pub async fn recv_raw(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        Ok(self.recv_raw_frame(timeout).await?.bytes)
    }

    /// [`SipClient::recv_raw`] with the source and why the frame was unclaimed.
    pub async fn recv_raw_frame(&mut self, timeout: Duration) -> Result<RawFrame> {
        match tokio::time::timeout(timeout, self.raw.recv()).await {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => bail!(
                "the connection ended while waiting for a raw frame ({})",
                self.closed_reason()
            ),
            Err(_) => bail!("nothing unclaimed arrived within {timeout:?}"),
        }
    }

    /// The next unclaimed frame, which must be a response.
    pub async fn recv_raw_response(&mut self, timeout: Duration) -> Result<Response> {
        let frame = self.recv_raw_frame(timeout).await?;
        Response::parse(&frame.bytes).with_context(|| format!("{} from {}", frame.note, frame.from))
    }

    /// Waits until the server ends the connection (TCP/TLS); returns why it ended.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<String> {
        let mut closed = self.closed.clone();
        let waited = tokio::time::timeout(timeout, async {
            match closed.wait_for(Option::is_some).await {
                Ok(why) => why.clone().unwrap_or_default(),
                Err(_) => "the reader stopped".to_string(),
            }
        })
        .await;
        waited.map_err(|_| anyhow!("the server kept the connection open for {timeout:?}"))
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }
}
