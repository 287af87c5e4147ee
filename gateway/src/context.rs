//! `Context`: what the server's listeners and sessions share — configuration, store, room
//! engine, TLS configuration and the shutdown signal. Built once by `bootstrap`.

use crate::config::Config;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Shared by every task of a running server.
pub struct Context {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// The durable store.
    pub store: Arc<dyn palaver_core::Store>,
    /// The room engine.
    pub engine: palaver_core::engine::Engine,
    /// Server certificate for the domain, `conference.<domain>` and `upload.<domain>`.
    pub tls: Arc<rustls::ServerConfig>,
    /// Becomes true on SIGINT/SIGTERM, after the engine has shut down (rooms have already sent
    /// status 332 to their occupants). Sessions close their streams when it changes.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Source of client ids, shared by every protocol so XMPP and SIP sessions never collide.
    pub next_client: AtomicU64,
}

impl Context {
    /// A new process-unique client id (for `ClientRef::id`).
    pub fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }
}
