//! The pool channel on TCP 8011 (`[pool]`): the mutual-TLS listener, one dialer per member with
//! a higher node id, heartbeats every `heartbeat_ms` on every link, the liveness check that
//! marks silent members down, and the `palaver pool status` client. The wire protocol and the
//! membership rules live in `palaver_core::pool`; see `docs/pool-protocol.md`.
//!
//! [`Membership`] is also the engine's [`palaver_core::engine::PoolRouter`]: it says which
//! live active member homes a room and carries room frames to it; the engine forwards
//! commands, fans events out and re-homes rooms when the view changes. It also carries SIP
//! requests to users registered on other nodes ([`sip_relay`]).

pub mod admin;
pub mod config;
mod dialer;
mod link;
mod listener;
pub mod sip_relay;
mod state;
mod tls;

pub use config::PoolConfig;
pub use state::Membership;
pub use tls::load as load_tls;

use palaver_certs::MutualTls;
use palaver_core::engine::Engine;
use palaver_core::pool::{Frame, Heartbeat};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the pool tasks share.
pub struct Shared {
    cfg: Arc<PoolConfig>,
    tls: MutualTls,
    membership: Arc<Membership>,
    engine: Engine,
}

/// A running pool node; dropping it stops every pool task.
pub struct Pool {
    /// What this node believes about the members.
    pub membership: Arc<Membership>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds the 8011 listener; returns it with the `palaver: listening pool ADDR` line.
pub async fn bind(cfg: &PoolConfig) -> anyhow::Result<(TcpListener, String)> {
    use anyhow::Context as _;
    let listener = TcpListener::bind(cfg.listen.as_str())
        .await
        .with_context(|| format!("cannot listen on {} (pool)", cfg.listen))?;
    let local = listener
        .local_addr()
        .context("cannot read the address bound for the pool")?;
    Ok((listener, format!("palaver: listening pool {local}")))
}

/// Starts the listener, the dialers and the heartbeat/liveness ticker, and joins `engine` to
/// the pool (rooms homed elsewhere are forwarded; view changes re-home rooms).
/// While this node drains, `redirect` carries where its XMPP clients should go.
pub fn start(
    cfg: PoolConfig,
    tls: MutualTls,
    listener: TcpListener,
    engine: Engine,
    redirect: tokio::sync::watch::Sender<Option<String>>,
) -> Pool {
    let incarnation = rand::random::<u64>().max(1);
    let cfg = Arc::new(cfg);
    let membership = Membership::new(cfg.clone(), incarnation, redirect);
    let notify = engine.clone();
    membership.on_change(Box::new(move || notify.pool_view_changed()));
    engine.attach_pool(membership.clone());
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        tls,
        membership: membership.clone(),
        engine,
    });
    let mut tasks = vec![tokio::spawn(listener::run(listener, shared.clone()))];
    for m in cfg.members.iter().filter(|m| m.id > cfg.node_id) {
        let task = dialer::run(m.id.clone(), m.address.clone(), shared.clone());
        tasks.push(tokio::spawn(task));
    }
    tasks.push(tokio::spawn(tick(shared)));
    tracing::info!(
        node = %cfg.node_id,
        pool = %cfg.pool_id,
        members = cfg.members.len(),
        "pool started"
    );
    Pool { membership, tasks }
}

/// Sends heartbeats every `heartbeat_ms` and checks liveness several times per interval, so a
/// silent member is declared down at most one check period after `dead_after_ms`.
async fn tick(shared: Arc<Shared>) {
    let heartbeat = Duration::from_millis(shared.cfg.heartbeat_ms);
    let check = (heartbeat / 4).clamp(Duration::from_millis(25), Duration::from_millis(250));
    let mut beat = tokio::time::interval(heartbeat);
    let mut checker = tokio::time::interval(check);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    checker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = beat.tick() => {
                seq += 1;
                let (users, rooms) = shared.membership.own_load();
                let frame = Frame::Heartbeat(Heartbeat {
                    node: shared.cfg.node_id.clone(),
                    incarnation: shared.membership.incarnation,
                    seq,
                    view: shared.membership.summary(),
                    users,
                    rooms,
                    draining: shared.membership.is_draining(),
                });
                shared.membership.broadcast(&frame);
            }
            _ = checker.tick() => shared.membership.check(tokio::time::Instant::now().into_std()),
        }
    }
}
