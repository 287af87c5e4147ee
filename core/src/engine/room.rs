//! The task that owns one room: its state (record, affiliations, occupants, recent history,
//! next seq), the command loop, commit pipelining (a message is broadcast only after the store
//! committed it, while later commands keep flowing), and fan-out to occupants' sinks.

use super::commands::{ClientId, RoomCommand, RoomError, RoomInfo, RoomReply};
use super::commit::CommitResult;
use super::events::{DeliveryFlags, RoomEvent};
use super::handle::{Engine, Inner};
use super::occupants::Occupants;
use super::watchers::Watchers;
use crate::model::{Affiliation, Category, Millis, Role, RoomRecord, StoredMessage, UserId, Whois};
use futures::stream::{FuturesOrdered, StreamExt};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;

/// How a room task starts.
pub(super) enum RoomSeed {
    /// Loaded from the store.
    Existing(RoomRecord),
    /// Created just now by a join (its first self-presence carries status 201).
    Created(RoomRecord),
}

type PendingCommit = Pin<
    Box<
        dyn Future<
                Output = (
                    CommitResult,
                    Arc<StoredMessage>,
                    RoomReply<Arc<StoredMessage>>,
                ),
            > + Send,
    >,
>;

/// State of one loaded room.
pub(super) struct Room {
    pub(super) engine: Arc<Inner>,
    pub(super) name: Arc<str>,
    pub(super) record: RoomRecord,
    pub(super) category: Option<Category>,
    pub(super) affiliations: HashMap<UserId, Affiliation>,
    pub(super) occupants: Occupants,
    /// Non-occupant observers of the roster (keep the room loaded while there are any).
    pub(super) watchers: Watchers,
    pub(super) recent: VecDeque<Arc<StoredMessage>>,
    pub(super) next_seq: i64,
    /// Time stamp of the newest message: a post is never stamped earlier, so the archive's seq
    /// and time orders agree (the store turns time filters into seq bounds) even when the
    /// clock steps back.
    pub(super) last_ts: Millis,
    /// Set when the room was created by a join and that creator has not entered yet.
    pub(super) just_created: bool,
    /// A commit failed on a duplicate seq: another node wrote this room since it was loaded
    /// (a pool home that was handing over). The next post reloads the sequence first.
    pub(super) resync: bool,
    /// The room is gone (destroyed / emptied temporary room): stop the task.
    pub(super) closed: bool,
    pending: FuturesOrdered<PendingCommit>,
    /// Clients whose sinks failed during a broadcast; removed after it.
    pub(super) dead: Vec<ClientId>,
}

/// Loads a room's state and spawns its task.
pub(super) async fn spawn(
    engine: Arc<Inner>,
    seed: RoomSeed,
) -> Result<mpsc::Sender<RoomCommand>, RoomError> {
    let (record, just_created) = match seed {
        RoomSeed::Existing(r) => (r, false),
        RoomSeed::Created(r) => (r, true),
    };
    let store = engine.store.clone();
    let internal = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "loading room state failed");
        RoomError::Internal
    };
    let affiliations = store
        .affiliations(record.id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|a| (a.user, a.affiliation))
        .collect();
    let category = match record.category {
        Some(id) => store.get_category(id).await.map_err(internal)?,
        None => None,
    };
    let last_seq = store.last_seq(record.id).await.map_err(internal)?;
    let query = crate::model::HistoryQuery {
        limit: engine.config.max_history,
        from_end: true,
        ..Default::default()
    };
    let recent: VecDeque<Arc<StoredMessage>> = store
        .history(record.id, &query)
        .await
        .map_err(internal)?
        .into_iter()
        .map(Arc::new)
        .collect();
    let last_ts = recent.back().map_or(0, |m| m.ts);
    let (tx, rx) = mpsc::channel(engine.config.room_queue.max(16));
    let room = Room {
        name: Arc::from(record.name.as_str()),
        engine,
        record,
        category,
        affiliations,
        occupants: Occupants::default(),
        watchers: Watchers::default(),
        recent,
        next_seq: last_seq + 1,
        last_ts,
        just_created,
        resync: false,
        closed: false,
        pending: FuturesOrdered::new(),
        dead: Vec::new(),
    };
    tokio::spawn(room.run(rx, tx.clone()));
    metrics::gauge!("palaver_rooms_loaded").increment(1.0);
    Ok(tx)
}

