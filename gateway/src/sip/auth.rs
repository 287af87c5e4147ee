//! Digest authentication of SIP requests (RFC 3261 §22, RFC 8760): REGISTER is challenged
//! with 401/WWW-Authenticate, other requests with 407/Proxy-Authenticate, offering SHA-256 and
//! MD5. HA1 values come from the account (`palaver user add` stores them); wrong credentials
//! get 403 and count towards the per-IP back-off, which then answers 403 without checking.
//! Requests arriving on a flow that holds a live registration of the sender need no digest.
//! Clients listed in `sip.proxy_challenge_user_agents` (pidgin-sipe, which answers Digest only
//! in a 407) get their REGISTER challenged with 407/Proxy-Authenticate, MD5 only.

use super::transport::Flow;
use super::SipService;
use palaver_core::UserId;
use palaver_dialects::sip::digest::{DigestAlgo, DigestCredentials, DigestError};
use palaver_dialects::sip::SipMessage;

/// Which challenge a request gets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// 401 + WWW-Authenticate (registrar).
    Www,
    /// 407 + Proxy-Authenticate (everything else).
    Proxy,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The user a From/To URI names, when it is one of ours.
pub fn local_user(svc: &SipService, uri: &palaver_dialects::sip::SipUri) -> Option<UserId> {
    let user = uri.user_unescaped()?;
    if !uri.host.eq_ignore_ascii_case(&svc.domain) {
        return None;
    }
    UserId::parse(&format!("{user}@{}", svc.domain))
}

/// Authenticates `request`; `None` means a response (challenge or error) was already sent.
pub async fn authenticate(
    svc: &SipService,
    request: &SipMessage,
    flow: &Flow,
    challenge: Challenge,
) -> Option<UserId> {
    let challenge = match challenge {
        Challenge::Www if wants_proxy_challenge(svc, request) => Challenge::Proxy,
        other => other,
    };
    let ip = flow.peer.ip();
    if svc.backoff.blocked_for(ip).is_some() {
        let resp = svc.reply(request, 403, "Too Many Failed Attempts");
        svc.respond(request, flow, resp).await;
        return None;
    }
    let header = match challenge {
        Challenge::Www => request.authorization(),
        Challenge::Proxy => request.proxy_authorization().or(request.authorization()),
    };
    let Some(header) = header else {
        send_challenge(svc, request, flow, challenge, false).await;
        return None;
    };
    let Some(creds) = DigestCredentials::parse(header) else {
        let resp = svc.reply(request, 400, "Malformed Authorization");
        svc.respond(request, flow, resp).await;
        return None;
    };
    let username = if creds.username.contains('@') {
        creds.username.clone()
    } else {
        format!("{}@{}", creds.username, svc.domain)
    };
    let user = UserId::parse(&username);
    let record = match &user {
        Some(user) => match svc.ctx.store.get_user(user).await {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(error = %e, "user lookup failed");
                let resp = svc.reply(request, 500, "Server Error");
                svc.respond(request, flow, resp).await;
                return None;
            }
        },
        None => None,
    };
    let method = request.cseq().method.to_string();
    let verdict = match svc.digest.lock() {
        Ok(mut digest) => digest.verify(&method, Some(header), now_secs(), |_, algo| {
            let d = record.as_ref()?.sip_digest.as_ref()?;
            Some(match algo {
                DigestAlgo::Md5 => d.ha1_md5.clone(),
                DigestAlgo::Sha256 => d.ha1_sha256.clone(),
            })
        }),
        Err(_) => Err(DigestError::Malformed),
    };
    match (verdict, user) {
        (Ok(_), Some(user)) => {
            svc.backoff.success(ip);
            Some(user)
        }
        (Err(DigestError::Missing | DigestError::WrongRealm), _) => {
            send_challenge(svc, request, flow, challenge, false).await;
            None
        }
        (Err(DigestError::StaleNonce | DigestError::Replay), _) => {
            send_challenge(svc, request, flow, challenge, true).await;
            None
        }
        (Err(DigestError::Malformed), _) => {
            let resp = svc.reply(request, 400, "Malformed Authorization");
            svc.respond(request, flow, resp).await;
            None
        }
        (Ok(_), None) | (Err(DigestError::UnknownUser | DigestError::WrongResponse), _) => {
            metrics::counter!("palaver_auth_failures_total", "protocol" => "sip").increment(1);
            tracing::info!(peer = %flow.peer, user = %creds.username, "SIP authentication failed");
            svc.backoff.failure(ip);
            let resp = svc.reply(request, 403, "Wrong Credentials");
            svc.respond(request, flow, resp).await;
            None
        }
    }
}

/// The request's User-Agent starts with one of `prefixes` (empty ones never match).
fn agent_starts_with(request: &SipMessage, prefixes: &[String]) -> bool {
    let agent = request.header("User-Agent").unwrap_or_default();
    prefixes
        .iter()
        .any(|prefix| !prefix.is_empty() && agent.starts_with(prefix.as_str()))
}

/// The request comes from a client that answers Digest only in a 407 (its User-Agent contains
/// an entry of `sip.proxy_challenge_user_agents`).
pub fn wants_proxy_challenge(svc: &SipService, request: &SipMessage) -> bool {
    let agent = request.header("User-Agent").unwrap_or_default();
    svc.config
        .proxy_challenge_user_agents
        .iter()
        .any(|part| !part.is_empty() && agent.contains(part.as_str()))
}

async fn send_challenge(
    svc: &SipService,
    request: &SipMessage,
    flow: &Flow,
    challenge: Challenge,
    stale: bool,
) {
    let mut values = match svc.digest.lock() {
        Ok(digest) => digest.challenge(now_secs(), stale),
        Err(_) => Vec::new(),
    };
    let md5_only = agent_starts_with(request, &svc.config.md5_only_user_agents)
        || wants_proxy_challenge(svc, request);
    if md5_only {
        values.retain(|v| v.contains("algorithm=MD5"));
    }
    let (code, reason, header) = match challenge {
        Challenge::Www => (401, "Unauthorized", "WWW-Authenticate"),
        Challenge::Proxy => (407, "Proxy Authentication Required", "Proxy-Authenticate"),
    };
    let mut resp = svc.reply(request, code, reason);
    for value in values {
        resp = resp.with_header(header, &value);
    }
    svc.respond(request, flow, resp).await;
    // pidgin-sipe resends the request unchanged but for the credentials, on the same branch:
    // that must be processed, not taken for a retransmission. (Other clients' retransmissions
    // of the challenged request keep getting the same challenge, RFC 3261 §17.2.2.)
    if wants_proxy_challenge(svc, request) {
        if let Ok(mut table) = svc.server_transactions.lock() {
            table.forget(request);
        }
    }
}

/// Authenticates a request that is not a REGISTER: free on a registered flow of the sender
/// (From), else a 407 digest round. The authenticated user must be the From user (else 403).
pub async fn authenticate_sender(
    svc: &SipService,
    request: &SipMessage,
    flow: &Flow,
) -> Option<UserId> {
    let from = local_user(svc, &request.from().uri);
    if let Some(user) = &from {
        if svc.bindings.is_registered_flow(&user.to_string(), flow) {
            return from;
        }
    }
    let user = authenticate(svc, request, flow, Challenge::Proxy).await?;
    if from.as_ref() != Some(&user) {
        let resp = svc.reply(request, 403, "From Does Not Match Credentials");
        svc.respond(request, flow, resp).await;
        return None;
    }
    Some(user)
}
