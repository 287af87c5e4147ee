//! What a pool node remembers of its own sessions' rooms: for each room, where it was homed,
//! each local session in it (its join — nick, presence payload — or its watch, and its sink)
//! and, for rooms homed elsewhere, the occupants last announced (a mirror fed by the room's
//! presence events). This is what lets a node move its sessions to a room's new home and
//! show them who did not come back.

use super::wire::WireJoin;
use super::{ends_presence, Remote, Route};
use crate::engine::commands::{
    ClientId, ClientRef, HistoryRequest, JoinRequest, RoomCommand, RoomError,
};
use crate::engine::events::{
    DeliveryFlags, EventSink, OccupantPresence, PresenceKind, RoomEvent, RoomEventKind, SinkClosed,
    StatusCodes,
};
use crate::model::{Role, UserId};
use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Where a room was homed when this node last routed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Home {
    Local,
    Node(Arc<str>),
    Nowhere,
}

impl From<&Route> for Home {
    fn from(r: &Route) -> Home {
        match r {
            Route::Local => Home::Local,
            Route::Remote(n) => Home::Node(n.clone()),
            Route::Unavailable => Home::Nowhere,
        }
    }
}

#[derive(Clone)]
pub(super) enum What {
    Join(Box<WireJoin>),
    Watch(UserId),
}

/// One local session in a room.
#[derive(Clone)]
pub(super) struct Tracked {
    what: What,
    /// The session's own sink (never the tracking wrapper).
    sink: Arc<dyn EventSink>,
    /// The newest message seq this session got from a remote home (live, history or caught
    /// up from the store): it never gets one seq twice, nor an older one live.
    last_seq: Option<i64>,
    /// Its room moved and the new home has not taken it back yet: its commands are refused
    /// as temporarily unavailable instead of reaching a room that does not know it.
    moving: bool,
}

impl Tracked {
    fn nick(&self) -> Option<&str> {
        match &self.what {
            What::Join(j) => Some(&j.nick),
            What::Watch(_) => None,
        }
    }

    /// The command that puts this session back in the room at its new home: the same join
    /// without history (the session has it), or the same watch; and what it answers.
    pub(super) fn rejoin_command(
        self,
        client: ClientId,
    ) -> (
        RoomCommand,
        tokio::sync::oneshot::Receiver<Result<(), RoomError>>,
    ) {
        let (reply, rx) = tokio::sync::oneshot::channel::<Result<(), RoomError>>();
        let cmd = match self.what {
            What::Join(j) => RoomCommand::Join {
                req: JoinRequest {
                    client: ClientRef {
                        id: client,
                        user: j.client.user,
                        resource: j.client.resource,
                        protocol: j.client.protocol,
                        sink: self.sink,
                    },
                    nick: j.nick,
                    password: j.password,
                    history: HistoryRequest {
                        max_stanzas: Some(0),
                        ..Default::default()
                    },
                    payload: j.payload,
                    create: false,
                    instant: true,
                },
                reply,
            },
            What::Watch(user) => {
                let (wreply, wrx) = tokio::sync::oneshot::channel::<
                    Result<crate::engine::commands::RoomSnapshot, RoomError>,
                >();
                tokio::spawn(async move {
                    let result = match wrx.await {
                        Ok(r) => r.map(|_| ()),
                        Err(_) => Err(RoomError::Internal),
                    };
                    let _ = reply.send(result);
                });
                RoomCommand::Watch {
                    watcher: client,
                    user,
                    sink: self.sink,
                    reply: wreply,
                }
            }
        };
        (cmd, rx)
    }
}

/// A room as this node's sessions see it.
struct LocalRoom {
    home: Home,
    clients: HashMap<ClientId, Tracked>,
    /// Occupants last announced by a remote home, by nick.
    mirror: HashMap<String, OccupantPresence>,
    /// The room's store id and the seq of the newest message delivered here from a remote
    /// home (each session keeps its own mark, see `Tracked::last_seq`).
    seen: Option<(crate::model::RoomId, i64)>,
}

/// A room whose home moved, as [`Rooms::moved`] reports it.
pub(super) struct Moved {
    pub name: Arc<str>,
    /// The occupants its sessions knew, to be shown leaving.
    pub departed: Vec<OccupantPresence>,
    /// This node's sessions in it.
    pub clients: Vec<(ClientId, Tracked)>,
}

