//! Rooms across a pool. Every room has one home node (the gateway's [`PoolRouter`] says which,
//! by rendezvous hashing over the live active members); the home runs the room's task. On
//! other nodes [`Engine::send`] forwards a session's command to the home over 8011
//! (`RoomRequest`, answered by `RoomReply`), and the home sends the room's events back once
//! per event and node (`RoomEvent` with the list of recipients there).
//!
//! Each node also remembers, for its own sessions, which rooms they are in ([`tracked`]): when
//! a room's home moves (a node died, joined or lost the majority), the old home hands the room
//! over without a word, each node shows its sessions the occupants who will not come back and
//! joins its sessions again at the new home (without history), and rooms drop the sessions of
//! a dead node. Replies that never come are answered "service unavailable" after
//! [`REPLY_TIMEOUT`].

mod outbox;
mod tracked;
pub(crate) mod wire;

use super::commands::{ClientId, RoomCommand, RoomError};
use super::events::{DeliveryFlags, RoomEvent, RoomEventKind};
use super::handle::{Engine, Inner};
use crate::pool::Frame;
use dashmap::DashMap;
use outbox::Outbox;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use wire::{from_bytes, to_bytes, ReplyFn, WireCommand, WireEvent, WireResult};

/// How long a forwarded command may wait for the home's answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a room may take to hand itself over (finish its pending commits).
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a session's command waits for its moving room to take it back.
const MOVE_WAIT: Duration = Duration::from_secs(8);
/// How often a waiting command looks again.
const MOVE_POLL: Duration = Duration::from_millis(20);
/// Messages per store read when catching up after a move or a lost link.
const MISSED_PAGE: u32 = 500;
/// Most store reads per room when catching up (older ones stay readable with MAM).
const MISSED_PAGES: usize = 20;

/// Where a room lives right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node is its home (or there is no pool).
    Local,
    /// Another live active node is.
    Remote(Arc<str>),
    /// No node may home it now (this node does not see a majority of the pool).
    Unavailable,
}

/// A live peer as [`PoolRouter::live_peers`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: Arc<str>,
    pub origin: u16,
    pub incarnation: u64,
    /// The id of the current link with it (0: none right now). A new non-zero id after
    /// another means the link was lost and made again: frames may have been lost.
    pub link: u64,
}

/// What the engine needs from the pool's link layer (the gateway implements it).
pub trait PoolRouter: Send + Sync + 'static {
    /// Where `room` (lower-case local name) is homed in this node's current view.
    fn route(&self, room: &str) -> Route;
    /// Queues `frame` for `node`; false when there is no live link to it or its queue is full.
    fn send(&self, node: &str, frame: Frame) -> bool;
    /// The peers this node sees live: id, origin number (see
    /// [`super::commands::client_origin`]) and incarnation (a restarted peer has a new one, and
    /// its old sessions are gone).
    fn live_peers(&self) -> Vec<Peer>;
}

struct Pending {
    node: Arc<str>,
    since: Instant,
    reply: ReplyFn,
}

/// This node's share of the pool's rooms.
pub(crate) struct Remote {
    router: Arc<dyn PoolRouter>,
    next_id: AtomicU64,
    pending: DashMap<u64, Pending>,
    outboxes: DashMap<Arc<str>, Outbox>,
    rooms: tracked::Rooms,
    live: Mutex<Vec<Peer>>,
    rehoming: tokio::sync::Mutex<()>,
    changed: tokio::sync::Notify,
}

