//! The SIP front end (RFC 3261): UDP/TCP/TLS listeners, a digest-authenticating registrar
//! whose location table lives in the store, pager rooms (`sip:room@conference.<domain>`:
//! MESSAGE bodies are `#commands` or posts, RFC 3428) and RFC 4575 conference-event
//! subscriptions, and MS-XCCOSIP sessions (Lync/pidgin-sipe group chat, [`xccos`]). SIP
//! occupants are ordinary room occupants: the room engine treats them
//! exactly like XMPP ones.

mod auth;
mod bindings;
mod commands;
mod conference;
mod config;
mod directory;
mod inbound;
mod invites;
mod occupant;
mod outbound;
mod pager;
mod provisioning;
mod proxy;
mod ratelimit;
mod registrar;
mod transport;
mod udp_peers;
mod xccos;

pub use config::SipConfig;
pub use transport::Transport;

use crate::context::Context;
use crate::xmpp::XmppService;
use bindings::Bindings;
use dashmap::DashMap;
use palaver_dialects::sip::digest::DigestServer;
use palaver_dialects::sip::transaction::ServerTransactions;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// Server transactions remembered for retransmission handling.
const SERVER_TRANSACTIONS: usize = 65_536;
/// How often expired registrations are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// The shortest idle timeout used, whatever `sip.idle_timeout_secs` says.
const MIN_IDLE_TIMEOUT_SECS: u64 = 2;

/// Shared by every SIP listener and task of one server.
pub struct SipService {
    pub ctx: Arc<Context>,
    pub config: SipConfig,
    /// The user domain (`localhost`): AORs are `sip:user@<domain>`.
    pub domain: String,
    /// Where rooms live (`conference.localhost`).
    pub room_domain: String,
    pub idle_timeout: Duration,
    pub digest: Mutex<DigestServer>,
    pub server_transactions: Mutex<ServerTransactions>,
    pub client_transactions: outbound::ClientTransactions,
    pub bindings: Bindings,
    pub limiter: ratelimit::RateLimiter,
    pub backoff: crate::xmpp::AuthBackoff,
    /// SIP occupants by (user, room).
    pub occupants: DashMap<(String, String), Arc<occupant::Occupancy>>,
    /// Conference subscriptions by (Call-ID, our tag).
    pub subscriptions: DashMap<(String, String), Arc<conference::Subscription>>,
    /// Pending invitations by (invitee, room).
    pub invitations: DashMap<(String, String), invites::Invitation>,
    /// For invitations to XMPP users.
    pub xmpp: Arc<XmppService>,
    /// Per-source queues keeping UDP requests in order.
    pub udp_peers: udp_peers::UdpPeers,
    /// Concurrent TCP/TLS connections per source address.
    pub conn_limit: Arc<crate::conn_limit::ConnLimiter>,
    /// XCCOS (Lync group chat) sessions by (Call-ID, our tag).
    pub xccos: xccos::Sessions,
    /// The pool this node is in, if any: requests to users registered on other nodes and
    /// in-dialog requests of sessions held by them are relayed through it.
    pub pool: std::sync::OnceLock<Arc<crate::pool::Membership>>,
}

/// Bound SIP sockets, ready to serve.
pub struct SipListeners {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    tls: Vec<TcpListener>,
    /// One `palaver: listening sip-… ADDR` line per socket.
    pub announcements: Vec<String>,
}

/// Asks for a bigger kernel receive buffer; a refusal is logged, not fatal (the default works,
/// it just drops datagrams in bursts).
fn widen_receive_buffer(socket: &UdpSocket, bytes: usize) {
    let sock = socket2::SockRef::from(socket);
    if let Err(e) = sock.set_recv_buffer_size(bytes) {
        tracing::warn!(error = %e, bytes, "cannot set the SIP UDP receive buffer");
    }
    if let Ok(got) = sock.recv_buffer_size() {
        tracing::debug!(asked = bytes, got, "SIP UDP receive buffer");
    }
}

/// Binds every configured SIP socket (before anything else starts, so a port conflict fails
/// fast).
pub async fn bind(config: &SipConfig) -> anyhow::Result<SipListeners> {
    use anyhow::Context as _;
    let mut out = SipListeners {
        udp: Vec::new(),
        tcp: Vec::new(),
        tls: Vec::new(),
        announcements: Vec::new(),
    };
    for addr in &config.udp {
        let socket = UdpSocket::bind(addr.as_str())
            .await
            .with_context(|| format!("cannot listen on {addr} (sip-udp)"))?;
        let local = socket.local_addr()?;
        widen_receive_buffer(&socket, config.udp_receive_buffer_bytes);
        out.announcements
            .push(format!("palaver: listening sip-udp {local}"));
        out.udp.push(socket);
    }
    for (addrs, kind, tls) in [
        (&config.tcp, "sip-tcp", false),
        (&config.tls, "sip-tls", true),
    ] {
        for addr in addrs {
            let listener = TcpListener::bind(addr.as_str())
                .await
                .with_context(|| format!("cannot listen on {addr} ({kind})"))?;
            let local = listener.local_addr()?;
            out.announcements
                .push(format!("palaver: listening {kind} {local}"));
            if tls {
                out.tls.push(listener);
            } else {
                out.tcp.push(listener);
            }
        }
    }
    Ok(out)
}

