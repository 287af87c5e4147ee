//! `XmppService`: what every XMPP connection shares — the server context, the router of local
//! sessions, the per-IP authentication back-off, the MUC domain and the parser limits.

use super::backoff::AuthBackoff;
use super::router::Router;
use crate::context::Context;
use palaver_dialects::xmpp::reader::Limits;
use std::sync::Arc;
use std::time::Duration;

/// Shared by every c2s connection of one server.
pub struct XmppService {
    pub ctx: Arc<Context>,
    pub router: Router,
    pub backoff: AuthBackoff,
    pub domain: String,
    pub muc_domain: String,
    /// The XEP-0363 upload service (`upload.<domain>` unless `files.upload_domain` says).
    pub upload_domain: String,
    pub limits: Limits,
    pub outbound_queue: usize,
    pub require_encryption: bool,
    pub idle_timeout: Duration,
    /// Time allowed from connect to a bound resource.
    pub login_timeout: Duration,
    /// Concurrent connections per source address.
    pub conn_limit: Arc<crate::conn_limit::ConnLimiter>,
}

impl XmppService {
    pub fn new(ctx: Arc<Context>) -> Arc<XmppService> {
        let cfg = &ctx.config;
        let domain = cfg.domain.to_lowercase();
        let muc_domain = if cfg.xmpp.muc_domain.is_empty() {
            format!("conference.{domain}")
        } else {
            cfg.xmpp.muc_domain.to_lowercase()
        };
        let upload_domain = if cfg.files.upload_domain.is_empty() {
            format!("upload.{domain}")
        } else {
            cfg.files.upload_domain.to_lowercase()
        };
        let limits = Limits {
            max_stanza_bytes: cfg.xmpp.max_stanza_bytes,
            max_depth: cfg.xmpp.max_depth,
            ..Limits::default()
        };
        Arc::new(XmppService {
            router: Router::default(),
            backoff: AuthBackoff::new(cfg.xmpp.auth_failures_before_backoff),
            domain,
            muc_domain,
            upload_domain,
            limits,
            outbound_queue: cfg.xmpp.outbound_queue.max(16),
            require_encryption: cfg.xmpp.require_encryption,
            idle_timeout: Duration::from_secs(cfg.xmpp.idle_timeout_secs.max(5)),
            login_timeout: Duration::from_secs(30),
            conn_limit: crate::conn_limit::ConnLimiter::new(cfg.xmpp.max_connections_per_ip),
            ctx,
        })
    }

    /// A new process-unique client id.
    pub fn next_client_id(&self) -> u64 {
        self.ctx.next_client_id()
    }
}