impl Engine {
    /// Joins this engine to a pool: from now on commands for rooms homed elsewhere are
    /// forwarded through `router`. Call once, before serving clients (later calls are ignored).
    pub fn attach_pool(&self, router: Arc<dyn PoolRouter>) {
        let remote = Arc::new(Remote {
            live: Mutex::new(router.live_peers()),
            router,
            next_id: AtomicU64::new(1),
            pending: DashMap::new(),
            outboxes: DashMap::new(),
            rooms: tracked::Rooms::default(),
            rehoming: tokio::sync::Mutex::new(()),
            changed: tokio::sync::Notify::new(),
        });
        if self.inner.pool.set(remote.clone()).is_err() {
            return;
        }
        tokio::spawn(background(
            Arc::downgrade(&self.inner),
            Arc::downgrade(&remote),
        ));
    }

    /// The pool's view changed (a member came, went or changed role): rooms are re-homed in
    /// the background.
    pub fn pool_view_changed(&self) {
        if let Some(remote) = self.inner.pool.get() {
            remote.changed.notify_one();
        }
    }

    /// Handles a room frame (request, reply or event) that peer `from` sent. Requests are
    /// queued to their rooms in arrival order before this returns.
    pub async fn pool_frame(&self, from: &str, frame: Frame) {
        let Some(remote) = self.inner.pool.get() else {
            return;
        };
        match frame {
            Frame::RoomRequest { id, room, body } => {
                remote.on_request(self, from, id, room, &body).await
            }
            Frame::RoomReply { id, body } => remote.on_reply(from, id, &body),
            Frame::RoomEvent { recipients, body } => remote.on_event(self, &recipients, &body),
            other => tracing::debug!(from, frame = ?other.frame_type(), "not a room frame"),
        }
    }

    /// Routes a command in a pool (see the module doc); `None` when there is no pool.
    pub(super) async fn pool_send(&self, name: &str, cmd: RoomCommand) -> Option<()> {
        let remote = self.inner.pool.get()?.clone();
        let mut route = remote.router.route(name);
        if let Some(client) = cmd.acting_client() {
            // Its room is moving: the new home does not know the session yet. Hold the
            // command (in order: the session waits for it) until it is back in, for a while.
            let deadline = tokio::time::Instant::now() + MOVE_WAIT;
            while remote.rooms.must_wait(name, client, &route) {
                if tokio::time::Instant::now() >= deadline {
                    cmd.fail(RoomError::ServiceUnavailable);
                    return Some(());
                }
                tokio::time::sleep(MOVE_POLL).await;
                route = remote.router.route(name);
            }
        }
        let cmd = tracked::note(&remote, name, &route, cmd);
        match route {
            Route::Local => self.send_local(name, cmd).await,
            Route::Remote(node) => remote.forward(node, name, cmd),
            Route::Unavailable => cmd.fail(RoomError::ServiceUnavailable),
        }
        Some(())
    }
}

/// How long a re-join waits for the new home's answer before it is retried in the background.
const REJOIN_WAIT: Duration = Duration::from_secs(5);
/// Re-joins refused because the new home's view lags are retried this often, this many times.
const REJOIN_RETRY: Duration = Duration::from_millis(300);
const REJOIN_ATTEMPTS: usize = 20;

/// Puts a session back in a moved room whose new home refused it at first, then catches the
/// room up; gives up when the session left meanwhile or after [`REJOIN_ATTEMPTS`].
async fn rejoin_later(engine: Engine, room: Arc<str>, client: ClientId, t: tracked::Tracked) {
    for _ in 0..REJOIN_ATTEMPTS {
        tokio::time::sleep(REJOIN_RETRY).await;
        let Some(remote) = engine.inner.pool.get().cloned() else {
            return;
        };
        if !remote.rooms.has(&room, client) {
            return;
        }
        let (cmd, rx) = t.clone().rejoin_command(client);
        engine.send(&room, cmd).await;
        match tokio::time::timeout(REJOIN_WAIT, rx).await {
            Ok(Ok(Ok(()))) => {
                remote.rooms.set_moving(&room, client, false);
                remote.deliver_missed(&engine, &room).await;
                return;
            }
            Ok(Ok(Err(RoomError::ServiceUnavailable))) | Err(_) => continue,
            Ok(Ok(Err(e))) => {
                tracing::info!(room = %room, client, error = %e, "session not taken back by the room's new home");
                remote.rooms.untrack(&room, client);
                return;
            }
            Ok(Err(_)) => return,
        }
    }
    tracing::warn!(room = %room, client, "gave up putting a session back in its moved room");
    if let Some(remote) = engine.inner.pool.get() {
        remote.rooms.untrack(&room, client);
    }
}

