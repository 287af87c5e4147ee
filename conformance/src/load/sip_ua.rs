//! A minimal SIP user agent for load sessions: builds its requests (one Call-ID for
//! REGISTERs, one for MESSAGEs, CSeq counting up, a fresh branch each), runs one client
//! transaction at a time during login ([`Ua::transact`]: UDP retransmission from T1 = 500 ms
//! doubling up to T2 = 4 s, bounded by a deadline; one digest challenge answered), and
//! answers every request from the server with 200 (Via/From/To/Call-ID/CSeq mirrored, our To
//! tag added). Requests the server retransmits are answered again but reported only once.

use super::config::SipTransport;
use super::sip_client::{answer_challenge, SipConn};
use crate::client::{ClientError, ErrorKind};
use palaver_dialects::sip::request::{new_call_id, new_tag};
use palaver_dialects::sip::{response_to, Method, RequestBuilder, SipMessage};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// RFC 3261 T1 and T2.
pub const T1: Duration = Duration::from_millis(500);
pub const T2: Duration = Duration::from_secs(4);
/// Branches of recent server requests remembered to spot retransmissions.
const RECENT: usize = 32;

/// One user agent.
pub struct Ua {
    pub conn: SipConn,
    pub user: String,
    password: String,
    pub domain: String,
    aor: String,
    tag: String,
    reg_call_id: String,
    msg_call_id: String,
    pub cseq: u32,
    /// Requests sent again (UDP) by [`Ua::transact`].
    pub retransmitted: u64,
    recent: VecDeque<String>,
}

/// A request built and ready to (re)send.
pub struct Sent {
    pub cseq: u32,
    pub bytes: Vec<u8>,
}

impl Ua {
    pub fn new(conn: SipConn, user: &str, password: &str, domain: &str) -> Ua {
        Ua {
            conn,
            aor: format!("sip:{user}@{domain}"),
            user: user.to_string(),
            password: password.to_string(),
            domain: domain.to_string(),
            tag: new_tag(),
            reg_call_id: new_call_id(),
            msg_call_id: new_call_id(),
            cseq: 0,
            retransmitted: 0,
            recent: VecDeque::with_capacity(RECENT),
        }
    }

    /// Builds the next request: REGISTER (to our address of record, with Contact and
    /// `Expires`), or MESSAGE/OPTIONS to `uri` with an optional text body.
    pub fn build(
        &mut self,
        method: Method,
        uri: &str,
        body: Option<&[u8]>,
        expires: Option<u32>,
        auth: Option<&(&'static str, String)>,
    ) -> Result<Sent, ClientError> {
        self.cseq += 1;
        let register = method == Method::Register;
        let (to, call_id) = if register {
            (self.aor.as_str(), self.reg_call_id.as_str())
        } else {
            (uri, self.msg_call_id.as_str())
        };
        let mut b = RequestBuilder::new(method, uri)
            .from(&self.aor, None, &self.tag)
            .to(to, None, None)
            .call_id(call_id)
            .cseq(self.cseq)
            .via(self.conn.via_token(), &self.conn.local.to_string());
        if register {
            b = b.contact(&format!(
                "sip:{}@{};transport={}",
                self.user,
                self.conn.local,
                self.conn.transport_param()
            ));
        }
        if let Some(e) = expires {
            b = b.header("Expires", &e.to_string());
        }
        if let Some((name, value)) = auth {
            b = b.header(name, value);
        }
        if let Some(body) = body {
            b = b.body("text/plain;charset=UTF-8", body.to_vec());
        }
        let req = b
            .build()
            .map_err(|e| ClientError::new(ErrorKind::Protocol, format!("{method} {uri}: {e}")))?;
        Ok(Sent {
            cseq: self.cseq,
            bytes: req.bytes,
        })
    }

    /// The answer to the challenge in `response` for a request of `method` to `uri` (each
    /// challenge carries a fresh nonce, so the nonce count is 1).
    pub fn answer(
        &self,
        response: &SipMessage,
        method: Method,
        uri: &str,
    ) -> Option<(&'static str, String)> {
        answer_challenge(
            response,
            &self.user,
            &self.password,
            &method.to_string(),
            uri,
            1,
        )
    }

    /// Sends a request and waits for its final response (answering the server's requests
    /// meanwhile with 200); answers one 401/407. Err on a timeout at `deadline`.
    pub async fn transact(
        &mut self,
        method: Method,
        uri: &str,
        body: Option<&[u8]>,
        expires: Option<u32>,
        deadline: Instant,
    ) -> Result<SipMessage, ClientError> {
        let mut auth = None;
        loop {
            let sent = self.build(method, uri, body, expires, auth.as_ref())?;
            let response = self.wait_final(&sent, deadline).await?;
            if matches!(response.status(), Some(401 | 407)) && auth.is_none() {
                auth = self.answer(&response, method, uri);
                if auth.is_some() {
                    continue;
                }
            }
            return Ok(response);
        }
    }

    async fn wait_final(
        &mut self,
        sent: &Sent,
        deadline: Instant,
    ) -> Result<SipMessage, ClientError> {
        self.conn.send(&sent.bytes).await?;
        let udp = self.conn.transport == SipTransport::Udp;
        let mut interval = T1;
        let mut retx = Instant::now() + interval;
        loop {
            while let Some(m) = self.conn.next_buffered() {
                if m.is_request() {
                    self.respond_ok(&m).await?;
                } else if m.cseq().seq == sent.cseq && m.status().is_some_and(|s| s >= 200) {
                    return Ok(m);
                }
            }
            let wake = if udp { retx.min(deadline) } else { deadline };
            tokio::select! {
                read = self.conn.read_more() => read?,
                () = sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        return Err(ClientError::new(ErrorKind::Timeout, "no final response"));
                    }
                    self.conn.send(&sent.bytes).await?;
                    self.retransmitted += 1;
                    interval = (interval * 2).min(T2);
                    retx = Instant::now() + interval;
                }
            }
        }
    }

    /// Answers a server request with 200; `true` the first time this request is seen.
    pub async fn respond_ok(&mut self, req: &SipMessage) -> Result<bool, ClientError> {
        let bytes = response_to(req, 200, "OK", Some(&self.tag)).to_bytes();
        self.conn.send(&bytes).await?;
        let Some(branch) = req.branch() else {
            return Ok(true);
        };
        if self.recent.iter().any(|b| b == branch) {
            return Ok(false);
        }
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(branch.to_string());
        Ok(true)
    }
}
