//! Requests to users (RFC 3261 §16): palaver as the users' home proxy. An out-of-dialog
//! MESSAGE, OPTIONS, INFO or NOTIFY whose Request-URI is `sip:user@<domain>` is proxied
//! statefully to the user's registered contacts:
//!
//! * the sender is authenticated ([`authenticate_sender`]: free on its own registered flow,
//!   else a 407 digest round); an unknown user gets 404, a user with no live binding 480;
//! * the request **forks** to every live binding of the user (each device gets it, as with
//!   room traffic): Request-URI = the binding's contact, the binding's Path as `Route`, our
//!   Via on top (fresh branch, the binding flow's sent-by), Max-Forwards − 1, everything else
//!   (From, To, Call-ID, CSeq, body) as received; `Route` values naming us and our own
//!   `Proxy-Authorization` credentials are removed. Each branch is a non-INVITE client
//!   transaction over the binding's flow ([`super::outbound::ClientTransactions::run_full`]);
//! * the first 2xx is relayed at once; otherwise, once every branch is final, the best
//!   response (§16.7: a 6xx, else the lowest other code, with 408/480/503 last) — 408 when a
//!   branch timed out and nothing answered, 480 when no flow took the request, and a 503 from
//!   downstream becomes 500. The relayed response loses our Via and is recorded with the
//!   server transaction, so a retransmitted request gets it again.
//!
//! **In a pool** the user's bindings may live on another node (the one that took the
//! REGISTER: it holds the flow and the Path). When the store's `registrations` table lists a
//! live contact of the user that this node has no binding for, the request also goes to every
//! live peer as a pool `SipRelay` frame ([`crate::pool::Membership::relay_sip`]); a peer with
//! bindings runs the same forking towards them (never relaying further) and answers with the
//! final response, its Via already removed; peers without bindings answer "not here". The
//! peers' answers take part in choosing the best response like local branches.

use super::auth::{authenticate_sender, local_user};
use super::bindings::Binding;
use super::transport::Flow;
use super::SipService;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use palaver_dialects::sip::digest_header::DigestCredentials;
use palaver_dialects::sip::headers::{same_name, HeaderField};
use palaver_dialects::sip::{
    forward_request, parse, strip_top_via, Forward, Method, NameAddr, SipMessage,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How long a node waits for its peers' answers to a relay: a peer's own client
/// transaction ends within timer F (32 s), plus a margin for the link.
const RELAY_TIMEOUT: Duration = Duration::from_secs(34);

/// What one branch (a local binding, or the peers together) came back with.
#[derive(Debug)]
enum Outcome {
    /// A final response to relay (our Via already removed).
    Response { code: u16, bytes: Vec<u8> },
    /// No response: 408 timed out, 503 could not be sent, 500 could not be built.
    Failed(u16),
    /// Nobody has a binding there.
    Nobody,
}

impl Outcome {
    /// Lower is better (RFC 3261 §16.7 step 6, simplified; 2xx never get here).
    fn rank(&self) -> u32 {
        match self {
            Outcome::Response { code, .. } if *code >= 600 => 0,
            Outcome::Response { code, .. } if matches!(code, 408 | 480 | 503) => {
                2000 + u32::from(*code)
            }
            Outcome::Response { code, .. } => 1000 + u32::from(*code),
            Outcome::Failed(408) => 3000,
            Outcome::Failed(code) => 3000 + u32::from(*code),
            Outcome::Nobody => 4000,
        }
    }

    fn is_success(&self) -> bool {
        matches!(self, Outcome::Response { code, .. } if (200..300).contains(code))
    }
}

/// Whether `req` is a request to one of our users that the proxy handles: MESSAGE, OPTIONS,
/// INFO or NOTIFY, out of dialog (no To tag), to `sip:user@<domain>`.
pub fn is_for_user(svc: &SipService, req: &SipMessage) -> bool {
    matches!(
        req.method(),
        Some(Method::Message | Method::Options | Method::Info | Method::Notify)
    ) && req.to().tag().is_none()
        && req
            .request_uri()
            .is_some_and(|u| u.user.is_some() && u.host.eq_ignore_ascii_case(&svc.domain))
}

/// Handles a request [`is_for_user`] accepted.
pub async fn on_request(svc: &Arc<SipService>, req: &SipMessage, flow: &Flow) {
    if authenticate_sender(svc, req, flow).await.is_none() {
        return;
    }
    let Some(user) = req.request_uri().and_then(|u| local_user(svc, u)) else {
        let resp = svc.reply(req, 404, "Not Found");
        return svc.respond(req, flow, resp).await;
    };
    match svc.ctx.store.get_user(&user).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            let resp = svc.reply(req, 404, "Not Found");
            return svc.respond(req, flow, resp).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            let resp = svc.reply(req, 500, "Server Error");
            return svc.respond(req, flow, resp).await;
        }
    }
    let key = user.to_string();
    let local = svc.bindings.list(&key);
    let pool = match svc.pool.get().cloned() {
        Some(pool) if registered_elsewhere(svc, &user, &local).await => Some(pool),
        _ => None,
    };
    if local.is_empty() && pool.is_none() {
        let resp = svc.reply(req, 480, "Temporarily Unavailable");
        return svc.respond(req, flow, resp).await;
    }
    metrics::counter!("palaver_sip_proxied_total").increment(1);
    tracing::debug!(user = %key, bindings = local.len(), pool = pool.is_some(), method = %req.cseq().method, "proxying a request to a user");
    // The transaction may last up to timer F: the flow's reader must not wait for it (the
    // answer may come on the same connection).
    let (svc, req, flow) = (svc.clone(), req.clone(), flow.clone());
    tokio::spawn(async move {
        let remote = pool.map(|pool| (pool, key));
        let outcome = fork(&svc, &req, listener_host(&flow), local, remote).await;
        answer(&svc, &req, &flow, outcome).await;
    });
}

