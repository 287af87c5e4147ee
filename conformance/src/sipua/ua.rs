//! The SIP user agent ([`Ua`]): builds requests, runs one client transaction at a time (UDP
//! retransmission from T1 = 500 ms doubling up to T2 = 4 s, bounded by the run's timeout),
//! answers the server's requests meanwhile (200 on a live Call-ID or, with
//! [`Ua::accept_messages`], on an out-of-dialog MESSAGE; 481 on any other; retransmissions
//! answered again but reported once) and queues them. Every message goes to the [`Trace`].
//! REGISTER, INVITE and requests within a dialog are in `dialog.rs`, the pager-mode API in
//! `pager.rs`.

use super::conn::{Conn, Transport};
use anyhow::{anyhow, bail, Context as _, Result};
use palaver_dialects::sip::request::{new_call_id, new_tag};
use palaver_dialects::sip::{response_to, Method, RequestBuilder, SipMessage};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, timeout_at, Instant};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Branches of recent server requests remembered to spot retransmissions.
const RECENT: usize = 64;

/// Where a [`Ua`] writes its wire trace (one line per message).
pub type Trace = Arc<dyn Fn(String) + Send + Sync>;

/// One request to send.
pub struct Req<'a> {
    pub method: Method,
    pub uri: &'a str,
    pub to: &'a str,
    pub to_tag: Option<&'a str>,
    pub from_tag: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    pub headers: Vec<(String, String)>,
    pub body: Option<(&'a str, &'a [u8])>,
    pub branch: Option<&'a str>,
}

/// The user agent.
pub struct Ua {
    trace: Trace,
    /// Bound of every wait (one transaction, one read).
    pub timeout: Duration,
    /// Who this is in the trace.
    pub name: String,
    pub conn: Conn,
    pub user: String,
    pub(super) password: String,
    pub aor: String,
    pub(super) reg_call_id: String,
    pub(super) reg_tag: String,
    pub(super) reg_cseq: u32,
    /// Call-IDs whose server requests get 200 (others 481).
    pub live: Vec<String>,
    /// Server requests answered, oldest first, until taken.
    pub inbound: VecDeque<SipMessage>,
    recent: VecDeque<(String, u16)>,
    /// ACKs of 2xx responses, by Call-ID, to resend when the 2xx is retransmitted.
    pub(super) acks: Vec<(String, Vec<u8>)>,
    /// Whether out-of-dialog MESSAGEs (no To tag) get 200 and are queued (pager mode).
    pub accept_messages: bool,
}

impl Ua {
    /// A user agent of `user@domain` on `conn`; every wait bounded by `timeout`.
    pub fn new(
        trace: Trace,
        timeout: Duration,
        conn: Conn,
        user: &str,
        password: &str,
        domain: &str,
    ) -> Ua {
        Ua {
            name: user.to_string(),
            aor: format!("sip:{user}@{domain}"),
            trace,
            timeout,
            conn,
            user: user.to_string(),
            password: password.to_string(),
            reg_call_id: new_call_id(),
            reg_tag: new_tag(),
            reg_cseq: 0,
            live: Vec::new(),
            inbound: VecDeque::new(),
            recent: VecDeque::new(),
            acks: Vec::new(),
            accept_messages: false,
        }
    }

    /// Appends a line to the trace.
    pub fn log(&self, line: String) {
        (self.trace)(line);
    }

