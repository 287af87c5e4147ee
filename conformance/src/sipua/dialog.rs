//! REGISTER and INVITE with one digest challenge answered (RFC 3261 §22; a 503 with
//! Retry-After waited out, §21.5.4), the ACKs of §17.1.1.3 (non-2xx) and §13.2.2.4 (2xx), and
//! requests within a dialog (§12.2.1.1: remote target, route set, increasing CSeq).

use super::ua::{Req, Ua};
use crate::load::sip_client::answer_challenge;
use anyhow::Result;
use palaver_dialects::sip::request::{new_branch, new_call_id, new_tag};
use palaver_dialects::sip::{Method, SipMessage};
use std::time::Duration;

/// Longest Retry-After of a 503 waited for before sending again.
const MAX_RETRY_AFTER: u64 = 10;
/// An INVITE dialog as the UAC sees it.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// The To URI of the INVITE.
    pub remote_uri: String,
    /// The remote target (the 2xx's Contact).
    pub target: String,
    /// Route headers, from the 2xx's Record-Route reversed.
    pub route: Vec<String>,
    pub cseq: u32,
    /// Session-Expires delta-seconds of the 2xx, if any.
    pub session_expires: Option<u32>,
}

impl Ua {
    /// REGISTER our Contact for 600 s; answers one challenge. Returns the final status.
    pub async fn register(&mut self) -> Result<u16> {
        Ok(self.register_expires(600).await?.status().unwrap_or(0))
    }

    /// REGISTER our Contact with `Expires: expires` (0 removes it); answers one challenge.
    /// Returns the final response.
    pub async fn register_expires(&mut self, expires: u32) -> Result<SipMessage> {
        self.register_with(expires, true).await
    }

    /// REGISTER our Contact with `Expires: expires`, answering a challenge only when
    /// `answer` is set. Returns the final response.
    pub async fn register_with(&mut self, expires: u32, answer: bool) -> Result<SipMessage> {
        let domain_uri = format!("sip:{}", self.aor.rsplit('@').next().unwrap_or_default());
        self.reg_cseq += 1;
        let (aor, call_id, tag) = (
            self.aor.clone(),
            self.reg_call_id.clone(),
            self.reg_tag.clone(),
        );
        let req = Req {
            method: Method::Register,
            uri: &domain_uri,
            to: &aor,
            to_tag: None,
            from_tag: &tag,
            call_id: &call_id,
            cseq: self.reg_cseq,
            headers: vec![("Expires".to_string(), expires.to_string())],
            body: None,
            branch: None,
        };
        let r = self.challenged(req, answer).await?;
        self.reg_cseq = self.reg_cseq.max(r.cseq().seq);
        Ok(r)
    }

    /// Sends `req` and returns the final response; a 503 with Retry-After is waited out and,
    /// when `answer` is set, one 401/407 challenge answered (each time with the next CSeq).
    pub async fn challenged(&mut self, mut req: Req<'_>, answer: bool) -> Result<SipMessage> {
        let mut answered = !answer;
        let mut busy = 0;
        loop {
            let r = self.transact(&req).await?;
            if self.backoff(&r, &mut busy).await {
                req.cseq += 1;
                continue;
            }
            if matches!(r.status(), Some(401 | 407)) && !answered {
                answered = true;
                if let Some((n, v)) = self.challenge_answer(&r, req.method, req.uri) {
                    req.headers.push((n.to_string(), v));
                    req.cseq += 1;
                    continue;
                }
            }
            return Ok(r);
        }
    }

    /// The digest answer to `r`'s challenge.
    pub fn challenge_answer(
        &self,
        r: &SipMessage,
        method: Method,
        uri: &str,
    ) -> Option<(&'static str, String)> {
        answer_challenge(r, &self.user, &self.password, &method.to_string(), uri, 1)
    }

