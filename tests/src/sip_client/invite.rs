//! INVITE dialogs of a [`SipClient`] as the caller (RFC 3261 §12, §13, §17.1.1): the INVITE
//! client transaction (timer A retransmissions over UDP, provisionals skipped), one 401/407
//! digest challenge answered by sending the INVITE again with the next CSeq, the ACK of a
//! non-2xx final response (same branch) and of the 2xx (new branch, sent to the 2xx's Contact
//! along its Record-Route reversed), then in-dialog INFO / UPDATE / BYE with increasing CSeq.
//!
//! [`SipClient::answer_by_dialog`] replaces the blanket [`super::AutoReply`] with answers that
//! depend on the dialog a request belongs to, as pidgin-sipe answers its group-chat INFOs: 200
//! on a live Call-ID, 487 on any other.

use super::client::{owned_headers, Spec};
use super::dialog::route_set;
use super::io::{Shared, Writer};
use super::{reason_phrase, sip_uri, AutoReply, InboundRequest, Response, SipClient};
use anyhow::{anyhow, bail, Context as _, Result};
use palaver_dialects::sip::request::new_tag;
use palaver_dialects::sip::{response_to, Method, OutgoingRequest, RequestBuilder};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Timer A's first interval (T1).
const T1: Duration = Duration::from_millis(500);

/// An established INVITE dialog in which we are the caller.
#[derive(Debug, Clone)]
pub struct InviteDialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: Option<String>,
    /// The URI we invited (To of our requests, From of the server's).
    pub remote_uri: String,
    /// The remote target: the 2xx's Contact (Request-URI of in-dialog requests).
    pub target: String,
    /// Route headers of in-dialog requests (the 2xx's Record-Route, reversed).
    pub route: Vec<String>,
    /// The CSeq number of the last request we sent in the dialog.
    pub cseq: u32,
    /// The delta-seconds of the 2xx's `Session-Expires` (updated by a 2xx to UPDATE).
    pub session_expires: Option<u32>,
    /// The 2xx that established the dialog.
    pub response: Response,
}

impl SipClient {
    /// Sends an INVITE to `uri` (with `headers`; our Contact unless `headers` has one; `sdp` as
    /// `application/sdp`) and waits for the final response, answering one 401/407 challenge.
    /// A 2xx is ACKed and gives the dialog; a non-2xx final response is ACKed and is an error
    /// here ([`SipClient::invite_response`] returns it instead).
    pub async fn invite(
        &mut self,
        uri: &str,
        headers: &[(&str, &str)],
        sdp: Option<&str>,
    ) -> Result<InviteDialog> {
        let (response, dialog) = self.invite_response(uri, headers, sdp).await?;
        dialog.ok_or_else(|| anyhow!("INVITE {uri} was answered {response}"))
    }

    /// [`SipClient::invite`] returning the final response, and the dialog for a 2xx.
    pub async fn invite_response(
        &mut self,
        uri: &str,
        headers: &[(&str, &str)],
        sdp: Option<&str>,
    ) -> Result<(Response, Option<InviteDialog>)> {
        let uri = sip_uri(uri);
        let own_contact = !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("Contact") || n.eq_ignore_ascii_case("m"));
        let mut spec = Spec::out_of_dialog(
            Method::Invite,
            &uri,
            own_contact,
            owned_headers(headers),
            sdp.map(|s| ("application/sdp".to_string(), s.as_bytes().to_vec())),
        );
        let mut credentials: Option<(&'static str, String)> = None;
        loop {
            let request = self.build(&spec, credentials.as_ref())?;
            let response = self
                .invite_transaction(&request)
                .await
                .with_context(|| format!("INVITE {uri}"))?;
            if !response.is_success() {
                self.send_ack(&spec, &request.branch, &response).await?;
                let challenged = matches!(response.code, 401 | 407);
                if !challenged || credentials.is_some() {
                    return Ok((response, None));
                }
                credentials = Some(self.answer_challenge(&response, Method::Invite, &uri)?);
                spec.cseq += 1;
                continue;
            }
            let m = &response.message;
            let dialog = InviteDialog {
                call_id: spec.call_id.clone(),
                local_tag: spec.from_tag.clone(),
                remote_tag: m.to().tag().map(str::to_string),
                remote_uri: uri.clone(),
                target: m.contact().map_or(uri.clone(), |c| c.uri.to_string()),
                route: route_set(&response),
                cseq: spec.cseq,
                session_expires: session_expires(&response),
                response: response.clone(),
            };
            self.ack_2xx(&dialog).await?;
            return Ok((response, Some(dialog)));
        }
    }