    /// Our Contact URI.
    pub fn contact(&self) -> String {
        format!(
            "<sip:{}@{};transport={}>",
            self.user,
            self.conn.local,
            self.conn.transport.param()
        )
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Builds `req` (Via of our transport and address, Contact on INVITE, REGISTER and
    /// SUBSCRIBE; a `Max-Forwards` in its headers replaces the default 70).
    pub fn build(&self, req: &Req<'_>) -> Result<Vec<u8>> {
        let mut b = RequestBuilder::new(req.method, req.uri)
            .from(&self.aor, None, req.from_tag)
            .to(req.to, None, req.to_tag)
            .call_id(req.call_id)
            .cseq(req.cseq)
            .via(self.conn.transport.via(), &self.conn.local.to_string());
        if let Some(branch) = req.branch {
            b = b.branch(branch);
        }
        if matches!(
            req.method,
            Method::Invite | Method::Register | Method::Subscribe
        ) {
            b = b.header("Contact", &self.contact());
        }
        let mut max_forwards = None;
        for (name, value) in &req.headers {
            if name.eq_ignore_ascii_case("Max-Forwards") {
                max_forwards = Some(value);
            } else {
                b = b.header(name, value);
            }
        }
        if let Some((ctype, body)) = req.body {
            b = b.body(ctype, body.to_vec());
        }
        let built = b
            .build()
            .map_err(|e| anyhow!("building {} {}: {e}", req.method, req.uri))?;
        Ok(match max_forwards {
            // A Max-Forwards given (even an invalid one) replaces the builder's 70.
            Some(v) => String::from_utf8_lossy(&built.bytes)
                .replacen("Max-Forwards: 70\r\n", &format!("Max-Forwards: {v}\r\n"), 1)
                .into_bytes(),
            None => built.bytes,
        })
    }

    /// Sends raw bytes, traced.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.log(format!("{} -> {}", self.name, trace_text(bytes)));
        timeout_at(self.deadline(), self.conn.send(bytes))
            .await
            .map_err(|_| anyhow!("{}: timed out writing to the server", self.name))?
    }

    /// Sends `req` and returns its final response (provisionals skipped); retransmits over
    /// UDP. The server's requests meanwhile are answered and queued.
    pub async fn transact(&mut self, req: &Req<'_>) -> Result<SipMessage> {
        let bytes = self.build(req)?;
        self.send_raw(&bytes).await?;
        let udp = self.conn.transport == Transport::Udp;
        let deadline = self.deadline();
        let mut interval = T1;
        let mut retx = udp.then(|| Instant::now() + T1);
        loop {
            while let Some(m) = self.conn.next_buffered() {
                if m.is_request() {
                    self.answer(m).await?;
                    continue;
                }
                self.log(format!(
                    "{} <- {}",
                    self.name,
                    trace_text(&message_bytes(&m))
                ));
                let c = m.cseq();
                if m.call_id() == req.call_id && c.seq == req.cseq && c.method == req.method {
                    match m.status() {
                        Some(s) if s >= 200 => return Ok(m),
                        _ if req.method == Method::Invite => retx = None,
                        _ => {}
                    }
                } else if c.method == Method::Invite && m.status().is_some_and(|s| s < 300) {
                    self.reack(m.call_id()).await?;
                }
            }
            let wake = retx.map_or(deadline, |r| r.min(deadline));
            tokio::select! {
                read = self.conn.read_more() => read.with_context(|| format!("{}: waiting for the answer to {}", self.name, req.method))?,
                () = sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        bail!("{}: no final response to {} {} within {:?}", self.name, req.method, req.uri, self.timeout);
                    }
                    self.log(format!("{} -> (retransmission)", self.name));
                    self.conn.send(&bytes).await?;
                    interval = (interval * 2).min(T2);
                    retx = Some(Instant::now() + interval);
                }
            }
        }
    }

    /// Reads (bounded by `deadline`) until the server has sent a request, answering it.
    pub async fn pump(&mut self, deadline: Instant, what: &str) -> Result<()> {
        loop {
            let mut got = false;
            while let Some(m) = self.conn.next_buffered() {
                if m.is_request() {
                    got |= self.answer(m).await?;
                } else {
                    self.log(format!(
                        "{} <- {}",
                        self.name,
                        trace_text(&message_bytes(&m))
                    ));
                    let c = m.cseq();
                    if c.method == Method::Invite && m.status().is_some_and(|s| s < 300) {
                        self.reack(m.call_id()).await?;
                    }
                }
            }
            if got {
                return Ok(());
            }
            timeout_at(deadline, self.conn.read_more())
                .await
                .map_err(|_| anyhow!("{}: timed out waiting for {what}", self.name))?
                .with_context(|| format!("{}: waiting for {what}", self.name))?;
        }
    }

    /// Answers a server request (200 on a live Call-ID, else 481); `true` when it is new.
    async fn answer(&mut self, m: SipMessage) -> Result<bool> {
        let branch = m.branch().unwrap_or_default().to_string();
        let repeat = self.recent.iter().find(|(b, _)| *b == branch).map(|x| x.1);
        let live = self.live.iter().any(|c| c == m.call_id());
        let method = m.method();
        let code = match (repeat, &method) {
            (Some(code), _) => code,
            (None, Some(Method::Ack)) => 0,
            (None, Some(Method::Options)) => 200,
            (None, _) if live => 200,
            (None, Some(Method::Message)) if self.accept_messages && m.to().tag().is_none() => 200,
            _ => 481,
        };
        if repeat.is_none() {
            self.log(format!(
                "{} <- {}",
                self.name,
                trace_text(&message_bytes(&m))
            ));
        }
        if code == 0 {
            return Ok(false);
        }
        let reason = if code == 200 {
            "OK"
        } else {
            "Call/Transaction Does Not Exist"
        };
        let tag = self.reg_tag.clone();
        let bytes = response_to(&m, code, reason, Some(&tag)).to_bytes();
        if repeat.is_none() {
            self.log(format!(
                "{} -> SIP/2.0 {code} {reason} ({} {})",
                self.name,
                m.cseq().method,
                m.call_id()
            ));
        }
        self.conn.send(&bytes).await?;
        if repeat.is_some() {
            return Ok(false);
        }
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((branch, code));
        if method == Some(Method::Bye) && live {
            self.live.retain(|c| c != m.call_id());
        }
        if code == 200 {
            self.inbound.push_back(m);
        }
        Ok(true)
    }

    async fn reack(&mut self, call_id: &str) -> Result<()> {
        if let Some((_, ack)) = self.acks.iter().find(|(c, _)| c == call_id) {
            let ack = ack.clone();
            self.conn.send(&ack).await?;
        }
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&mut self) {
        self.conn.close().await;
    }
}

/// A message's bytes, for the trace.
pub fn message_bytes(m: &SipMessage) -> Vec<u8> {
    m.as_rsip().to_string().into_bytes()
}

/// A message in the trace: start line and CSeq, then an XML body (bounded) or its size.
pub fn trace_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let start = head.lines().next().unwrap_or_default();
    let call = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("cseq:"))
        .unwrap_or_default();
    let mut out = format!("{start} [{call}]");
    if body.trim_start().starts_with('<') {
        let b: String = body.chars().take(700).collect();
        out.push_str(&format!(" {b}"));
    } else if !body.is_empty() {
        out.push_str(&format!(" ({} bytes of body)", body.len()));
    }
    out
}
