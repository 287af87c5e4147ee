//! [`Membership`]: what this node believes about every member of the pool — state (up, down,
//! draining reserved), last heartbeat, incarnation, effective role after standby promotion —
//! and the outbound queue of each live link. A member without a heartbeat for
//! `dead_after_ms` is down. Every state change is logged (`tracing`), counted and exported as
//! the gauge `palaver_pool_member_up{member}`, and the new view is sent to every peer.
//!
//! The lock is a `std` mutex held for a few field updates only, never across `.await`.

use super::config::PoolConfig;
use bytes::Bytes;
use palaver_core::pool::{
    effective_roles, has_majority, Frame, MemberInfo, MemberState, MembershipView, Role,
    StatusReport, ViewSummary,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// One member as this node sees it.
struct Entry {
    id: String,
    address: String,
    role: Role,
    effective: Role,
    is_self: bool,
    state: MemberState,
    last_seen: Option<Instant>,
    incarnation: u64,
    links: u32,
    last_error: String,
    users: u32,
    rooms: u32,
}

/// The sending half of a live link's bounded queue.
struct LinkSlot {
    id: u64,
    tx: mpsc::Sender<Frame>,
}

struct Inner {
    members: Vec<Entry>,
    view_version: u64,
    links: HashMap<String, LinkSlot>,
    next_link: u64,
}

/// Called after every change of this node's view (outside the lock).
pub type OnChange = Box<dyn Fn() + Send + Sync>;

/// Delivers a stanza a peer forwarded to a user's sessions on this node.
pub type OnUserStanza = Box<dyn Fn(&str, Option<&str>, bytes::Bytes) + Send + Sync>;

/// Shared membership state of the local node.
pub struct Membership {
    cfg: Arc<PoolConfig>,
    /// This process's incarnation (random, non-zero).
    pub incarnation: u64,
    inner: Mutex<Inner>,
    on_change: std::sync::OnceLock<OnChange>,
    load: std::sync::OnceLock<LoadFn>,
    /// Where this node's XMPP clients should go: `None` while it serves them; while it
    /// drains, `Some(host)` of another live member (`""` when none is known).
    redirect: tokio::sync::watch::Sender<Option<String>>,
    user_stanza: std::sync::OnceLock<OnUserStanza>,
    /// SIP requests relayed to and from peers.
    sip: super::sip_relay::SipRelays,
}

/// Counts the users connected to this node and the rooms it homes, for heartbeats and status.
pub type LoadFn = Box<dyn Fn() -> (u32, u32) + Send + Sync>;

impl Membership {
    /// Every member down except this node, which is up. While this node drains, `redirect`
    /// carries where its XMPP clients should go.
    pub fn new(
        cfg: Arc<PoolConfig>,
        incarnation: u64,
        redirect: tokio::sync::watch::Sender<Option<String>>,
    ) -> Arc<Membership> {
        let members = cfg
            .members
            .iter()
            .map(|m| {
                let is_self = m.id == cfg.node_id;
                Entry {
                    id: m.id.clone(),
                    address: m.address.clone(),
                    role: m.role.into(),
                    effective: m.role.into(),
                    is_self,
                    state: if is_self {
                        MemberState::Up
                    } else {
                        MemberState::Down
                    },
                    last_seen: None,
                    incarnation: if is_self { incarnation } else { 0 },
                    links: 0,
                    last_error: String::new(),
                    users: 0,
                    rooms: 0,
                }
            })
            .collect();
        let mut inner = Inner {
            members,
            view_version: 1,
            links: HashMap::new(),
            next_link: 1,
        };
        recompute_roles(&mut inner);
        for e in &inner.members {
            gauge_member(&e.id, e.state);
        }
        Arc::new(Membership {
            cfg,
            incarnation,
            inner: Mutex::new(inner),
            on_change: std::sync::OnceLock::new(),
            load: std::sync::OnceLock::new(),
            redirect,
            user_stanza: std::sync::OnceLock::new(),
            sip: super::sip_relay::SipRelays::default(),
        })
    }

    /// Installs the SIP front end's handler for requests peers relay here (once).
    pub fn on_sip_relay(&self, f: super::sip_relay::OnSipRelay) {
        self.sip.set_handler(f);
    }

    /// Sends a SIP request for `user` to every peer with a live link; their answers come on
    /// the returned call (`asked` of them).
    pub fn relay_sip(&self, user: &str, request: Bytes) -> super::sip_relay::SipRelayCall {
        let mut call = self.sip.start();
        let id = super::sip_relay::SipRelays::id_of(&call);
        let peers: Vec<String> = self.lock().links.keys().cloned().collect();
        for peer in peers {
            let frame = Frame::SipRelay {
                id,
                user: user.to_string(),
                request: request.clone(),
            };
            if self.send_to(&peer, frame) {
                call.asked += 1;
            }
        }
        call
    }

    /// A peer relayed a SIP request here: proxy it (on its own task) and answer.
    pub fn sip_relay_request(self: &Arc<Self>, peer: &str, id: u64, user: String, request: Bytes) {
        let run = self.sip.handle(user, request);
        let me = Arc::downgrade(self);
        let peer = peer.to_string();
        tokio::spawn(async move {
            let response = run.await;
            let Some(me) = me.upgrade() else { return };
            let frame = Frame::SipRelayReply {
                id,
                found: response.is_some(),
                response: response.unwrap_or_default(),
            };
            if !me.send_to(&peer, frame) {
                tracing::debug!(member = %peer, "cannot answer a SIP relay: no link");
            }
        });
    }

    /// A peer answered a SIP relay of ours.
    pub fn sip_relay_reply(&self, peer: &str, id: u64, found: bool, response: Bytes) {
        self.sip.on_reply(peer, id, found, response);
    }

    /// Installs where stanzas forwarded for users go (once; later calls are ignored).
    pub fn on_user_stanza(&self, f: OnUserStanza) {
        let _ = self.user_stanza.set(f);
    }

    /// A peer forwarded a stanza for `user`'s sessions here.
    pub fn user_stanza(&self, user: &str, resource: &str, stanza: bytes::Bytes) {
        if let Some(f) = self.user_stanza.get() {
            f(user, (!resource.is_empty()).then_some(resource), stanza);
        }
    }

    /// Whether this node is draining.
    pub fn is_draining(&self) -> bool {
        let inner = self.lock();
        inner
            .members
            .iter()
            .any(|e| e.is_self && e.state == MemberState::Draining)
    }

    /// Starts (`true`) or stops draining this node: rooms move (the view changes) and clients
    /// are redirected.
    pub fn set_draining(&self, draining: bool) {
        let want = if draining {
            MemberState::Draining
        } else {
            MemberState::Up
        };
        let changed = {
            let mut inner = self.lock();
            let changed = match inner.members.iter_mut().find(|e| e.is_self) {
                Some(e) if e.state != want => {
                    e.state = want;
                    true
                }
                _ => false,
            };
            if changed {
                tracing::warn!(state = want.as_str(), "this pool member changes state");
                gauge_member(&self.cfg.node_id, want);
                inner.view_version += 1;
            }
            changed
        };
        if changed {
            self.broadcast_view();
        }
    }

    /// A peer's draining flag, from its heartbeat.
    pub fn peer_draining(&self, peer: &str, draining: bool) {
        let changed = {
            let mut inner = self.lock();
            let Some(e) = inner
                .members
                .iter_mut()
                .find(|e| e.id == peer && !e.is_self && e.state.is_live())
            else {
                return;
            };
            let want = if draining {
                MemberState::Draining
            } else {
                MemberState::Up
            };
            let changed = e.state != want;
            if changed {
                e.state = want;
                state_changed(peer, want);
                inner.view_version += 1;
            }
            changed
        };
        if changed {
            self.broadcast_view();
        }
    }

    /// Where a draining node sends its XMPP clients: the `xmpp` address of the first member
    /// (by id) that is up and active in this node's view.
    fn redirect_target(&self) -> Option<String> {
        let inner = self.lock();
        let me = inner.members.iter().find(|e| e.is_self)?;
        if me.state != MemberState::Draining {
            return None;
        }
        let mut up: Vec<&Entry> = inner
            .members
            .iter()
            .filter(|e| !e.is_self && e.state == MemberState::Up)
            .collect();
        up.sort_by(|a, b| a.id.cmp(&b.id));
        let host = up
            .iter()
            .filter_map(|e| self.cfg.members.iter().find(|m| m.id == e.id))
            .map(|m| m.xmpp.clone())
            .find(|x| !x.is_empty())
            .unwrap_or_default();
        Some(host)
    }

    /// Installs the load counter (once; later calls are ignored).
    pub fn on_load(&self, f: LoadFn) {
        let _ = self.load.set(f);
    }

    /// This node's (users connected, rooms homed).
    pub fn own_load(&self) -> (u32, u32) {
        self.load.get().map_or((0, 0), |f| f())
    }

    /// A peer's load, from its heartbeat.
    pub fn peer_load(&self, peer: &str, users: u32, rooms: u32) {
        let mut inner = self.lock();
        if let Some(e) = inner
            .members
            .iter_mut()
            .find(|e| e.id == peer && !e.is_self)
        {
            e.users = users;
            e.rooms = rooms;
        }
    }

    /// Installs the view-change callback (once; later calls are ignored).
    pub fn on_change(&self, f: OnChange) {
        let _ = self.on_change.set(f);
    }

    /// Queues `frame` on the link to `peer`; false when there is none or its queue is full
    /// (then the link is dropped, as in [`Membership::broadcast`]).
    pub fn send_to(&self, peer: &str, frame: Frame) -> bool {
        let mut inner = self.lock();
        let Some(slot) = inner.links.get(peer) else {
            return false;
        };
        match slot.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(member = %peer, queue = self.cfg.peer_queue, "pool link queue full: dropping the link");
                metrics::counter!("palaver_pool_link_drops_total", "reason" => "queue-full")
                    .increment(1);
                inner.links.remove(peer);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                inner.links.remove(peer);
                false
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A frame (heartbeat, handshake) from `peer` arrived: it is alive.
    pub fn seen(&self, peer: &str, incarnation: u64) {
        let changed = {
            let mut inner = self.lock();
            let Some(e) = inner
                .members
                .iter_mut()
                .find(|e| e.id == peer && !e.is_self)
            else {
                return;
            };
            e.last_seen = Some(Instant::now());
            let restarted = e.incarnation != 0 && e.incarnation != incarnation;
            if restarted {
                tracing::warn!(member = peer, "pool member restarted (new incarnation)");
            }
            e.incarnation = incarnation;
            // A restart is a new member as far as rooms go: its old sessions are gone.
            let changed = e.state == MemberState::Down || restarted;
            if changed {
                e.state = MemberState::Up;
                e.last_error.clear();
                state_changed(peer, MemberState::Up);
                inner.view_version += 1;
                recompute_roles(&mut inner);
            }
            changed
        };
        if changed {
            self.broadcast_view();
        }
    }

    /// Marks members whose last heartbeat is older than `dead_after_ms` down.
    pub fn check(&self, now: Instant) {
        let dead_after = Duration::from_millis(self.cfg.dead_after_ms);
        let changed = {
            let mut inner = self.lock();
            let mut changed = false;
            for e in inner.members.iter_mut().filter(|e| !e.is_self) {
                let stale = e
                    .last_seen
                    .is_none_or(|t| now.duration_since(t) > dead_after);
                if e.state.is_live() && stale {
                    e.state = MemberState::Down;
                    state_changed(&e.id, MemberState::Down);
                    changed = true;
                }
            }
            if changed {
                inner.view_version += 1;
                recompute_roles(&mut inner);
            }
            changed
        };
        if changed {
            self.broadcast_view();
        }
    }

    /// Records why the last link attempt with `peer` failed; returns whether the reason is new
    /// (callers log new reasons loudly and repeats quietly).
    pub fn record_error(&self, peer: &str, reason: &str) -> bool {
        let mut inner = self.lock();
        match inner.members.iter_mut().find(|e| e.id == peer) {
            Some(e) if e.last_error != reason => {
                e.last_error = reason.to_string();
                true
            }
            _ => false,
        }
    }

    /// Installs the queue of a new link with `peer`, replacing (and so closing) an older one,
    /// and queues the current view on it. Returns the link id.
    pub fn register_link(&self, peer: &str, tx: mpsc::Sender<Frame>) -> u64 {
        let view = Frame::MembershipView(self.view());
        let _ = tx.try_send(view);
        let mut inner = self.lock();
        let id = inner.next_link;
        inner.next_link += 1;
        if let Some(e) = inner.members.iter_mut().find(|e| e.id == peer) {
            e.links = e.links.saturating_add(1);
        }
        if inner
            .links
            .insert(peer.to_string(), LinkSlot { id, tx })
            .is_some()
        {
            tracing::info!(member = peer, "pool link replaced by a newer one");
        }
        metrics::gauge!("palaver_pool_links").set(inner.links.len() as f64);
        drop(inner);
        // Not a change of the view, but the engine catches up on what a lost link lost.
        if let Some(f) = self.on_change.get() {
            f();
        }
        id
    }

    /// Forgets link `id` of `peer` (if it is still the current one).
    pub fn unregister_link(&self, peer: &str, id: u64) {
        let mut inner = self.lock();
        if inner.links.get(peer).is_some_and(|l| l.id == id) {
            inner.links.remove(peer);
        }
        metrics::gauge!("palaver_pool_links").set(inner.links.len() as f64);
    }

    /// Queues `frame` on every link. A link whose queue is full is dropped (its task ends and
    /// the dialer re-establishes it): memory stays bounded by `peer_queue` frames per peer.
    pub fn broadcast(&self, frame: &Frame) {
        let mut inner = self.lock();
        let mut dead = Vec::new();
        for (peer, slot) in &inner.links {
            match slot.tx.try_send(frame.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(member = %peer, queue = self.cfg.peer_queue, "pool link queue full: dropping the link");
                    metrics::counter!("palaver_pool_link_drops_total", "reason" => "queue-full")
                        .increment(1);
                    dead.push(peer.clone());
                }
                Err(mpsc::error::TrySendError::Closed(_)) => dead.push(peer.clone()),
            }
        }
        for peer in dead {
            inner.links.remove(&peer);
        }
    }

    fn broadcast_view(&self) {
        let view = Frame::MembershipView(self.view());
        self.broadcast(&view);
        let target = self.redirect_target();
        self.redirect.send_if_modified(|current| {
            let changed = *current != target;
            *current = target;
            changed
        });
        if let Some(f) = self.on_change.get() {
            f();
        }
    }

    /// The brief view carried by heartbeats.
    pub fn summary(&self) -> ViewSummary {
        let inner = self.lock();
        let live = inner.members.iter().filter(|e| e.state.is_live()).count();
        ViewSummary {
            version: inner.view_version,
            live: u16::try_from(live).unwrap_or(u16::MAX),
            majority: majority(&inner),
        }
    }

    /// The full view (for peers).
    pub fn view(&self) -> MembershipView {
        let inner = self.lock();
        MembershipView {
            node: self.cfg.node_id.clone(),
            version: inner.view_version,
            members: infos(&inner),
        }
    }

    /// The report of `palaver pool status`.
    pub fn report(&self) -> StatusReport {
        let (users, rooms) = self.own_load();
        let inner = self.lock();
        let mut members = infos(&inner);
        for m in members.iter_mut().filter(|m| m.id == self.cfg.node_id) {
            m.users = users;
            m.rooms = rooms;
        }
        StatusReport {
            node: self.cfg.node_id.clone(),
            pool: self.cfg.pool_id.clone(),
            majority: majority(&inner),
            members,
        }
    }
}

fn infos(inner: &Inner) -> Vec<MemberInfo> {
    let now = Instant::now();
    inner
        .members
        .iter()
        .map(|e| MemberInfo {
            id: e.id.clone(),
            address: e.address.clone(),
            role: e.role,
            effective: e.effective,
            state: e.state,
            last_seen_ms: if e.is_self {
                Some(0)
            } else {
                e.last_seen
                    .map(|t| u64::try_from(now.duration_since(t).as_millis()).unwrap_or(u64::MAX))
            },
            incarnation: e.incarnation,
            links: e.links,
            last_error: e.last_error.clone(),
            // A member that is down has nothing.
            users: if e.state.is_live() { e.users } else { 0 },
            rooms: if e.state.is_live() { e.rooms } else { 0 },
        })
        .collect()
}

/// Whether the live members seen in an effective active role form a majority of the
/// configured active members.
fn majority(inner: &Inner) -> bool {
    let configured = inner
        .members
        .iter()
        .filter(|e| e.role == Role::Active)
        .count();
    let live_active = inner
        .members
        .iter()
        .filter(|e| e.state.is_live() && e.effective == Role::Active)
        .count();
    has_majority(configured, live_active)
}

fn recompute_roles(inner: &mut Inner) {
    let input: Vec<(Role, bool)> = inner
        .members
        .iter()
        .map(|e| (e.role, e.state.is_live()))
        .collect();
    for (e, effective) in inner.members.iter_mut().zip(effective_roles(&input)) {
        if e.effective != effective {
            tracing::info!(
                member = %e.id,
                from = e.effective.as_str(),
                to = effective.as_str(),
                "pool member role changed"
            );
            e.effective = effective;
        }
    }
    let m = majority(inner);
    metrics::gauge!("palaver_pool_majority").set(if m { 1.0 } else { 0.0 });
    let live = inner.members.iter().filter(|e| e.state.is_live()).count();
    metrics::gauge!("palaver_pool_members_live").set(live as f64);
}

fn state_changed(member: &str, state: MemberState) {
    match state {
        MemberState::Down => tracing::warn!(member, state = state.as_str(), "pool member down"),
        _ => tracing::info!(member, state = state.as_str(), "pool member up"),
    }
    metrics::counter!(
        "palaver_pool_state_changes_total",
        "member" => member.to_string(),
        "state" => state.as_str()
    )
    .increment(1);
    gauge_member(member, state);
}

fn gauge_member(member: &str, state: MemberState) {
    let up = if state.is_live() { 1.0 } else { 0.0 };
    metrics::gauge!("palaver_pool_member_up", "member" => member.to_string()).set(up);
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

impl palaver_core::engine::PoolRouter for Membership {
    fn route(&self, room: &str) -> palaver_core::engine::Route {
        use palaver_core::engine::Route;
        let inner = self.lock();
        if !majority(&inner) {
            return Route::Unavailable;
        }
        let live = inner
            .members
            .iter()
            .filter(|e| e.state == MemberState::Up && e.effective == Role::Active)
            .map(|e| e.id.as_str());
        match palaver_core::pool::home(room, live) {
            Some(home) if home == self.cfg.node_id => Route::Local,
            Some(home) => Route::Remote(Arc::from(home)),
            None => Route::Unavailable,
        }
    }

    fn send(&self, node: &str, frame: Frame) -> bool {
        self.send_to(node, frame)
    }

    fn live_peers(&self) -> Vec<palaver_core::engine::Peer> {
        let inner = self.lock();
        inner
            .members
            .iter()
            .filter(|e| !e.is_self && e.state.is_live())
            .map(|e| palaver_core::engine::Peer {
                id: Arc::from(e.id.as_str()),
                origin: self.cfg.origin_of(&e.id),
                incarnation: e.incarnation,
                link: inner.links.get(&e.id).map_or(0, |l| l.id),
            })
            .collect()
    }
}

impl crate::xmpp::PeerDelivery for Membership {
    fn forward(&self, bare: &str, resource: Option<&str>, stanza: &bytes::Bytes) -> usize {
        let frame = Frame::UserStanza {
            user: bare.to_string(),
            resource: resource.unwrap_or_default().to_string(),
            stanza: stanza.clone(),
        };
        let links = self.lock().links.len();
        if links > 0 {
            self.broadcast(&frame);
        }
        links
    }
}