/// Whether the store lists a live contact of `user` that `local` does not hold (it was
/// registered on another pool node). A store error counts as yes.
async fn registered_elsewhere(
    svc: &SipService,
    user: &palaver_core::UserId,
    local: &[Binding],
) -> bool {
    match svc
        .ctx
        .store
        .registrations(user, crate::bootstrap::now_millis())
        .await
    {
        // A row is ours when a live binding here has its contact, source and transport (the
        // same contact registered since on another node is that node's).
        Ok(rows) => rows.iter().any(|r| {
            !local.iter().any(|b| {
                b.contact == r.contact
                    && b.flow.peer.to_string() == r.source
                    && b.flow.transport.as_str() == r.transport
            })
        }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read registrations");
            true
        }
    }
}

type Branch<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// Runs one branch per local binding (and one for the peers with `remote`); the first 2xx,
/// else the best outcome.
async fn fork(
    svc: &SipService,
    req: &SipMessage,
    arrived_at: &str,
    local: Vec<Binding>,
    remote: Option<(Arc<crate::pool::Membership>, String)>,
) -> Outcome {
    let mut branches: FuturesUnordered<Branch<'_>> = FuturesUnordered::new();
    for binding in local {
        branches.push(Box::pin(forward_local(svc, req, arrived_at, binding)));
    }
    if let Some((pool, user)) = remote {
        branches.push(Box::pin(forward_remote(svc, req, arrived_at, pool, user)));
    }
    let mut best = Outcome::Nobody;
    while let Some(outcome) = branches.next().await {
        if outcome.is_success() {
            return outcome;
        }
        if outcome.rank() < best.rank() {
            best = outcome;
        }
    }
    best
}

/// The host of our listener `flow` arrived at (as advertised in our Vias).
fn listener_host(flow: &Flow) -> &str {
    flow.local
        .rsplit_once(':')
        .map_or(&*flow.local, |(host, _)| host)
}

/// The request's `Route` values, in order, without those naming us (our domain, or the
/// listener the request arrived at; RFC 3261 §16.4). Unparsable values are kept.
fn foreign_routes(svc: &SipService, arrived_at: &str, req: &SipMessage) -> Vec<String> {
    super::bindings::split_list(req.header_values("Route"))
        .into_iter()
        .filter(|value| {
            let ours = NameAddr::parse(value).is_ok_and(|hop| {
                let host = hop.uri.host.as_str();
                host.eq_ignore_ascii_case(&svc.domain)
                    || (!arrived_at.is_empty() && host.eq_ignore_ascii_case(arrived_at))
            });
            !ours
        })
        .collect()
}

/// Keeps the headers a forwarded request carries on: not `Route` (written again from the new
/// route set and [`foreign_routes`]), not our own digest credentials (they were for us).
fn keep_header(svc: &SipService, field: &HeaderField) -> bool {
    if same_name(&field.name, "Route") {
        return false;
    }
    if same_name(&field.name, "Proxy-Authorization") {
        let ours = DigestCredentials::parse(&field.value)
            .is_some_and(|c| c.realm.eq_ignore_ascii_case(&svc.domain));
        return !ours;
    }
    true
}

/// Forwards `req` to one binding and waits for its final response.
async fn forward_local(
    svc: &SipService,
    req: &SipMessage,
    arrived_at: &str,
    b: Binding,
) -> Outcome {
    // The binding's Path first, then what was left of the request's route (RFC 3261 §16.6).
    let mut route = b.route.clone();
    route.extend(foreign_routes(svc, arrived_at, req));
    let change = Forward {
        request_uri: Some(&b.contact),
        route: &route,
        via: Some((b.flow.transport.via_name(), &b.flow.local)),
        decrement_max_forwards: true,
    };
    let out = match forward_request(req, &change, |f| keep_header(svc, f)) {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(error = %e, contact = %b.contact, "cannot forward a request");
            return Outcome::Failed(500);
        }
    };
    match svc.client_transactions.run_full(&b.flow, out).await {
        // Our Via and the requester's at least, or the response leads nowhere.
        Ok(resp) if resp.vias().len() < 2 => {
            tracing::debug!(contact = %b.contact, "response without the requester's Via");
            Outcome::Failed(500)
        }
        Ok(resp) => match (resp.status(), strip_top_via(&resp)) {
            (Some(code), Some(bytes)) => Outcome::Response { code, bytes },
            _ => Outcome::Failed(500),
        },
        Err(code) => Outcome::Failed(code),
    }
}