/// Every room with a session of this node in it.
#[derive(Default)]
pub(super) struct Rooms {
    map: DashMap<Arc<str>, LocalRoom>,
}

impl Rooms {
    /// Starts (or renews) tracking a session; true when it was not tracked before.
    /// The home of a room already tracked changes only with [`Rooms::moved`], which moves
    /// every session in it; a renewed session keeps its message mark and moving state.
    fn track(&self, room: &str, client: ClientId, mut t: Tracked, home: Home) -> bool {
        let mut entry = self
            .map
            .entry(Arc::from(room))
            .or_insert_with(|| LocalRoom {
                home,
                clients: HashMap::new(),
                mirror: HashMap::new(),
                seen: None,
            });
        match entry.clients.get(&client) {
            Some(old) => {
                t.last_seq = old.last_seq;
                t.moving = old.moving;
                entry.clients.insert(client, t);
                false
            }
            None => {
                entry.clients.insert(client, t);
                true
            }
        }
    }

    /// Stops tracking a session (it left, was put out, or a new home would not take it back).
    pub(super) fn untrack(&self, room: &str, client: ClientId) {
        if let Some(mut r) = self.map.get_mut(room) {
            r.clients.remove(&client);
        }
        self.map.remove_if(room, |_, r| r.clients.is_empty());
    }

    /// A nick change seen by a session of a locally homed room.
    fn renamed(&self, room: &str, client: ClientId, nick: &str) {
        if let Some(mut r) = self.map.get_mut(room) {
            if let Some(Tracked {
                what: What::Join(j),
                ..
            }) = r.clients.get_mut(&client)
            {
                j.nick = nick.to_string();
            }
        }
    }

    /// Delivers an event from a remote home to its recipients here, keeping the mirror and
    /// the sessions up to date; returns the recipients who are no longer here.
    pub(super) fn deliver(
        &self,
        event: &Arc<RoomEvent>,
        recipients: &[(u64, u8)],
    ) -> Vec<ClientId> {
        let mut gone = Vec::new();
        let Some(mut room) = self.map.get_mut(&*event.room) else {
            return recipients.iter().map(|(c, _)| *c).collect();
        };
        match &event.kind {
            RoomEventKind::Presence(p) => match p.kind {
                PresenceKind::Available => {
                    room.mirror.insert(p.nick.clone(), p.clone());
                }
                PresenceKind::Unavailable => {
                    room.mirror.remove(&p.nick);
                }
            },
            RoomEventKind::Message { message, .. } => {
                let newest = room.seen.map_or(message.seq, |(_, s)| s.max(message.seq));
                room.seen = Some((message.room_id, newest));
            }
            _ => {}
        }
        let seq = match &event.kind {
            RoomEventKind::Message { message, .. } => Some(message.seq),
            _ => None,
        };
        for &(client, bits) in recipients {
            let f = DeliveryFlags::from_bits(bits);
            let Some(t) = room.clients.get_mut(&client) else {
                gone.push(client);
                continue;
            };
            if let Some(seq) = seq {
                if t.last_seq.is_some_and(|last| seq <= last) {
                    // Already delivered from the store after a lost link or a move.
                    continue;
                }
                t.last_seq = Some(seq);
            }
            let failed = t.sink.deliver(event, f).is_err();
            if let (RoomEventKind::Presence(p), What::Join(j)) = (&event.kind, &mut t.what) {
                if f.is_self && p.codes.has(StatusCodes::NICK_CHANGED) {
                    if let Some(new) = &p.new_nick {
                        j.nick = new.clone();
                    }
                }
            }
            if failed || ends_presence(&event.kind, f) {
                room.clients.remove(&client);
                if failed {
                    gone.push(client);
                }
            }
        }
        let empty = room.clients.is_empty();
        drop(room);
        if empty {
            self.map
                .remove_if(&*event.room, |_, r| r.clients.is_empty());
        }
        gone
    }

    /// Whether `client` is still tracked in `room` (it has not left meanwhile).
    pub(super) fn has(&self, room: &str, client: ClientId) -> bool {
        self.map
            .get(room)
            .is_some_and(|r| r.clients.contains_key(&client))
    }