impl SipService {
    /// The service for `ctx`, sharing the XMPP router for invitations.
    pub fn new(ctx: Arc<Context>, xmpp: Arc<XmppService>, secret: &[u8]) -> Arc<SipService> {
        let config = ctx.config.sip.clone();
        let domain = ctx.config.domain.clone();
        let room_domain = ctx.config.muc_domain();
        let key: [u8; 32] = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(b"palaver sip digest nonce key\0");
            h.update(secret);
            h.finalize().into()
        };
        Arc::new(SipService {
            digest: Mutex::new(DigestServer::new(key, &domain, config.nonce_lifetime_secs)),
            server_transactions: Mutex::new(ServerTransactions::new(
                SERVER_TRANSACTIONS,
                palaver_dialects::sip::transaction::TIMEOUT,
            )),
            client_transactions: outbound::ClientTransactions::default(),
            bindings: Bindings::default(),
            limiter: ratelimit::RateLimiter::new(config.rate_per_sec, config.rate_burst),
            backoff: crate::xmpp::AuthBackoff::new(config.auth_failures_before_backoff),
            occupants: DashMap::new(),
            subscriptions: DashMap::new(),
            invitations: DashMap::new(),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(MIN_IDLE_TIMEOUT_SECS)),
            domain,
            room_domain,
            config,
            xmpp,
            udp_peers: udp_peers::UdpPeers::default(),
            conn_limit: crate::conn_limit::ConnLimiter::new(ctx.config.sip.max_connections_per_ip),
            xccos: xccos::Sessions::default(),
            pool: std::sync::OnceLock::new(),
            ctx,
        })
    }

    /// Joins the SIP front end to this node's pool (before [`SipService::start`]): it relays
    /// through it and answers its peers' relays.
    pub fn attach_pool(self: &Arc<Self>, pool: Arc<crate::pool::Membership>) {
        proxy::attach(self, &pool);
        let _ = self.pool.set(pool);
    }

    /// Starts every listener and the expiry sweeper; returns their tasks. Also makes XMPP
    /// invitations reach SIP users.
    pub fn start(self: &Arc<Self>, listeners: SipListeners) -> Vec<tokio::task::JoinHandle<()>> {
        let relay = invites::SipInvitationRelay(Arc::downgrade(self));
        let _ = self.ctx.invitation_relay.set(Arc::new(relay));
        let mut tasks = Vec::new();
        for socket in listeners.udp {
            tasks.push(tokio::spawn(transport::run_udp(self.clone(), socket)));
        }
        for listener in listeners.tcp {
            tasks.push(tokio::spawn(transport::run_stream(
                self.clone(),
                listener,
                false,
            )));
        }
        for listener in listeners.tls {
            tasks.push(tokio::spawn(transport::run_stream(
                self.clone(),
                listener,
                true,
            )));
        }
        tasks.push(tokio::spawn(sweeper(self.clone())));
        tasks
    }

    /// The room a request is addressed to: the user part of a Request-URI in the room
    /// domain (not yet validated as a room name).
    pub fn room_named_by(&self, req: &palaver_dialects::sip::SipMessage) -> Option<String> {
        let uri = req.request_uri()?;
        if !uri.host.eq_ignore_ascii_case(&self.room_domain) {
            return None;
        }
        uri.user_unescaped()
    }

    /// `sip:room@conference.<domain>`.
    pub fn room_uri(&self, room: &str) -> String {
        format!("sip:{room}@{}", self.room_domain)
    }

    /// A stream connection closed: its bindings go, and users left unreachable leave rooms.
    pub async fn on_connection_closed(&self, connection: u64) {
        conference::end_on_connection(self, connection).await;
        xccos::end_on_connection(self, connection).await;
        let (emptied, removed) = self.bindings.drop_connection(connection);
        self.forget_registrations(removed, emptied).await;
    }

    async fn forget_registrations(&self, removed: Vec<(String, String)>, emptied: Vec<String>) {
        let store = &self.ctx.store;
        for (user, contact) in removed {
            if let Some(user) = palaver_core::UserId::parse(&user) {
                if let Err(e) = store.remove_registration(&user, &contact).await {
                    tracing::warn!(error = %e, "cannot remove registration");
                }
            }
        }
        for user in emptied {
            occupant::leave_all(self, &user, "SIP registration ended").await;
        }
    }
}

/// Every few seconds: expire registrations (memory and store) and make users that are no
/// longer reachable leave their rooms.
async fn sweeper(svc: Arc<SipService>) {
    let mut shutdown = svc.ctx.shutdown.clone();
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
        let (emptied, removed) = svc.bindings.expire(std::time::Instant::now());
        for (user, contact) in &removed {
            tracing::info!(protocol = "sip", user = %user, contact = %contact, reason = "registration expired", "session closed");
        }
        if let Err(e) = svc
            .ctx
            .store
            .expire_registrations(crate::bootstrap::now_millis())
            .await
        {
            tracing::warn!(error = %e, "cannot expire registrations");
        }
        svc.forget_registrations(removed, emptied).await;
    }
}

#[cfg(test)]
mod receive_buffer_tests {
    use super::*;

    #[tokio::test]
    async fn udp_sockets_get_the_receive_buffer_asked_for_up_to_the_kernel_cap() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let default = socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .expect("read");
        widen_receive_buffer(&socket, 4 << 20);
        let got = socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .expect("read");
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .expect("Linux")
            .trim()
            .parse()
            .expect("number");
        // Linux doubles the asked size for its bookkeeping and caps it at rmem_max (doubled).
        assert!(got >= (4 << 20).min(cap), "got {got}, cap {cap}");
        assert!(
            got > default || cap * 2 <= default,
            "got {got}, default {default}"
        );
    }
}