/// Relays `req` to every live peer and waits for their answers: the first 2xx, else the best
/// response; [`Outcome::Nobody`] when no peer has a binding.
async fn forward_remote(
    svc: &SipService,
    req: &SipMessage,
    arrived_at: &str,
    pool: Arc<crate::pool::Membership>,
    user: String,
) -> Outcome {
    let route = foreign_routes(svc, arrived_at, req);
    let change = Forward {
        route: &route,
        ..Forward::default()
    };
    let out = match forward_request(req, &change, |f| keep_header(svc, f)) {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(error = %e, "cannot relay a request to the pool");
            return Outcome::Failed(500);
        }
    };
    let mut call = pool.relay_sip(&user, Bytes::from(out.bytes));
    let deadline = tokio::time::Instant::now() + RELAY_TIMEOUT;
    let mut best = Outcome::Nobody;
    let mut answered = 0;
    while answered < call.asked {
        match tokio::time::timeout_at(deadline, call.next()).await {
            Ok(Some((peer, Some(bytes)))) => {
                answered += 1;
                let code = match parse(&bytes, svc.config.max_message_bytes) {
                    Ok(resp) => resp.status(),
                    Err(e) => {
                        tracing::warn!(member = %peer, error = %e, "unparsable relayed SIP response");
                        None
                    }
                };
                let outcome = match code {
                    Some(code) if code >= 200 => Outcome::Response {
                        code,
                        bytes: bytes.to_vec(),
                    },
                    _ => Outcome::Failed(500),
                };
                if outcome.is_success() {
                    return outcome;
                }
                if outcome.rank() < best.rank() {
                    best = outcome;
                }
            }
            Ok(Some((_, None))) => answered += 1,
            Ok(None) => break,
            Err(_) => {
                tracing::debug!(user, answered, asked = call.asked, "SIP relay timed out");
                if matches!(best, Outcome::Nobody) {
                    best = Outcome::Failed(408);
                }
                break;
            }
        }
    }
    best
}

/// Sends the requester the response `outcome` stands for.
async fn answer(svc: &SipService, req: &SipMessage, flow: &Flow, outcome: Outcome) {
    let (code, reason) = match outcome {
        Outcome::Response { code: 503, .. } => (500, "Server Internal Error"),
        Outcome::Response { bytes, .. } => {
            return svc.send_response(req, flow, Bytes::from(bytes)).await;
        }
        Outcome::Failed(408) => (408, "Request Timeout"),
        Outcome::Failed(500) => (500, "Server Internal Error"),
        Outcome::Failed(_) | Outcome::Nobody => (480, "Temporarily Unavailable"),
    };
    let resp = svc.reply(req, code, reason);
    svc.respond(req, flow, resp).await;
}

/// Makes this node answer the SIP relays of its pool peers: a relayed request is forked to
/// this node's bindings of the user (or run in an XCCOS dialog this node holds).
pub fn attach(svc: &Arc<SipService>, pool: &crate::pool::Membership) {
    let weak = Arc::downgrade(svc);
    pool.on_sip_relay(Box::new(move |user, request| {
        let weak = weak.clone();
        Box::pin(async move {
            let svc = weak.upgrade()?;
            relayed(&svc, &user, &request).await
        })
    }));
}

/// A peer's relay: `None` without a live binding of `user` here, else the final response.
async fn relayed(svc: &Arc<SipService>, user: &str, request: &[u8]) -> Option<Bytes> {
    if user == super::xccos::DIALOG_RELAY {
        return super::xccos::relayed(svc, request).await;
    }
    let req = match parse(request, svc.config.max_message_bytes) {
        Ok(req) if req.is_request() => req,
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "unparsable relayed SIP request");
            return None;
        }
    };
    let local = svc.bindings.list(user);
    if local.is_empty() {
        return None;
    }
    tracing::debug!(
        user,
        bindings = local.len(),
        "proxying a request relayed by a peer"
    );
    // The sending node already removed the Route values naming it.
    let bytes = match fork(svc, &req, "", local, None).await {
        Outcome::Response { bytes, .. } => bytes,
        Outcome::Failed(408) => svc.reply(&req, 408, "Request Timeout").to_bytes(),
        Outcome::Failed(500) => svc.reply(&req, 500, "Server Internal Error").to_bytes(),
        Outcome::Failed(_) | Outcome::Nobody => {
            svc.reply(&req, 480, "Temporarily Unavailable").to_bytes()
        }
    };
    Some(Bytes::from(bytes))
}