impl Room {
    async fn run(mut self, mut rx: mpsc::Receiver<RoomCommand>, me: mpsc::Sender<RoomCommand>) {
        loop {
            tokio::select! {
                biased;
                Some((result, message, reply)) = self.pending.next(), if !self.pending.is_empty() => {
                    self.committed(result, message, reply);
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd).await,
                    None => break,
                },
            }
            if !self.dead.is_empty() {
                self.reap_dead().await;
            }
            if self.closed {
                break;
            }
        }
        // Finish what was accepted before stopping.
        while let Some((result, message, reply)) = self.pending.next().await {
            self.committed(result, message, reply);
        }
        Engine::forget_room(&self.engine, &self.name, &me);
        rx.close();
        while let Ok(cmd) = rx.try_recv() {
            cmd.fail(RoomError::ItemNotFound);
        }
        metrics::gauge!("palaver_rooms_loaded").decrement(1.0);
    }

    async fn handle(&mut self, cmd: RoomCommand) {
        match cmd {
            RoomCommand::Join { req, reply } => {
                let r = self.join(req).await;
                let _ = reply.send(r);
            }
            RoomCommand::Leave { client, status } => self.leave(client, status).await,
            RoomCommand::Post {
                client,
                body,
                extra,
                origin_id,
                reply,
            } => self.post(client, body, extra, origin_id, reply).await,
            RoomCommand::ChangeNick {
                client,
                nick,
                reply,
            } => {
                let r = self.change_nick(client, nick);
                let _ = reply.send(r);
            }
            RoomCommand::SetSubject {
                client,
                subject,
                reply,
            } => {
                let r = self.set_subject(client, subject).await;
                let _ = reply.send(r);
            }
            RoomCommand::Private {
                client,
                to_nick,
                body,
                extra,
                origin_id,
                reply,
            } => {
                let r = self.private(client, &to_nick, body, extra, origin_id);
                let _ = reply.send(r);
            }
            RoomCommand::SetRole {
                client,
                nick,
                role,
                reason,
                reply,
            } => {
                let r = self.set_role(client, &nick, role, reason);
                let _ = reply.send(r);
            }
            RoomCommand::SetAffiliation {
                client,
                actor_user,
                user,
                affiliation,
                reason,
                reply,
            } => {
                let r = self
                    .set_affiliation(client, &actor_user, &user, affiliation, reason)
                    .await;
                let _ = reply.send(r);
            }
            RoomCommand::GetAffiliations {
                actor_user,
                affiliation,
                reply,
            } => {
                let _ = reply.send(self.get_affiliations(&actor_user, affiliation));
            }
            RoomCommand::GetRoles {
                actor_user,
                role,
                reply,
            } => {
                let _ = reply.send(self.get_roles(&actor_user, role));
            }
            RoomCommand::Occupants { actor_user, reply } => {
                let _ = reply.send(self.occupants_for(&actor_user));
            }
            RoomCommand::Watch {
                watcher,
                user,
                sink,
                reply,
            } => {
                let _ = reply.send(self.watch(watcher, &user, sink));
            }
            RoomCommand::Unwatch { watcher } => self.unwatch(watcher).await,
            RoomCommand::GetConfig { actor_user, reply } => {
                let r = if self.affiliation_of(&actor_user) == Affiliation::Owner {
                    Ok(self.record.config.clone())
                } else {
                    Err(RoomError::Forbidden)
                };
                let _ = reply.send(r);
            }
            RoomCommand::SetConfig {
                actor_user,
                config,
                reply,
            } => {
                let r = self.set_config(&actor_user, config).await;
                let _ = reply.send(r);
            }
            RoomCommand::Destroy {
                actor_user,
                reason,
                alternate,
                reply,
            } => {
                let r = self.destroy(&actor_user, reason, alternate).await;
                let _ = reply.send(r);
            }
            RoomCommand::Invite {
                client,
                invitee,
                reply,
            } => {
                let r = self.invite(client, &invitee).await;
                let _ = reply.send(r);
            }
            RoomCommand::QueryArchive {
                actor_user,
                query,
                after_id,
                before_id,
                reply,
            } => self.query_archive(&actor_user, query, after_id, before_id, reply),
            RoomCommand::Info { reply } => {
                let _ = reply.send(Ok(self.info()));
            }
            RoomCommand::IsOccupant {
                client,
                nick,
                reply,
            } => {
                let _ = reply.send(Ok(self.occupants.nick_of(client) == Some(nick.as_str())));
            }
            RoomCommand::Shutdown { reply } => {
                self.shutdown().await;
                let _ = reply.send(());
            }
            RoomCommand::Handover { reply } => {
                let present = self.handover().await;
                let _ = reply.send(present);
            }
            RoomCommand::DropOrigin { origin } => self.drop_origin(origin).await,
        }
    }

    /// Takes the sequence and the recent history from the store again, after posts that are
    /// still in flight have finished (their seqs were numbered from the stale sequence).
    async fn reload_sequence(&mut self) {
        while let Some((result, message, reply)) = self.pending.next().await {
            self.committed(result, message, reply);
        }
        let store = self.engine.store.clone();
        let last = match store.last_seq(self.record.id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(room = %self.name, error = %e, "reloading the sequence failed");
                return;
            }
        };
        let query = crate::model::HistoryQuery {
            limit: self.engine.config.max_history,
            from_end: true,
            ..Default::default()
        };
        if let Ok(rows) = store.history(self.record.id, &query).await {
            self.recent = rows.into_iter().map(Arc::new).collect();
            self.last_ts = self
                .recent
                .back()
                .map_or(self.last_ts, |m| m.ts.max(self.last_ts));
        }
        self.next_seq = self.next_seq.max(last + 1);
        self.resync = false;
    }

    /// Stops homing this room: pending commits finish, nobody is told, and the presences of
    /// everyone who was in are returned.
    async fn handover(&mut self) -> Vec<super::events::OccupantPresence> {
        while let Some((result, message, reply)) = self.pending.next().await {
            self.committed(result, message, reply);
        }
        self.watchers.clear();
        let present = self
            .occupants
            .iter()
            .map(|o| {
                o.presence(
                    super::events::PresenceKind::Available,
                    super::events::StatusCodes::empty(),
                )
            })
            .collect();
        let n = self.occupants.len();
        for nick in self.occupants.nicks() {
            self.occupants.remove_nick(&nick);
        }
        metrics::gauge!("palaver_occupants").decrement(n as f64);
        self.closed = true;
        present
    }

    /// The sessions and watchers of a node that left the pool leave the room.
    async fn drop_origin(&mut self, origin: u16) {
        let gone: Vec<ClientId> = self
            .occupants
            .iter()
            .flat_map(|o| o.sessions.iter().map(|s| s.client))
            .filter(|c| super::commands::client_origin(*c) == origin)
            .collect();
        self.watchers
            .retain(|w| super::commands::client_origin(w) != origin);
        for client in gone {
            self.leave(client, None).await;
        }
    }

    pub(super) fn info(&self) -> RoomInfo {
        RoomInfo {
            name: self.record.name.clone(),
            config: self.record.config.clone(),
            subject: self.record.subject.clone(),
            occupants: self.occupants.len() as u32,
            locked: self.record.locked,
            category: self.record.category,
        }
    }

    pub(super) fn affiliation_of(&self, user: &UserId) -> Affiliation {
        self.affiliations
            .get(user)
            .copied()
            .unwrap_or(Affiliation::None)
    }

    /// Numbers the message, hands it to the commit queue and broadcasts it once durable.
    async fn post(
        &mut self,
        client: ClientId,
        body: String,
        extra: Option<String>,
        origin_id: String,
        reply: RoomReply<Arc<StoredMessage>>,
    ) {
        if self.resync {
            self.reload_sequence().await;
        }
        let Some(occ) = self.occupants.by_client(client) else {
            let _ = reply.send(Err(RoomError::NotAcceptable));
            return;
        };
        if occ.role < Role::Participant
            || (self.record.config.moderated && occ.role == Role::Visitor)
        {
            let _ = reply.send(Err(RoomError::Forbidden));
            return;
        }
        let message = Arc::new(StoredMessage {
            room_id: self.record.id,
            seq: self.next_seq,
            stanza_id: uuid::Uuid::new_v4().simple().to_string(),
            origin_id,
            sender: occ.user.clone(),
            nick: occ.nick.clone(),
            occupant_id: occ.occupant_id.clone(),
            body,
            extra,
            ts: super::handle::now_millis().max(self.last_ts),
        });
        self.next_seq += 1;
        self.last_ts = message.ts;
        let audit =
            self.engine.compliance.get().map(|_| {
                super::compliance_map::message_event(&self.name, &message, occ.protocol())
            });
        let done = self.engine.commit.submit((*message).clone(), audit).await;
        self.pending.push_back(Box::pin(async move {
            let result = match done.await {
                Ok(r) => r,
                Err(_) => Err(Arc::new(crate::store::StoreError::Conflict(
                    "commit writer gone".into(),
                ))),
            };
            (result, message, reply)
        }));
    }

    fn committed(
        &mut self,
        result: CommitResult,
        message: Arc<StoredMessage>,
        reply: RoomReply<Arc<StoredMessage>>,
    ) {
        if let Err(e) = &result {
            if matches!(**e, crate::store::StoreError::Conflict(_)) {
                tracing::warn!(room = %self.name, seq = message.seq, "seq already taken: another node wrote this room; reloading the sequence");
                self.resync = true;
            }
            let _ = reply.send(Err(RoomError::Internal));
            return;
        }
        metrics::counter!("palaver_messages_total").increment(1);
        let cap = self.engine.config.max_history as usize;
        if cap > 0 {
            if self.recent.len() >= cap {
                self.recent.pop_front();
            }
            self.recent.push_back(message.clone());
        }
        let event = RoomEvent::new(
            self.name.clone(),
            super::events::RoomEventKind::Message {
                message: message.clone(),
                history: false,
            },
        );
        self.broadcast(&event, None);
        let _ = reply.send(Ok(message));
    }

    /// Sends `event` to every session of every occupant, and to the watchers when it is a
    /// presence or subject. `about` names the occupant the event concerns (its sessions get
    /// `is_self`). Sessions whose sinks fail are removed afterwards, watchers at once.
    pub(super) fn broadcast(&mut self, event: &Arc<RoomEvent>, about: Option<&str>) {
        if let Some(sink) = self.engine.compliance.get() {
            let who = |nick: &str| {
                self.occupants
                    .get(nick)
                    .map(|o| (o.user.as_str().to_string(), o.protocol()))
            };
            if let Some(e) = super::compliance_map::to_compliance(event, who) {
                sink.record(e);
            }
        }
        let anyone_sees = self.record.config.whois == Whois::Anyone;
        for occ in self.occupants.iter() {
            let flags = DeliveryFlags {
                is_self: about == Some(occ.nick.as_str()),
                sees_real_address: anyone_sees || occ.role == Role::Moderator,
            };
            for s in &occ.sessions {
                if s.sink.deliver(event, flags).is_err() {
                    self.dead.push(s.client);
                }
            }
        }
        metrics::counter!("palaver_deliveries_total").increment(self.occupants.len() as u64);
        self.tell_watchers(event);
    }

    /// Sends one event to the sessions of a single occupant.
    pub(super) fn send_to(&mut self, nick: &str, event: &Arc<RoomEvent>, flags: DeliveryFlags) {
        if let Some(occ) = self.occupants.get(nick) {
            for s in &occ.sessions {
                if s.sink.deliver(event, flags).is_err() {
                    self.dead.push(s.client);
                }
            }
        }
    }

    /// Removes sessions whose sinks failed (slow or gone), as if they had left.
    pub(super) async fn reap_dead(&mut self) {
        while let Some(client) = self.dead.pop() {
            tracing::debug!(room = %self.name, client, "dropping occupant with failed sink");
            self.leave(client, None).await;
        }
    }

    /// Server shutdown: everyone gets unavailable presence with status 332; watchers are
    /// dropped without a word.
    async fn shutdown(&mut self) {
        self.watchers.clear();
        while let Some((result, message, reply)) = self.pending.next().await {
            self.committed(result, message, reply);
        }
        self.shutdown_occupants(super::events::StatusCodes::SHUTDOWN);
        self.closed = true;
    }
}