    /// Sends `method` inside `dialog` (next CSeq, Route set, remote target), answering one
    /// 401/407 challenge, and returns the final response. A 2xx to UPDATE refreshes the
    /// dialog's target and `session_expires`.
    pub async fn dialog_request(
        &mut self,
        dialog: &mut InviteDialog,
        method: Method,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<Response> {
        let mut all: Vec<(String, String)> = dialog
            .route
            .iter()
            .map(|r| ("Route".to_string(), r.clone()))
            .collect();
        all.extend(owned_headers(headers));
        let mut spec = Spec {
            method,
            request_uri: dialog.target.clone(),
            to_uri: dialog.remote_uri.clone(),
            to_tag: dialog.remote_tag.clone(),
            from_tag: dialog.local_tag.clone(),
            call_id: dialog.call_id.clone(),
            cseq: dialog.cseq + 1,
            contact: false,
            headers: all,
            body: body.map(|(ct, b)| (ct.to_string(), b.to_vec())),
        };
        let result = self.send_spec(&mut spec, true).await;
        dialog.cseq = spec.cseq;
        let response =
            result.with_context(|| format!("{method} in the dialog with {}", dialog.remote_uri))?;
        if method == Method::Update && response.is_success() {
            if let Some(c) = response.message.contact() {
                dialog.target = c.uri.to_string();
            }
            if let Some(s) = session_expires(&response) {
                dialog.session_expires = Some(s);
            }
        }
        Ok(response)
    }

    /// INFO with `body` of `content_type` in `dialog`.
    pub async fn info(
        &mut self,
        dialog: &mut InviteDialog,
        headers: &[(&str, &str)],
        content_type: &str,
        body: &[u8],
    ) -> Result<Response> {
        self.dialog_request(dialog, Method::Info, headers, Some((content_type, body)))
            .await
    }

    /// UPDATE without a body in `dialog` (a session refresh).
    pub async fn update(
        &mut self,
        dialog: &mut InviteDialog,
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        self.dialog_request(dialog, Method::Update, headers, None)
            .await
    }

    /// BYE in `dialog`.
    pub async fn bye(
        &mut self,
        dialog: &mut InviteDialog,
        headers: &[(&str, &str)],
    ) -> Result<Response> {
        self.dialog_request(dialog, Method::Bye, headers, None)
            .await
    }

    /// From now on answers the server's requests by dialog (see [`DialogAnswers`]) instead of
    /// with the [`super::AutoReply`]: the reader task leaves them unanswered and a relay task
    /// answers them before they reach the inbox. Call it once per client; keep the handle to
    /// mark Call-IDs live or ended.
    pub fn answer_by_dialog(&mut self) -> DialogAnswers {
        let answers = DialogAnswers::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut upstream = std::mem::replace(&mut self.inbox, rx);
        self.shared.set_auto_reply(AutoReply::Ignore);
        let shared = self.shared.clone();
        let policy = answers.clone();
        tokio::spawn(async move {
            while let Some(mut request) = upstream.recv().await {
                if request.answered.is_none() {
                    if let Some(code) = policy.answer_for(&request) {
                        if answer(&shared, &request, code).await.is_ok() {
                            request.answered = Some(code);
                        }
                    }
                }
                if tx.send(request).is_err() {
                    break;
                }
            }
        });
        answers
    }

    /// The INVITE client transaction: send, retransmit over UDP (timer A: T1 doubling until a
    /// response arrives), skip provisionals, return the first final response.
    async fn invite_transaction(&self, request: &OutgoingRequest) -> Result<Response> {
        let mut pending = self.open_transaction(request, Method::Invite).await?;
        let deadline = Instant::now() + self.timeout;
        let mut interval = T1;
        let mut retransmit_at = (!self.transport.is_reliable()).then(|| Instant::now() + T1);
        loop {
            let wake = retransmit_at.map_or(deadline, |r| r.min(deadline));
            tokio::select! {
                response = pending.responses.recv() => {
                    let Some(response) = response else {
                        bail!("the connection ended before a final response to INVITE: {}",
                              self.closed_reason());
                    };
                    if response.code >= 200 {
                        return Ok(response);
                    }
                    retransmit_at = None;
                }
                _ = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        bail!("no final response to INVITE within {:?}{}", self.timeout,
                              self.junk_note());
                    }
                    self.shared.writer.send(&request.bytes).await
                        .context("retransmitting INVITE")?;
                    interval *= 2;
                    retransmit_at = Some(Instant::now() + interval);
                }
            }
        }
    }

    /// ACK of a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's branch, Request-URI,
    /// From, Call-ID, CSeq number and Route; To from the response.
    async fn send_ack(&self, spec: &Spec, branch: &str, response: &Response) -> Result<()> {
        let mut b = RequestBuilder::new(Method::Ack, &spec.request_uri)
            .from(&self.aor(), None, &spec.from_tag)
            .to(&spec.to_uri, None, response.message.to().tag())
            .call_id(&spec.call_id)
            .cseq(spec.cseq)
            .via(self.transport.via_token(), &self.local.to_string())
            .branch(branch);
        for (name, value) in &spec.headers {
            if name.eq_ignore_ascii_case("Route") {
                b = b.header(name, value);
            }
        }
        self.send_built(b, "ACK of a non-2xx").await
    }

    /// ACK of the 2xx (RFC 3261 §13.2.2.4): a new transaction to the remote target.
    async fn ack_2xx(&self, dialog: &InviteDialog) -> Result<()> {
        let mut b = RequestBuilder::new(Method::Ack, &dialog.target)
            .from(&self.aor(), None, &dialog.local_tag)
            .to(&dialog.remote_uri, None, dialog.remote_tag.as_deref())
            .call_id(&dialog.call_id)
            .cseq(dialog.cseq)
            .via(self.transport.via_token(), &self.local.to_string());
        for r in &dialog.route {
            b = b.header("Route", r);
        }
        self.send_built(b, "ACK of the 2xx").await
    }

    async fn send_built(&self, b: RequestBuilder, what: &str) -> Result<()> {
        let request = b.build().map_err(|e| anyhow!("building the {what}: {e}"))?;
        self.shared
            .writer
            .send(&request.bytes)
            .await
            .with_context(|| format!("sending the {what}"))
    }
}

