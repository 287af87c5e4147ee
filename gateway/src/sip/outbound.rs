//! Requests palaver originates (MESSAGEs to room occupants, NOTIFYs to subscribers) or
//! proxies (requests to users, see [`super::proxy`]): each runs as an RFC 3261 non-INVITE
//! client transaction — retransmitted over UDP on timer E, given up
//! on timer F (a timeout counts as 408) — and its final response is matched back by the top
//! Via branch ([`ClientTransactions::run`] gives the status, [`ClientTransactions::run_full`]
//! the whole response). A target reached through proxies (a registration with `Path`) gets its route
//! set as `Route` headers.

use super::bindings::Target;
use super::transport::Flow;
use bytes::Bytes;
use dashmap::DashMap;
use palaver_dialects::sip::transaction::{Action, ClientTransaction};
use palaver_dialects::sip::{OutgoingRequest, RequestBuilder, SipMessage};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The final status of an outbound request. 408 when nothing came back in time; 503 when the
/// request could not even be sent (connection gone).
pub type FinalStatus = u16;

/// Client transactions waiting for their final response.
#[derive(Default)]
pub struct ClientTransactions {
    pending: DashMap<String, oneshot::Sender<SipMessage>>,
}

impl ClientTransactions {
    /// Sends `request` over `flow` and waits for its final status.
    pub async fn run(&self, flow: &Flow, request: OutgoingRequest) -> FinalStatus {
        match self.run_full(flow, request).await {
            Ok(response) => response.status().unwrap_or(408),
            Err(status) => status,
        }
    }

    /// Sends `request` over `flow` and waits for its final response; `Err` with the status
    /// standing for it when none came: 408 on timeout (timer F), 503 when it could not be
    /// sent.
    pub async fn run_full(
        &self,
        flow: &Flow,
        request: OutgoingRequest,
    ) -> Result<SipMessage, FinalStatus> {
        let (tx, mut rx) = oneshot::channel();
        self.pending.insert(request.branch.clone(), tx);
        let guard = PendingGuard {
            table: self,
            branch: &request.branch,
        };
        let bytes = Bytes::from(request.bytes);
        if !flow.send(bytes.clone()).await {
            drop(guard);
            return Err(503);
        }
        let mut txn = ClientTransaction::new(std::time::Instant::now(), flow.transport.reliable());
        loop {
            let deadline = txn
                .next_deadline()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(32));
            tokio::select! {
                response = &mut rx => return response.map_err(|_| 408),
                () = tokio::time::sleep_until(deadline) => {
                    match txn.poll(std::time::Instant::now()) {
                        Some(Action::Retransmit) => {
                            flow.send(bytes.clone()).await;
                        }
                        Some(Action::TimedOut) => return Err(408),
                        None if txn.is_terminated() => return Err(408),
                        None => {}
                    }
                }
            }
        }
    }

    /// Routes a response to its transaction; provisional responses are ignored.
    pub fn on_response(&self, response: &SipMessage) {
        let (Some(status), Some(branch)) = (response.status(), response.branch()) else {
            return;
        };
        if status < 200 {
            return;
        }
        if let Some((_, tx)) = self.pending.remove(branch) {
            let _ = tx.send(response.clone());
        }
    }
}

struct PendingGuard<'a> {
    table: &'a ClientTransactions,
    branch: &'a str,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.table.pending.remove(self.branch);
    }
}

/// A MESSAGE from a room (`from_uri`, shown as `from_name`) to one target.
pub fn room_message(
    target: &Target,
    to_aor: &str,
    from_uri: &str,
    from_name: Option<&str>,
    body: &str,
) -> Option<OutgoingRequest> {
    let mut builder = RequestBuilder::message(&target.uri)
        .via(target.flow.transport.via_name(), &target.flow.local)
        .from(
            from_uri,
            from_name,
            &palaver_dialects::sip::request::new_tag(),
        )
        .to(to_aor, None, None);
    // A contact registered through proxies (RFC 3327): its Path values, in order, are the
    // route; the flow is the one towards the first of them.
    for hop in &target.route {
        builder = builder.header("Route", hop);
    }
    let built = builder
        .body(palaver_dialects::pager::text::CONTENT_TYPE, body.as_bytes())
        .build();
    match built {
        Ok(request) => Some(request),
        Err(e) => {
            tracing::warn!(error = %e, target = %target.uri, "cannot build MESSAGE");
            None
        }
    }
}