    /// The rooms with sessions here whose home is `node`.
    pub(super) fn homed_on(&self, node: &str) -> Vec<Arc<str>> {
        self.map
            .iter()
            .filter(|r| matches!(&r.home, Home::Node(n) if &**n == node))
            .map(|r| r.key().clone())
            .collect()
    }

    /// Rooms whose home is no longer the one their sessions were routed to: for each, its
    /// name, the occupants its sessions must see leave (the handed-over room's, or the
    /// mirror), and its sessions. The new home is recorded.
    pub(super) fn moved(
        &self,
        router: &dyn super::PoolRouter,
        handed: &mut HashMap<String, Vec<OccupantPresence>>,
    ) -> Vec<Moved> {
        let names: Vec<Arc<str>> = self.map.iter().map(|r| r.key().clone()).collect();
        let mut out = Vec::new();
        for name in names {
            let home = Home::from(&router.route(&name));
            let Some(mut room) = self.map.get_mut(&name) else {
                continue;
            };
            if room.home == home {
                continue;
            }
            let departed = match room.home {
                Home::Local => handed.remove(&*name).unwrap_or_default(),
                _ => room.mirror.drain().map(|(_, p)| p).collect(),
            };
            room.mirror.clear();
            room.home = home;
            for t in room.clients.values_mut() {
                t.moving = true;
            }
            let clients = room.clients.iter().map(|(c, t)| (*c, t.clone())).collect();
            out.push(Moved {
                name: name.clone(),
                departed,
                clients,
            });
        }
        out
    }
}

impl Rooms {
    /// Where the store can tell what a room's sessions here may have missed: the room's id
    /// and the oldest of their last seqs (`None`: no message seen here yet).
    pub(super) fn seen(&self, room: &str) -> Option<(crate::model::RoomId, i64)> {
        let r = self.map.get(room)?;
        let (id, newest) = r.seen?;
        let oldest = r
            .clients
            .values()
            .filter(|t| matches!(t.what, What::Join(_)))
            .map(|t| t.last_seq.unwrap_or(newest))
            .min()
            .unwrap_or(newest);
        Some((id, oldest))
    }

    /// Marks the sessions of `room` moving (their room's home changed) or back in.
    pub(super) fn set_moving(&self, room: &str, client: ClientId, moving: bool) {
        if let Some(mut r) = self.map.get_mut(room) {
            if let Some(t) = r.clients.get_mut(&client) {
                t.moving = moving;
            }
        }
    }

    /// Whether `client`'s commands for `room` must wait: its room is moving (the view changed
    /// and this node has not put it back in at the new home yet).
    pub(super) fn must_wait(&self, room: &str, client: ClientId, route: &Route) -> bool {
        self.map.get(room).is_some_and(|r| {
            r.clients.get(&client).is_some_and(|t| t.moving) || r.home != Home::from(route)
        })
    }

    /// Delivers messages fetched from the store (ascending seq) to the room's sessions here
    /// as live messages, skipping any already delivered; returns the newest seq delivered.
    pub(super) fn deliver_missed(
        &self,
        room: &Arc<str>,
        messages: Vec<crate::model::StoredMessage>,
    ) -> Option<i64> {
        let mut r = self.map.get_mut(&**room)?;
        let mut newest = None;
        for m in messages {
            let seq = m.seq;
            newest = Some(seq);
            if r.seen.is_none_or(|(_, s)| s < seq) {
                r.seen = Some((m.room_id, seq));
            }
            let event = RoomEvent::new(
                room.clone(),
                RoomEventKind::Message {
                    message: Arc::new(m),
                    history: false,
                },
            );
            for t in r.clients.values_mut() {
                let fresh = t.last_seq.is_none_or(|last| seq > last);
                if matches!(t.what, What::Join(_)) && fresh {
                    t.last_seq = Some(seq);
                    let _ = t.sink.deliver(&event, DeliveryFlags::default());
                }
            }
        }
        newest
    }
}