/// Re-homes after view changes and times out lost replies, while the engine lives.
async fn background(engine: Weak<Inner>, remote: Weak<Remote>) {
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Some(r) = remote.upgrade() else { return };
        let changed = tokio::select! {
            _ = r.changed.notified() => true,
            _ = sweep.tick() => false,
        };
        if changed {
            let Some(inner) = engine.upgrade() else {
                return;
            };
            r.rehome(&Engine { inner }).await;
        }
        r.sweep(Instant::now());
    }
}

impl Remote {
    fn forward(&self, node: Arc<str>, name: &str, cmd: RoomCommand) {
        let split = match wire::split(cmd) {
            Ok(s) => s,
            Err(local) => return local.fail(RoomError::Internal),
        };
        let body = match to_bytes(&split.wire) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, room = name, "encoding a room command failed");
                if let Some(reply) = split.reply {
                    reply(Err(RoomError::Internal));
                }
                return;
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Some(reply) = split.reply {
            let pending = Pending {
                node: node.clone(),
                since: Instant::now(),
                reply,
            };
            self.pending.insert(id, pending);
        }
        let frame = Frame::RoomRequest {
            id,
            room: name.to_string(),
            body,
        };
        metrics::counter!("palaver_pool_forwarded_total").increment(1);
        if !self.router.send(&node, frame) {
            self.answer(id, Err(RoomError::ServiceUnavailable));
        }
    }

    fn answer(&self, id: u64, result: WireResult) {
        if let Some((_, p)) = self.pending.remove(&id) {
            (p.reply)(result);
        }
    }

    fn outbox(&self, node: &str) -> Outbox {
        if let Some(o) = self.outboxes.get(node) {
            return o.clone();
        }
        let node: Arc<str> = Arc::from(node);
        self.outboxes
            .entry(node.clone())
            .or_insert_with(|| Outbox::start(node, self.router.clone()))
            .clone()
    }

    async fn on_request(&self, engine: &Engine, from: &str, id: u64, room: String, body: &[u8]) {
        let router = self.router.clone();
        let from_node: Arc<str> = Arc::from(from);
        let reply_to = move |r: WireResult| {
            let body = match to_bytes(&r) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "encoding a room reply failed");
                    return;
                }
            };
            router.send(&from_node, Frame::RoomReply { id, body });
        };
        let wire: WireCommand = match from_bytes(body) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(from, error = %e, "undecodable room request");
                return reply_to(Err(RoomError::BadRequest("undecodable request".into())));
            }
        };
        let name = room.to_lowercase();
        if self.router.route(&name) != Route::Local {
            // Views differ for a moment (a member just came or went): the sender retries.
            return reply_to(Err(RoomError::ServiceUnavailable));
        }
        let outbox = self.outbox(from);
        let (cmd, answer) = wire::rebuild(wire, |client| outbox.sink(client));
        engine.send_local(&name, cmd).await;
        if let Some(answer) = answer {
            tokio::spawn(async move { reply_to(answer.await) });
        }
    }

    fn on_reply(&self, from: &str, id: u64, body: &[u8]) {
        let from_there = self.pending.get(&id).is_some_and(|p| &*p.node == from);
        if !from_there {
            tracing::debug!(from, id, "room reply for no pending request");
            return;
        }
        let result = from_bytes::<WireResult>(body).unwrap_or_else(|e| {
            tracing::warn!(from, error = %e, "undecodable room reply");
            Err(RoomError::Internal)
        });
        self.answer(id, result);
    }

    fn on_event(&self, engine: &Engine, recipients: &[(u64, u8)], body: &[u8]) {
        let (room, kind): WireEvent = match from_bytes(body) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable room event");
                return;
            }
        };
        let event = RoomEvent::new(room, kind);
        let gone = self.rooms.deliver(&event, recipients);
        for client in gone {
            // A session that left (or failed) here while the home still counts it.
            let leave = RoomCommand::Leave {
                client,
                status: None,
            };
            let engine = engine.clone();
            let room = event.room.clone();
            tokio::spawn(async move { engine.send(&room, leave).await });
        }
    }

    /// Delivers to this node's sessions in `room` the messages after the last one they got
    /// live, read from the (shared) store: at most [`MISSED_PAGES`] pages.
    async fn deliver_missed(&self, engine: &Engine, room: &Arc<str>) {
        let Some((room_id, mut after)) = self.rooms.seen(room) else {
            return;
        };
        for _ in 0..MISSED_PAGES {
            let query = crate::model::HistoryQuery {
                after_seq: Some(after),
                limit: MISSED_PAGE,
                ..Default::default()
            };
            let page = match engine.store().history(room_id, &query).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(room = %room, error = %e, "reading missed messages failed");
                    return;
                }
            };
            let full = page.len() as u32 >= MISSED_PAGE;
            if !page.is_empty() {
                tracing::info!(room = %room, messages = page.len(), after, "delivering messages missed while the room moved or its link was down");
            }
            match self.rooms.deliver_missed(room, page) {
                Some(last) if full && last > after => after = last,
                _ => return,
            }
        }
    }

    /// Answers `service-unavailable` to every request pending towards `node` (gone, or its
    /// link was lost: the answers will not come).
    fn fail_pending_to(&self, node: &str) {
        let ids: Vec<u64> = self
            .pending
            .iter()
            .filter(|p| &*p.node == node)
            .map(|p| *p.key())
            .collect();
        for id in ids {
            self.answer(id, Err(RoomError::ServiceUnavailable));
        }
    }

    /// Answers requests that waited longer than [`REPLY_TIMEOUT`].
    fn sweep(&self, now: Instant) {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|p| now.duration_since(p.since) > REPLY_TIMEOUT)
            .map(|p| *p.key())
            .collect();
        for id in late {
            tracing::warn!(id, "room request unanswered: giving up");
            self.answer(id, Err(RoomError::ServiceUnavailable));
        }
    }

    /// Applies a new pool view (see the module doc).
    async fn rehome(&self, engine: &Engine) {
        let _one_at_a_time = self.rehoming.lock().await;
        let now = self.router.live_peers();
        // Gone: not live any more, or live again as a new incarnation (restarted).
        // Relinked: the same incarnation over a new link after another one.
        let (gone, relinked): (Vec<Peer>, Vec<Peer>) = {
            let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            let same = |a: &Peer, b: &Peer| a.id == b.id && a.incarnation == b.incarnation;
            let gone = live
                .iter()
                .filter(|p| !now.iter().any(|n| same(p, n)))
                .cloned()
                .collect();
            let relinked = now
                .iter()
                .filter(|n| {
                    live.iter()
                        .any(|p| same(p, n) && p.link != 0 && n.link != 0 && p.link != n.link)
                })
                .cloned()
                .collect();
            // Remember the last link of each peer across moments without one.
            let merged = now
                .into_iter()
                .map(|mut n| {
                    if n.link == 0 {
                        if let Some(p) = live.iter().find(|p| same(p, &n)) {
                            n.link = p.link;
                        }
                    }
                    n
                })
                .collect();
            *live = merged;
            (gone, relinked)
        };
        for peer in &relinked {
            tracing::warn!(member = %peer.id, "pool link with member made again: failing requests it may not have got, catching up on messages");
            self.fail_pending_to(&peer.id);
        }
        for peer in &gone {
            tracing::warn!(member = %peer.id, "pool member gone or restarted: failing its requests, dropping its sessions");
            self.outboxes.remove(&peer.id);
            self.fail_pending_to(&peer.id);
        }
        // Rooms this node no longer homes stop, silently, after their pending commits.
        let mut handed = std::collections::HashMap::new();
        for (name, tx) in engine.loaded_rooms() {
            if self.router.route(&name) == Route::Local {
                continue;
            }
            let (reply, rx) = tokio::sync::oneshot::channel();
            if tx.send(RoomCommand::Handover { reply }).await.is_ok() {
                match tokio::time::timeout(HANDOVER_TIMEOUT, rx).await {
                    Ok(Ok(present)) => {
                        handed.insert(name, present);
                    }
                    _ => tracing::error!(room = %name, "room did not hand over in time"),
                }
            }
        }
        if !handed.is_empty() {
            tracing::info!(rooms = handed.len(), "handed rooms over to their new homes");
        }
        // This node's sessions follow their rooms to the new homes, and get from the store
        // what the old home committed but could not send them.
        let mut resync: Vec<Arc<str>> = Vec::new();
        for moved in self.rooms.moved(&*self.router, &mut handed) {
            tracked::show_departures(&moved.name, &moved.departed, &moved.clients);
            // A room homed here from now on delivers straight to the sessions, past the
            // once-only guard of remote rooms: catch up before the sessions are back in it.
            let local = self.router.route(&moved.name) == Route::Local;
            if local {
                self.deliver_missed(engine, &moved.name).await;
            }
            let mut answers = Vec::with_capacity(moved.clients.len());
            for (client, t) in moved.clients {
                let (cmd, rx) = t.clone().rejoin_command(client);
                engine.send(&moved.name, cmd).await;
                answers.push((client, t, rx));
            }
            for (client, t, rx) in answers {
                let answer = tokio::time::timeout(REJOIN_WAIT, rx).await;
                match answer {
                    Ok(Ok(Ok(()))) => self.rooms.set_moving(&moved.name, client, false),
                    // The new home does not see the change yet: views agree within a heartbeat.
                    Ok(Ok(Err(RoomError::ServiceUnavailable))) | Err(_) => {
                        tokio::spawn(rejoin_later(engine.clone(), moved.name.clone(), client, t));
                    }
                    Ok(Ok(Err(e))) => {
                        tracing::info!(room = %moved.name, client, error = %e, "session not taken back by the room's new home");
                        self.rooms.untrack(&moved.name, client);
                    }
                    Ok(Err(_)) => {}
                }
            }
            if !local {
                resync.push(moved.name);
            }
        }
        // Rooms homed on a peer whose link was lost and made again: events sent meanwhile
        // are gone; the messages among them are in the store.
        for peer in &relinked {
            resync.extend(self.rooms.homed_on(&peer.id));
        }
        for room in resync {
            self.deliver_missed(engine, &room).await;
        }
        // Sessions of dead nodes leave the rooms homed here.
        if !gone.is_empty() {
            for (_, tx) in engine.loaded_rooms() {
                for peer in &gone {
                    let origin = peer.origin;
                    let _ = tx.send(RoomCommand::DropOrigin { origin }).await;
                }
            }
        }
    }
}

/// Whether an event ends a session's presence in the room (its own unavailable presence that
/// is not a nick change, or the room's destruction).
fn ends_presence(kind: &RoomEventKind, flags: DeliveryFlags) -> bool {
    use super::events::{PresenceKind, StatusCodes};
    match kind {
        RoomEventKind::Destroyed { .. } => true,
        RoomEventKind::Presence(p) => {
            flags.is_self
                && p.kind == PresenceKind::Unavailable
                && !p.codes.has(StatusCodes::NICK_CHANGED)
        }
        _ => false,
    }
}