/// The delta-seconds of `Session-Expires` (or its compact form `x`).
fn session_expires(response: &Response) -> Option<u32> {
    let value = response
        .header("Session-Expires")
        .or_else(|| response.header("x"))?;
    let digits: String = value
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Sends the answer `code` to `request` (UDP: back to where it came from).
async fn answer(shared: &Shared, request: &InboundRequest, code: u16) -> std::io::Result<()> {
    let reason = match code {
        487 => "Request Terminated",
        c => reason_phrase(c),
    };
    let bytes = response_to(&request.message, code, reason, Some(&new_tag())).to_bytes();
    match &shared.writer {
        Writer::Udp { socket, .. } => socket.send_to(&bytes, request.source).await.map(|_| ()),
        writer => writer.send(&bytes).await,
    }
}

/// The Call-IDs [`SipClient::answer_by_dialog`] answers by. For a request from the server:
/// * ACK: no answer;
/// * INFO: 200 on a live Call-ID, 487 Request Terminated on any other (pidgin-sipe's answer to
///   INFOs on an obsolete group-chat Call-ID);
/// * other methods: 200 on a live Call-ID (a BYE ends it), 481 on an ended one, 200 outside
///   any dialog (OPTIONS, MESSAGE, NOTIFY, as before).
#[derive(Debug, Clone, Default)]
pub struct DialogAnswers(Arc<Mutex<Calls>>);

#[derive(Debug, Default)]
struct Calls {
    live: HashSet<String>,
    ended: HashSet<String>,
}

impl DialogAnswers {
    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `call_id` live.
    pub fn open(&self, call_id: &str) {
        let mut calls = self.calls();
        calls.ended.remove(call_id);
        calls.live.insert(call_id.to_string());
    }

    /// Marks `call_id` ended (obsolete).
    pub fn end(&self, call_id: &str) {
        let mut calls = self.calls();
        calls.live.remove(call_id);
        calls.ended.insert(call_id.to_string());
    }

    pub fn is_live(&self, call_id: &str) -> bool {
        self.calls().live.contains(call_id)
    }

    /// The status to answer `request` with (`None`: no answer).
    pub fn answer_for(&self, request: &InboundRequest) -> Option<u16> {
        let call_id = request.message.call_id();
        let mut calls = self.calls();
        let live = calls.live.contains(call_id);
        match request.method {
            Method::Ack => None,
            Method::Info => Some(if live { 200 } else { 487 }),
            Method::Bye if live => {
                calls.live.remove(call_id);
                calls.ended.insert(call_id.to_string());
                Some(200)
            }
            _ if live => Some(200),
            _ if calls.ended.contains(call_id) => Some(481),
            _ => Some(200),
        }
    }
}