    /// INVITEs `uri` (SDP `m=message` offer, `Supported: timer`); answers one challenge (ACKing
    /// it) and ACKs a 2xx. Returns the final response and, for a 2xx, the dialog (marked live).
    pub async fn invite(&mut self, uri: &str) -> Result<(SipMessage, Option<Dialog>)> {
        let call_id = new_call_id();
        let tag = new_tag();
        let mut cseq = 1;
        let mut auth: Option<(&'static str, String)> = None;
        let mut busy = 0;
        self.live.push(call_id.clone());
        let ip = self.conn.local.ip();
        let marker = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let sdp = format!(
            "v=0\r\no=- 0 0 IN {marker} {ip}\r\ns=session\r\nc=IN {marker} {ip}\r\nt=0 0\r\n\
             m=message {} sip null\r\na=accept-types:text/plain\r\n",
            self.conn.local.port()
        );
        loop {
            let branch = new_branch();
            let mut headers = vec![("Supported".to_string(), "timer".to_string())];
            if let Some((n, v)) = &auth {
                headers.push((n.to_string(), v.clone()));
            }
            let req = Req {
                method: Method::Invite,
                uri,
                to: uri,
                to_tag: None,
                from_tag: &tag,
                call_id: &call_id,
                cseq,
                headers,
                body: Some(("application/sdp", sdp.as_bytes())),
                branch: Some(&branch),
            };
            let r = self.transact(&req).await?;
            let status = r.status().unwrap_or(0);
            if status >= 300 {
                // ACK of a non-2xx (RFC 3261 §17.1.1.3): same branch, To from the response.
                let ack = Req {
                    method: Method::Ack,
                    uri,
                    to: uri,
                    to_tag: r.to().tag(),
                    from_tag: &tag,
                    call_id: &call_id,
                    cseq,
                    headers: Vec::new(),
                    body: None,
                    branch: Some(&branch),
                };
                let bytes = self.build(&ack)?;
                self.send_raw(&bytes).await?;
                if self.backoff(&r, &mut busy).await {
                    cseq += 1;
                    continue;
                }
                if matches!(status, 401 | 407) && auth.is_none() {
                    auth = self.challenge_answer(&r, Method::Invite, uri);
                    if auth.is_some() {
                        cseq += 1;
                        continue;
                    }
                }
                self.live.retain(|c| *c != call_id);
                return Ok((r, None));
            }
            let mut route: Vec<String> = r
                .header_values("Record-Route")
                .map(str::to_string)
                .collect();
            route.reverse();
            let dialog = Dialog {
                call_id: call_id.clone(),
                local_tag: tag.clone(),
                remote_tag: r.to().tag().map(str::to_string),
                remote_uri: uri.to_string(),
                target: r
                    .contact()
                    .map_or_else(|| uri.to_string(), |c| c.uri.to_string()),
                route,
                cseq,
                session_expires: session_expires(&r),
            };
            // ACK of the 2xx (RFC 3261 §13.2.2.4): a new transaction to the remote target.
            let ack = self.dialog_req(&dialog, Method::Ack, cseq, Vec::new(), None);
            let bytes = self.build(&ack)?;
            self.send_raw(&bytes).await?;
            self.acks.push((call_id.clone(), bytes));
            return Ok((r, Some(dialog)));
        }
    }

    /// A request within `d` with CSeq `cseq`.
    pub fn dialog_req<'a>(
        &self,
        d: &'a Dialog,
        method: Method,
        cseq: u32,
        extra: Vec<(String, String)>,
        body: Option<(&'a str, &'a [u8])>,
    ) -> Req<'a> {
        let mut headers: Vec<(String, String)> = d
            .route
            .iter()
            .map(|r| ("Route".to_string(), r.clone()))
            .collect();
        headers.extend(extra);
        Req {
            method,
            uri: &d.target,
            to: &d.remote_uri,
            to_tag: d.remote_tag.as_deref(),
            from_tag: &d.local_tag,
            call_id: &d.call_id,
            cseq,
            headers,
            body,
            branch: None,
        }
    }

    /// Sends `method` within `d` (next CSeq) and returns the final response; answers one
    /// challenge.
    pub async fn in_dialog(
        &mut self,
        d: &mut Dialog,
        method: Method,
        extra: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<SipMessage> {
        let mut headers: Vec<(String, String)> = extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let mut challenged = false;
        let mut busy = 0;
        loop {
            d.cseq += 1;
            let snapshot = d.clone();
            let req = self.dialog_req(&snapshot, method, d.cseq, headers.clone(), body);
            let r = self.transact(&req).await?;
            if self.backoff(&r, &mut busy).await {
                continue;
            }
            if matches!(r.status(), Some(401 | 407)) && !challenged {
                challenged = true;
                if let Some((n, v)) = self.challenge_answer(&r, method, &d.target) {
                    headers.push((n.to_string(), v));
                    continue;
                }
            }
            if method == Method::Bye {
                self.live.retain(|c| *c != d.call_id);
            }
            if let Some(s) = session_expires(&r) {
                d.session_expires = Some(s);
            }
            return Ok(r);
        }
    }

    /// After a 503 with Retry-After (RFC 3261 §21.5.4; a server's rate limit), waits that
    /// long (at most [`MAX_RETRY_AFTER`]) and says to send again, up to three times.
    async fn backoff(&self, r: &SipMessage, busy: &mut u32) -> bool {
        if r.status() != Some(503) || *busy >= 3 {
            return false;
        }
        let Some(secs) = r
            .header("Retry-After")
            .and_then(|v| v.split([';', '(']).next())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s <= MAX_RETRY_AFTER)
        else {
            return false;
        };
        *busy += 1;
        self.log(format!(
            "{}: 503 with Retry-After {secs}: waiting, then sending again",
            self.name
        ));
        tokio::time::sleep(Duration::from_secs(secs.max(1))).await;
        true
    }
}

/// The delta-seconds of `Session-Expires` (or its compact form `x`).
pub fn session_expires(m: &SipMessage) -> Option<u32> {
    let v = m.header("Session-Expires").or_else(|| m.header("x"))?;
    v.split(';').next()?.trim().parse().ok()
}