/// Shows each session of a moved room every occupant it knew leaving (but itself); those who
/// are still there are announced again when the session rejoins at the new home.
pub(super) fn show_departures(
    room: &Arc<str>,
    departed: &[OccupantPresence],
    clients: &[(ClientId, Tracked)],
) {
    let events: Vec<Arc<RoomEvent>> = departed
        .iter()
        .map(|p| {
            let mut gone = p.clone();
            gone.kind = PresenceKind::Unavailable;
            gone.role = Role::None;
            gone.codes = StatusCodes::empty();
            gone.new_nick = None;
            gone.payload = None;
            RoomEvent::new(room.clone(), RoomEventKind::Presence(gone))
        })
        .collect();
    for (_, t) in clients {
        let Some(own) = t.nick() else { continue };
        for ev in &events {
            if let RoomEventKind::Presence(p) = &ev.kind {
                if p.nick != own {
                    let _ = t.sink.deliver(ev, DeliveryFlags::default());
                }
            }
        }
    }
}

/// Records what `cmd` means for this node's sessions in `room` before it is routed; for a
/// join to a room homed here, wraps the session's sink so the node notices when the session
/// is put out of the room (kick, ban, destruction).
pub(super) fn note(
    remote: &Arc<Remote>,
    room: &str,
    route: &Route,
    cmd: RoomCommand,
) -> RoomCommand {
    let rooms = &remote.rooms;
    match cmd {
        RoomCommand::Join { mut req, reply } => {
            let client = req.client.id;
            let original = req.client.sink.clone();
            let join = WireJoin {
                client: super::wire::WireClient {
                    id: client,
                    user: req.client.user.clone(),
                    resource: req.client.resource.clone(),
                    protocol: req.client.protocol,
                },
                nick: req.nick.clone(),
                password: req.password.clone(),
                history: req.history.clone(),
                payload: req.payload.clone(),
                create: req.create,
                instant: req.instant,
            };
            let t = Tracked {
                what: What::Join(Box::new(join)),
                sink: original.clone(),
                last_seq: None,
                moving: false,
            };
            let fresh = rooms.track(room, client, t, Home::from(route));
            if *route == Route::Local {
                req.client.sink = Arc::new(TrackingSink {
                    inner: original,
                    room: Arc::from(room),
                    client,
                    remote: Arc::downgrade(remote),
                });
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            let weak = Arc::downgrade(remote);
            let name = room.to_string();
            tokio::spawn(async move {
                let result = rx.await.unwrap_or(Err(RoomError::Internal));
                if result.is_err() && fresh {
                    if let Some(r) = weak.upgrade() {
                        r.rooms.untrack(&name, client);
                    }
                }
                let _ = reply.send(result);
            });
            RoomCommand::Join { req, reply: tx }
        }
        RoomCommand::Watch {
            watcher,
            user,
            sink,
            reply,
        } => {
            let t = Tracked {
                what: What::Watch(user.clone()),
                sink: sink.clone(),
                last_seq: None,
                moving: false,
            };
            rooms.track(room, watcher, t, Home::from(route));
            RoomCommand::Watch {
                watcher,
                user,
                sink,
                reply,
            }
        }
        RoomCommand::Leave { client, .. } | RoomCommand::Unwatch { watcher: client } => {
            rooms.untrack(room, client);
            cmd
        }
        other => other,
    }
}

/// The sink a room homed on this node gets for a local session: delivers to the session and
/// stops tracking it when the room puts it out.
struct TrackingSink {
    inner: Arc<dyn EventSink>,
    room: Arc<str>,
    client: ClientId,
    remote: Weak<Remote>,
}

impl EventSink for TrackingSink {
    fn deliver(&self, event: &Arc<RoomEvent>, f: DeliveryFlags) -> Result<(), SinkClosed> {
        let result = self.inner.deliver(event, f);
        let renamed = match &event.kind {
            RoomEventKind::Presence(p) if f.is_self && p.codes.has(StatusCodes::NICK_CHANGED) => {
                p.new_nick.as_deref()
            }
            _ => None,
        };
        if result.is_err() || ends_presence(&event.kind, f) || renamed.is_some() {
            if let Some(remote) = self.remote.upgrade() {
                match renamed {
                    Some(nick) if result.is_ok() => {
                        remote.rooms.renamed(&self.room, self.client, nick)
                    }
                    _ => remote.rooms.untrack(&self.room, self.client),
                }
            }
        }
        result
    }
}
