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
    /// While this pool node drains: where its XMPP clients should reconnect
    /// (`see-other-host`; `""`: no other host known). `None` otherwise.
    pub redirect: tokio::sync::watch::Sender<Option<String>>,
    /// Source of client ids, shared by every protocol so XMPP and SIP sessions never collide.
    pub next_client: AtomicU64,
    /// Set by the SIP front end: delivers XMPP occupants' invitations to users on SIP.
    pub invitation_relay: std::sync::OnceLock<Arc<dyn InvitationRelay>>,
    /// File upload (XEP-0363) and download; `None` without an HTTP listener.
    pub files: Option<Arc<crate::files::FileService>>,
}

/// Delivers a room invitation over another protocol than the inviter's, so an invitation made
/// on XMPP reaches a user who is only connected by SIP.
pub trait InvitationRelay: Send + Sync {
    /// Offers the invitation to every endpoint of `invitee` this relay knows; returns how many
    /// got it.
    fn relay(
        &self,
        room: &str,
        inviter: &palaver_core::UserId,
        inviter_nick: &str,
        invitee: &palaver_core::UserId,
    ) -> usize;
}

impl Context {
    /// A new process-unique client id (for `ClientRef::id`).
    pub fn next_client_id(&self) -> u64 {
        self.next_client.fetch_add(1, Ordering::Relaxed)
    }
}
