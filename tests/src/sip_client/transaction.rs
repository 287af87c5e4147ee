//! Requests of a [`SipClient`] as client transactions: building them from a [`Spec`], sending
//! and retransmitting over UDP (timer E, T1 doubling up to T2; timer F), skipping
//! provisionals, and answering one 401/407 digest challenge by sending the request again with
//! the next CSeq. The INVITE transaction (`invite.rs`) builds its requests, answers its
//! challenge and registers itself with the same pieces.

use super::client::Spec;
use super::digest::{authorization, pick_challenge, DigestAnswer};
use super::io::Shared;
use super::{DigestAlgo, Response, SipClient};
use anyhow::{anyhow, bail, Context as _, Result};
use palaver_dialects::sip::request::new_tag;
use palaver_dialects::sip::transaction::{Action, ClientTransaction, ResponseOutcome};
use palaver_dialects::sip::{Method, OutgoingRequest, RequestBuilder};
use tokio::sync::mpsc;
use tokio::time::Instant;

impl SipClient {
    pub(super) async fn send_spec(
        &mut self,
        spec: &mut Spec,
        answer_challenge: bool,
    ) -> Result<Response> {
        let mut credentials: Option<(&'static str, String)> = None;
        loop {
            let request = self.build(spec, credentials.as_ref())?;
            let response = self.transact(&request, spec.method).await?;
            let challenged = matches!(response.code, 401 | 407);
            if !challenged || !answer_challenge || credentials.is_some() {
                return Ok(response);
            }
            credentials = Some(self.answer_challenge(&response, spec.method, &spec.request_uri)?);
            spec.cseq += 1;
        }
    }

    /// The `(header, value)` answering the digest challenge in `response` (401 or 407) to
    /// `method` `uri`: the challenge chosen by [`pick_challenge`] (offering `qop=auth` or no
    /// qop), the nonce's next `nc`, a fresh cnonce.
    pub(super) fn answer_challenge(
        &mut self,
        response: &Response,
        method: Method,
        uri: &str,
    ) -> Result<(&'static str, String)> {
        let (challenge_header, answer_header) = match response.code {
            401 => ("WWW-Authenticate", "Authorization"),
            _ => ("Proxy-Authenticate", "Proxy-Authorization"),
        };
        let offered: Vec<&str> = response.message.header_values(challenge_header).collect();
        let challenge = pick_challenge(offered.iter().copied(), self.digest_algo)
            .filter(|c| c.offers_auth() || c.qop.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "{response} without a {challenge_header} this client can answer \
                     (wanted {:?}): {offered:?}",
                    self.digest_algo.map(DigestAlgo::name)
                )
            })?;
        let nc = self
            .nonce_counts
            .entry(challenge.nonce.clone())
            .or_insert(0);
        *nc += 1;
        let cnonce = new_tag();
        let value = authorization(
            &challenge,
            &DigestAnswer {
                username: &self.user,
                password: &self.password,
                method: &method.to_string(),
                uri,
                cnonce: &cnonce,
                nc: *nc,
            },
        );
        Ok((answer_header, value))
    }

    /// `spec` as a request, with `credentials` (the `(header, value)` answering a challenge)
    /// when given.
    pub(super) fn build(
        &self,
        spec: &Spec,
        credentials: Option<&(&str, String)>,
    ) -> Result<OutgoingRequest> {
        let mut b = RequestBuilder::new(spec.method, &spec.request_uri)
            .from(&self.aor(), None, &spec.from_tag)
            .to(&spec.to_uri, None, spec.to_tag.as_deref())
            .call_id(&spec.call_id)
            .cseq(spec.cseq)
            .via(self.transport.via_token(), &self.local.to_string());
        if spec.contact {
            b = b.contact(&self.contact());
        }
        for (name, value) in &spec.headers {
            b = b.header(name, value);
        }
        if let Some((name, value)) = credentials {
            b = b.header(name, value);
        }
        if let Some((content_type, body)) = &spec.body {
            b = b.body(content_type, body.clone());
        }
        b.build()
            .map_err(|e| anyhow!("building {} {}: {e}", spec.method, spec.request_uri))
    }

    /// Runs one client transaction: send, retransmit over UDP (timer E), wait for the final
    /// response (provisionals are skipped) at most `self.timeout` and timer F.
    async fn transact(&self, request: &OutgoingRequest, method: Method) -> Result<Response> {
        let mut pending = self.open_transaction(request, method).await?;
        let mut txn =
            ClientTransaction::new(std::time::Instant::now(), self.transport.is_reliable());
        let deadline = Instant::now() + self.timeout;
        loop {
            let wake = txn
                .next_deadline()
                .map_or(deadline, |d| Instant::from_std(d).min(deadline));
            tokio::select! {
                response = pending.responses.recv() => {
                    let Some(response) = response else {
                        bail!("the connection ended before a final response to {method}: {}",
                              self.closed_reason());
                    };
                    match txn.on_response(response.code, std::time::Instant::now()) {
                        ResponseOutcome::Final => return Ok(response),
                        ResponseOutcome::Provisional | ResponseOutcome::Absorbed => {}
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        bail!("no final response to {method} within {:?}{}", self.timeout,
                              self.junk_note());
                    }
                    while let Some(action) = txn.poll(std::time::Instant::now()) {
                        match action {
                            Action::Retransmit => {
                                self.shared.writer.send(&request.bytes).await
                                    .with_context(|| format!("retransmitting {method}"))?;
                            }
                            Action::TimedOut => bail!(
                                "{method} timed out (timer F){}", self.junk_note()),
                        }
                    }
                }
            }
        }
    }

    /// Registers the client transaction of `request` (its branch) and sends `request` the
    /// first time; the registration ends when the returned [`Pending`] is dropped.
    pub(super) async fn open_transaction<'a>(
        &'a self,
        request: &'a OutgoingRequest,
        method: Method,
    ) -> Result<Pending<'a>> {
        let pending = Pending {
            responses: self.shared.start_transaction(&request.branch),
            shared: &self.shared,
            branch: &request.branch,
        };
        self.shared
            .writer
            .send(&request.bytes)
            .await
            .with_context(|| format!("sending {method} to {}", self.server))?;
        Ok(pending)
    }

    pub(super) fn closed_reason(&self) -> String {
        self.closed
            .borrow()
            .clone()
            .unwrap_or_else(|| "the connection is open".into())
    }

    /// A hint about unclaimed frames, for timeout messages.
    pub(super) fn junk_note(&self) -> String {
        match self.raw.len() {
            0 => String::new(),
            n => format!(" ({n} unclaimed frame(s) queued: see recv_raw)"),
        }
    }
}

/// A registered client transaction: the responses to its branch. Dropping it (also on errors
/// and cancellation) ends the registration.
pub(super) struct Pending<'a> {
    pub(super) responses: mpsc::UnboundedReceiver<Response>,
    shared: &'a Shared,
    branch: &'a str,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.shared.finish(self.branch);
    }
}
