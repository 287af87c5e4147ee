//! The registrar (RFC 3261 §10.3): REGISTER with digest auth binds a user's contacts to the
//! flow the request came on. Bindings are kept in memory (with the flow, to reach the
//! client) and in the store's `registrations` table (the location service other pool nodes
//! read). Expiry is bounded by `sip.min_expires`/`sip.max_expires`; `Contact: *` with
//! `Expires: 0` removes everything; a user left without bindings leaves the rooms it was in.
//!
//! Behind a proxy (RFC 3327) the REGISTER carries `Path`: its values become the binding's
//! route set (requests to the contact go to the proxy with them as `Route`), and the 200
//! echoes them with `Supported: path` (§5.3). The store's copy ignores Path: other pool nodes
//! reach such a user through this node's live binding.

use super::auth::{authenticate, local_user, Challenge};
use super::bindings::Binding;
use super::transport::Flow;
use super::SipService;
use palaver_core::Registration;
use palaver_dialects::sip::SipMessage;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Handles a REGISTER.
pub async fn on_register(svc: &Arc<SipService>, req: &SipMessage, flow: &Flow) {
    let served = req.request_uri().is_some_and(|u| {
        u.host.eq_ignore_ascii_case(&svc.domain)
            || u.host.parse::<std::net::IpAddr>().is_ok()
            || u.host.starts_with('[')
    });
    let Some(aor) = local_user(svc, &req.to().uri).filter(|_| served) else {
        let resp = svc.reply(req, 404, "Domain Not Served");
        return svc.respond(req, flow, resp).await;
    };
    let Some(user) = authenticate(svc, req, flow, Challenge::Www).await else {
        return;
    };
    if user != aor {
        let resp = svc.reply(req, 403, "Not Allowed To Register This Address");
        return svc.respond(req, flow, resp).await;
    }
    let key = user.to_string();
    if req.is_contact_wildcard() {
        if req.expires() != Some(0) || req.contacts().len() > 1 {
            let resp = svc.reply(req, 400, "Wildcard Contact Needs Expires 0");
            return svc.respond(req, flow, resp).await;
        }
        let removed: Vec<(String, String)> = svc
            .bindings
            .list(&key)
            .into_iter()
            .map(|b| (key.clone(), b.contact))
            .collect();
        svc.bindings.remove_all(&key);
        let resp = svc.ok(req);
        svc.respond(req, flow, resp).await;
        svc.forget_registrations(removed, vec![key]).await;
        return;
    }
    let cfg = &svc.config;
    let cseq = req.cseq().seq;
    let mut plan = Vec::new();
    for contact in req.contacts() {
        let expires = contact
            .expires()
            .or(req.expires())
            .unwrap_or(cfg.default_expires);
        if expires != 0 && expires < cfg.min_expires {
            let resp = svc
                .reply(req, 423, "Interval Too Brief")
                .with_header("Min-Expires", &cfg.min_expires.to_string());
            return svc.respond(req, flow, resp).await;
        }
        let uri = contact.uri.to_string();
        if let Some(old) = svc.bindings.get(&key, &uri) {
            if old.call_id == req.call_id() && old.cseq >= cseq {
                let resp = svc.reply(req, 500, "Out Of Order REGISTER");
                return svc.respond(req, flow, resp).await;
            }
        }
        let instance = contact
            .param("+sip.instance")
            .unwrap_or_default()
            .to_string();
        plan.push((uri, expires.min(cfg.max_expires), instance));
    }
    let now_ms = crate::bootstrap::now_millis();
    let user_agent = req.header("User-Agent").unwrap_or_default();
    let path = super::bindings::split_list(req.header_values("Path"));
    let mut removed_last = false;
    // The interval granted to this REGISTER's (first) contact, also sent as `Expires`: some
    // clients (pidgin-sipe) read only that header, not the Contact's `expires` parameter.
    let granted = plan.first().map(|(_, e, _)| *e);
    for (uri, expires, instance) in plan {
        let store = &svc.ctx.store;
        if expires == 0 {
            tracing::info!(protocol = "sip", user = %key, peer = %flow.peer, contact = %uri, reason = "unregistered", "session closed");
            removed_last |= svc.bindings.remove(&key, &uri);
            if let Err(e) = store.remove_registration(&user, &uri).await {
                tracing::warn!(error = %e, "cannot remove registration");
            }
            continue;
        }
        // The durable copy has no Path column: it records where the REGISTER came from
        // (the proxy, for a proxied one); the route set lives in the live binding only.
        let row = Registration {
            user: user.clone(),
            contact: uri.clone(),
            instance: instance.clone(),
            transport: flow.transport.as_str().to_string(),
            source: flow.peer.to_string(),
            node: String::new(),
            call_id: req.call_id().to_string(),
            cseq: i64::from(cseq),
            expires_at: now_ms + i64::from(expires) * 1000,
            user_agent: user_agent.chars().take(256).collect(),
        };
        if let Err(e) = store.upsert_registration(&row).await {
            tracing::error!(error = %e, "cannot store registration");
            let resp = svc.reply(req, 500, "Server Error");
            return svc.respond(req, flow, resp).await;
        }
        let known = svc.bindings.list(&key).iter().any(|b| b.contact == uri);
        if !known {
            tracing::info!(protocol = "sip", user = %key, peer = %flow.peer, transport = flow.transport.as_str(), contact = %uri, "session open");
        }
        svc.bindings.upsert(
            &key,
            Binding {
                contact: uri,
                flow: flow.clone(),
                expires: Instant::now() + Duration::from_secs(u64::from(expires)),
                call_id: req.call_id().to_string(),
                cseq,
                instance,
                route: path.clone(),
            },
        );
        tracing::info!(user = %key, peer = %flow.peer, transport = flow.transport.as_str(), expires, path = path.len(), "SIP registration");
    }
    let mut resp = svc.ok(req);
    if let Some(granted) = granted {
        resp = resp.with_header("Expires", &granted.to_string());
    }
    if super::auth::wants_proxy_challenge(svc, req) {
        // A Lync-dialect client: it asks for in-band provisioning (and so turns group chat
        // on) only when told the server speaks Microsoft's event categories.
        resp = resp
            .with_header("Supported", "msrtc-event-categories")
            // No space after the comma: sipe compares the split items as they are.
            .with_header(
                "Allow-Events",
                &format!("{},conference", super::provisioning::EVENT),
            );
    }
    let now = Instant::now();
    for b in svc.bindings.list(&key) {
        let left = b.expires.saturating_duration_since(now).as_secs();
        let mut contact = format!("<{}>;expires={left}", b.contact);
        let instance: String = b
            .instance
            .chars()
            .filter(|c| !matches!(c, '"' | '\\'))
            .collect();
        if !instance.is_empty() {
            // RFC 5626 §6: echo the instance so the client can match its binding.
            contact.push_str(&format!(";+sip.instance=\"{instance}\""));
        }
        resp = resp.with_header("Contact", &contact);
    }
    if !path.is_empty() {
        // RFC 3327 §5.3: the stored Path, so the UA (and proxies) see the route kept.
        for hop in &path {
            resp = resp.with_header("Path", hop);
        }
        resp = resp.with_header("Supported", "path");
    }
    svc.respond(req, flow, resp).await;
    if removed_last {
        super::occupant::leave_all(svc, &key, "SIP registration ended").await;
    }
}
