//! Every SIP message read from any transport arrives here: it is parsed (garbage gets a
//! stateless 400/405/505/513), responses go to their client transaction, retransmitted
//! requests get the response already sent, loops (Max-Forwards 0) get 483, and requests are
//! dispatched by method to the registrar, the pager rooms, the conference service or the
//! XCCOS sessions (INVITE, ACK, INFO, UPDATE, BYE), or, addressed to a user, to the proxy
//! ([`super::proxy`]) — except
//! on a draining pool node, which answers every request but OPTIONS 503 with Retry-After.

use super::transport::Flow;
use super::SipService;
use bytes::Bytes;
use palaver_dialects::sip::transaction::Dedupe;
use palaver_dialects::sip::{error_response, parse, response_to, Method, SipMessage, SipResponse};
use std::sync::Arc;
use std::time::Instant;

/// The methods palaver answers (the `Allow` header of 405s and OPTIONS).
pub const ALLOW: &str =
    "REGISTER, MESSAGE, SUBSCRIBE, OPTIONS, ACK, CANCEL, INVITE, INFO, UPDATE, BYE";

/// Seconds a client of a draining node is told to wait before it retries that node (it
/// should try another one at once).
const DRAIN_RETRY_AFTER: &str = "300";

/// Handles one message from `flow`.
pub async fn on_message(svc: &Arc<SipService>, raw: Vec<u8>, flow: &Flow) {
    let mut message = match parse(&raw, svc.config.max_message_bytes) {
        Ok(m) => m,
        Err(err) => {
            metrics::counter!("palaver_sip_bad_messages_total").increment(1);
            tracing::debug!(peer = %flow.peer, error = %err, "unparsable SIP message");
            if let Some(resp) = error_response(&raw, &err, ALLOW) {
                flow.send(Bytes::from(resp)).await;
            }
            return;
        }
    };
    if !message.is_request() {
        svc.client_transactions.on_response(&message);
        return;
    }
    message.stamp_source(flow.peer);
    let dedupe = match svc.server_transactions.lock() {
        Ok(mut table) => table.check(&message, Instant::now()),
        Err(_) => Dedupe::New,
    };
    match dedupe {
        Dedupe::New => {}
        Dedupe::Resend(bytes) => {
            flow.send(Bytes::from(bytes)).await;
            return;
        }
        Dedupe::Pending | Dedupe::AckAbsorbed => return,
    }
    if message.method() == Some(Method::Ack) {
        super::xccos::on_ack(svc, &message).await;
        return;
    }
    if message.max_forwards() == Some(0) {
        let resp = response_to(&message, 483, "Too Many Hops", Some(&svc.to_tag(&message)));
        svc.respond(&message, flow, resp).await;
        return;
    }
    metrics::counter!("palaver_sip_requests_total").increment(1);
    if svc.ctx.redirect.borrow().is_some() && message.method() != Some(Method::Options) {
        // A draining pool node (RFC 3261 §21.5.4): the client or its proxy tries another
        // node; OPTIONS keeps answering so health checks see the node is still up.
        let resp = svc
            .reply(&message, 503, "Service Unavailable")
            .with_header("Retry-After", DRAIN_RETRY_AFTER);
        svc.respond(&message, flow, resp).await;
        return;
    }
    if super::proxy::is_for_user(svc, &message) {
        // Out-of-dialog MESSAGE/OPTIONS/INFO/NOTIFY to `sip:user@<domain>`: proxied.
        return super::proxy::on_request(svc, &message, flow).await;
    }
    match message.method() {
        Some(Method::Register) => super::registrar::on_register(svc, &message, flow).await,
        Some(Method::Message) => super::pager::on_message(svc, &message, flow).await,
        Some(Method::Subscribe) => super::conference::on_subscribe(svc, &message, flow).await,
        Some(Method::Invite) => super::xccos::on_invite(svc, &message, flow).await,
        Some(Method::Info | Method::Update | Method::Bye) => {
            super::xccos::on_in_dialog(svc, &message, flow).await
        }
        Some(Method::Options) => {
            let resp = svc
                .ok(&message)
                .with_header("Allow", ALLOW)
                .with_header("Accept", "text/plain, message/cpim")
                .with_header("Allow-Events", "conference");
            svc.respond(&message, flow, resp).await;
        }
        Some(Method::Cancel) => {
            let resp = response_to(
                &message,
                481,
                "Call/Transaction Does Not Exist",
                Some(&svc.to_tag(&message)),
            );
            svc.respond(&message, flow, resp).await;
        }
        _ => {
            let resp = response_to(
                &message,
                405,
                "Method Not Allowed",
                Some(&svc.to_tag(&message)),
            )
            .with_header("Allow", ALLOW);
            svc.respond(&message, flow, resp).await;
        }
    }
}

impl SipService {
    /// Sends `response` to `request` over `flow` and remembers it for retransmissions.
    pub async fn respond(&self, request: &SipMessage, flow: &Flow, response: SipResponse) {
        self.send_response(request, flow, Self::response_bytes(response))
            .await;
    }

    /// A response of ours as sent: with the `Server` header.
    pub fn response_bytes(response: SipResponse) -> Bytes {
        Bytes::from(
            response
                .with_header("Server", concat!("palaver/", env!("CARGO_PKG_VERSION")))
                .to_bytes(),
        )
    }

    /// Sends an already serialized response to `request` over `flow` and remembers it for
    /// retransmissions (a response built here, or one relayed from a device or a pool peer).
    pub async fn send_response(&self, request: &SipMessage, flow: &Flow, bytes: Bytes) {
        if let Ok(mut table) = self.server_transactions.lock() {
            table.record_response(request, &bytes, Instant::now());
        }
        flow.send(bytes).await;
    }

    /// A `200 OK` to `request`.
    pub fn ok(&self, request: &SipMessage) -> SipResponse {
        response_to(request, 200, "OK", Some(&self.to_tag(request)))
    }

    /// A response with `code` and `reason`.
    pub fn reply(&self, request: &SipMessage, code: u16, reason: &str) -> SipResponse {
        response_to(request, code, reason, Some(&self.to_tag(request)))
    }

    /// A To tag derived from the request (the same for its retransmissions).
    pub fn to_tag(&self, request: &SipMessage) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(request.call_id().as_bytes());
        h.update(request.from().tag().unwrap_or_default().as_bytes());
        h.update(request.branch().unwrap_or_default().as_bytes());
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
