//! `Engine`: the entry point sessions use. It finds (loading or creating) the task of a room and
//! hands it commands, lists rooms for disco and admin, and shuts every room down gracefully.

use super::commands::{RoomCommand, RoomError, RoomInfo, RoomReply};
use super::commit::CommitQueue;
use super::room::{self, RoomSeed};
use crate::model::{Affiliation, Category, RoomConfig, RoomRecord, StoredMessage, UserId};
use crate::store::{Store, StoreError};
use dashmap::DashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Engine settings (from the server config).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Users of these domains may create rooms (subject to the category's creators list).
    pub local_domains: Vec<String>,
    /// Category given to rooms created by clients (by name); none when absent.
    pub default_category: Option<String>,
    /// Secret mixed into XEP-0421 occupant ids so they don't reveal real addresses.
    pub occupant_id_secret: Vec<u8>,
    /// Commands queued per room before senders wait.
    pub room_queue: usize,
    /// Most messages in one store transaction.
    pub commit_batch: usize,
    /// Most messages a room keeps in memory for history on join.
    pub max_history: u32,
    /// Whether clients may create rooms by joining them.
    pub allow_client_room_creation: bool,
    /// History length (messages sent on join by default) of rooms clients create.
    pub default_history_length: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            local_domains: vec!["localhost".into()],
            default_category: None,
            occupant_id_secret: b"palaver".to_vec(),
            room_queue: 1024,
            commit_batch: 512,
            max_history: 200,
            allow_client_room_creation: true,
            default_history_length: 20,
        }
    }
}

/// Errors of engine-level operations (not of one room's rules).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Room(#[from] RoomError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Cheap to clone; share one per server.
#[derive(Clone)]
pub struct Engine {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: Arc<dyn Store>,
    pub(super) config: EngineConfig,
    pub(super) commit: CommitQueue,
    rooms: DashMap<String, mpsc::Sender<RoomCommand>>,
    /// One gate per room name being loaded or created: commands for that room wait for the
    /// load in progress instead of loading it twice, while other rooms load in parallel (a
    /// single lock made 200 rooms created at once wait for each other's store round trips).
    loading: DashMap<String, Arc<Mutex<()>>>,
    shutting_down: AtomicBool,
    /// Set when this node is part of a pool (see `remote`).
    pub(super) pool: std::sync::OnceLock<Arc<super::remote::Remote>>,
    /// Set when the compliance archive is on.
    pub(super) compliance: std::sync::OnceLock<crate::compliance::ComplianceSink>,
    /// Set when archived messages need rewriting as they are served (fresh file links).
    pub(super) history_rewriter: std::sync::OnceLock<Arc<dyn HistoryRewriter>>,
}

/// Rewrites an archived message as it is served to someone allowed to read the room's history
/// (history on join, archive queries), e.g. to re-sign the file download links it carries so
/// that expired links work again for the room's occupants, and only for them. Live messages are
/// never rewritten (encoded once for every occupant).
pub trait HistoryRewriter: Send + Sync {
    /// The message as it should be served, or `None` to serve it unchanged.
    fn rewrite(&self, message: &StoredMessage) -> Option<StoredMessage>;
}

/// `message` through `rewriter`, if one is set.
pub(super) fn served(
    rewriter: Option<&Arc<dyn HistoryRewriter>>,
    message: Arc<StoredMessage>,
) -> Arc<StoredMessage> {
    match rewriter.and_then(|r| r.rewrite(&message)) {
        Some(m) => Arc::new(m),
        None => message,
    }
}

impl Engine {
    /// Creates the engine and its commit writer. Must run inside a tokio runtime.
    pub fn new(store: Arc<dyn Store>, config: EngineConfig) -> Engine {
        let commit = CommitQueue::start(store.clone(), config.commit_batch);
        Engine {
            inner: Arc::new(Inner {
                store,
                config,
                commit,
                rooms: DashMap::new(),
                loading: DashMap::new(),
                shutting_down: AtomicBool::new(false),
                pool: std::sync::OnceLock::new(),
                compliance: std::sync::OnceLock::new(),
                history_rewriter: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Records every room event into `sink` from now on (once; later calls are ignored).
    pub fn set_compliance(&self, sink: crate::compliance::ComplianceSink) {
        let _ = self.inner.compliance.set(sink);
    }

    /// Rewrites archived messages as they are served from now on (once; later calls ignored).
    pub fn set_history_rewriter(&self, rewriter: Arc<dyn HistoryRewriter>) {
        let _ = self.inner.history_rewriter.set(rewriter);
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Sends a command to a room, loading it from the store (or creating it for a `Join` with
    /// `create`). Failures are answered on the command's own reply channel.
    /// In a pool, a command for a room homed on another node is forwarded there.
    pub async fn send(&self, room: &str, cmd: RoomCommand) {
        let name = room.to_lowercase();
        if self.inner.pool.get().is_some() {
            self.pool_send(&name, cmd).await;
            return;
        }
        self.send_local(&name, cmd).await
    }

    /// Sends a command to a room homed on this node (`name` is lower-case).
    pub(super) async fn send_local(&self, name: &str, cmd: RoomCommand) {
        let name = name.to_string();
        let mut cmd = cmd;
        for _ in 0..3 {
            let tx = match self.room_sender(&name, &cmd).await {
                Ok(tx) => tx,
                Err(err) => return cmd.fail(err),
            };
            match tx.send(cmd).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => {
                    // The room task ended (destroyed/emptied) between lookup and send.
                    self.inner
                        .rooms
                        .remove_if(&name, |_, v| v.same_channel(&tx));
                    cmd = back;
                }
            }
        }
        cmd.fail(RoomError::Internal);
    }

    /// Sends the command `make` builds around a reply channel and waits for the room's answer
    /// (a room that vanished without answering is `Internal`).
    pub async fn ask<T>(
        &self,
        room: &str,
        make: impl FnOnce(RoomReply<T>) -> RoomCommand,
    ) -> Result<T, RoomError> {
        let (reply, rx) = oneshot::channel();
        self.send(room, make(reply)).await;
        rx.await.map_err(|_| RoomError::Internal)?
    }

    /// Asks a room for its facts; `None` when it doesn't exist.
    pub async fn room_info(&self, room: &str) -> Option<RoomInfo> {
        self.ask(room, |reply| RoomCommand::Info { reply })
            .await
            .ok()
    }

    /// Every room with live occupant counts (rooms not loaded count 0 occupants).
    pub async fn list_rooms(&self) -> Result<Vec<RoomInfo>, EngineError> {
        let records = self.inner.store.list_rooms().await?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let loaded = self.inner.rooms.get(&r.name).map(|tx| tx.clone());
            let live = match loaded {
                Some(tx) => {
                    let (reply, rx) = oneshot::channel();
                    if tx.send(RoomCommand::Info { reply }).await.is_ok() {
                        rx.await.ok().and_then(|r| r.ok())
                    } else {
                        None
                    }
                }
                None => None,
            };
            out.push(live.unwrap_or(RoomInfo {
                name: r.name,
                config: r.config,
                subject: r.subject,
                occupants: 0,
                locked: r.locked,
                category: r.category,
            }));
        }
        Ok(out)
    }

    /// Creates a room outside any session (admin CLI/API). The owner, when given, gets the
    /// owner affiliation.
    pub async fn create_room(
        &self,
        name: &str,
        config: RoomConfig,
        category: Option<&Category>,
        owner: Option<&UserId>,
    ) -> Result<RoomRecord, EngineError> {
        let name = validate_room_name(name)?;
        let mut record = RoomRecord {
            id: 0,
            name,
            category: category.map(|c| c.id),
            config,
            subject: String::new(),
            subject_nick: String::new(),
            locked: false,
            created_at: now_millis(),
        };
        record.id = self.inner.store.create_room(&record).await?;
        if let Some(owner) = owner {
            self.inner
                .store
                .set_affiliation(record.id, owner, Affiliation::Owner, "")
                .await?;
        }
        Ok(record)
    }

    /// Graceful stop: every loaded room tells its occupants (status 332) and finishes its
    /// pending commits. New joins are refused from now on.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let senders: Vec<_> = self.inner.rooms.iter().map(|e| e.value().clone()).collect();
        let mut waits = Vec::with_capacity(senders.len());
        for tx in senders {
            let (reply, rx) = oneshot::channel();
            if tx.send(RoomCommand::Shutdown { reply }).await.is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
        self.inner.rooms.clear();
    }

    /// The rooms loaded on this node, with their command queues.
    pub(super) fn loaded_rooms(&self) -> Vec<(String, mpsc::Sender<RoomCommand>)> {
        self.inner
            .rooms
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect()
    }

    /// How many rooms are loaded on this node (in a pool: the rooms it is home for).
    pub fn loaded_room_count(&self) -> usize {
        self.inner.rooms.len()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    async fn room_sender(
        &self,
        name: &str,
        cmd: &RoomCommand,
    ) -> Result<mpsc::Sender<RoomCommand>, RoomError> {
        if let Some(tx) = self.inner.rooms.get(name).map(|r| r.value().clone()) {
            return Ok(tx);
        }
        if self.is_shutting_down() {
            return Err(RoomError::ServiceUnavailable);
        }
        let gate = self
            .inner
            .loading
            .entry(name.to_string())
            .or_default()
            .clone();
        let result = {
            let _guard = gate.lock().await;
            self.load_room(name, cmd).await
        };
        self.inner
            .loading
            .remove_if(name, |_, g| Arc::ptr_eq(g, &gate));
        result
    }

    /// Loads (or, for a creating join, creates) a room and registers its task; the caller holds
    /// the room name's gate.
    async fn load_room(
        &self,
        name: &str,
        cmd: &RoomCommand,
    ) -> Result<mpsc::Sender<RoomCommand>, RoomError> {
        if let Some(tx) = self.inner.rooms.get(name).map(|r| r.value().clone()) {
            return Ok(tx);
        }
        // A room that isn't loaded has no watchers: don't load it just to say so.
        if matches!(cmd, RoomCommand::Unwatch { .. }) {
            return Err(RoomError::ItemNotFound);
        }
        let seed = match self.inner.store.get_room(name).await {
            Ok(Some(record)) => RoomSeed::Existing(record),
            Ok(None) => match cmd {
                RoomCommand::Join { req, .. } if req.create => {
                    let record = self
                        .create_for_join(name, &req.client.user, req.instant)
                        .await?;
                    RoomSeed::Created(record)
                }
                _ => return Err(RoomError::ItemNotFound),
            },
            Err(err) => {
                tracing::error!(error = %err, room = name, "loading room failed");
                return Err(RoomError::Internal);
            }
        };
        let tx = room::spawn(self.inner.clone(), seed).await?;
        self.inner.rooms.insert(name.to_string(), tx.clone());
        Ok(tx)
    }

    async fn create_for_join(
        &self,
        name: &str,
        creator: &UserId,
        instant: bool,
    ) -> Result<RoomRecord, RoomError> {
        let name = validate_room_name(name)?;
        let cfg = &self.inner.config;
        if !cfg.allow_client_room_creation {
            return Err(RoomError::NotAllowed(
                "rooms are created by the administrator on this server".into(),
            ));
        }
        if !cfg.local_domains.iter().any(|d| d == creator.domain()) {
            return Err(RoomError::NotAllowed(
                "only local users may create rooms".into(),
            ));
        }
        let category = match &cfg.default_category {
            Some(c) => self
                .inner
                .store
                .get_category_by_name(c)
                .await
                .map_err(|_| RoomError::Internal)?,
            None => None,
        };
        if let Some(c) = &category {
            if !c.may_create(creator) {
                return Err(RoomError::NotAllowed(format!(
                    "you may not create rooms in category {}",
                    c.name
                )));
            }
        }
        let mut record = RoomRecord {
            id: 0,
            name,
            category: category.map(|c| c.id),
            config: RoomConfig {
                history_length: cfg.default_history_length,
                ..RoomConfig::default()
            },
            subject: String::new(),
            subject_nick: String::new(),
            locked: !instant,
            created_at: now_millis(),
        };
        let store = &self.inner.store;
        record.id = match store.create_room(&record).await {
            Ok(id) => id,
            Err(StoreError::AlreadyExists) => return Err(RoomError::Conflict),
            Err(_) => return Err(RoomError::Internal),
        };
        store
            .set_affiliation(record.id, creator, Affiliation::Owner, "")
            .await
            .map_err(|_| RoomError::Internal)?;
        Ok(record)
    }

    pub(super) fn forget_room(inner: &Inner, name: &str, tx: &mpsc::Sender<RoomCommand>) {
        inner.rooms.remove_if(name, |_, v| v.same_channel(tx));
    }
}

/// Room local names: 1–64 characters, lowercase, no `@ / " & ' : < >` or whitespace.
pub fn validate_room_name(name: &str) -> Result<String, RoomError> {
    let name = name.trim().to_lowercase();
    let bad = |c: char| c.is_whitespace() || c.is_control() || "@/\"&':<>".contains(c);
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(bad) {
        return Err(RoomError::BadRequest("invalid room name".into()));
    }
    Ok(name)
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
