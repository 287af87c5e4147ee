//! Helpers shared by the engine tests: a collecting sink, clients, an engine on an in-memory
//! SQLite store, and join/post shorthands.
#![allow(dead_code)]

use palaver_core::engine::*;
use palaver_core::*;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Collect {
    events: Mutex<Vec<(Arc<RoomEvent>, DeliveryFlags)>>,
}

impl EventSink for Collect {
    fn deliver(&self, event: &Arc<RoomEvent>, flags: DeliveryFlags) -> Result<(), SinkClosed> {
        self.events
            .lock()
            .map_err(|_| SinkClosed)?
            .push((event.clone(), flags));
        Ok(())
    }
}

impl Collect {
    pub fn take(&self) -> Vec<(Arc<RoomEvent>, DeliveryFlags)> {
        std::mem::take(&mut *self.events.lock().expect("lock"))
    }
}

pub struct Client {
    pub sink: Arc<Collect>,
    pub r: ClientRef,
}

pub fn client(id: u64, user: &str) -> Client {
    client_on(id, user, ClientProtocol::Xmpp)
}

/// A client labelled with `protocol` (as the SIP gateway labels its sessions).
pub fn client_on(id: u64, user: &str, protocol: ClientProtocol) -> Client {
    let sink = Arc::new(Collect::default());
    Client {
        r: ClientRef {
            id,
            user: UserId::parse(user).expect("user"),
            resource: Arc::from("test"),
            protocol,
            sink: sink.clone(),
        },
        sink,
    }
}

pub async fn engine() -> Engine {
    let store = open_store("sqlite::memory:").await.expect("store");
    Engine::new(store, EngineConfig::default())
}

pub async fn join(
    e: &Engine,
    room: &str,
    c: &Client,
    nick: &str,
    instant: bool,
) -> Result<(), RoomError> {
    let req = JoinRequest {
        client: c.r.clone(),
        nick: nick.into(),
        password: None,
        history: HistoryRequest::default(),
        payload: None,
        create: true,
        instant,
    };
    e.ask(room, |reply| RoomCommand::Join { req, reply }).await
}

pub async fn post(
    e: &Engine,
    room: &str,
    c: &Client,
    body: &str,
) -> Result<Arc<StoredMessage>, RoomError> {
    e.ask(room, |reply| RoomCommand::Post {
        client: c.r.id,
        body: body.into(),
        extra: None,
        origin_id: String::new(),
        reply,
    })
    .await
}

pub fn presences(
    events: &[(Arc<RoomEvent>, DeliveryFlags)],
) -> Vec<(String, PresenceKind, Vec<u16>, bool)> {
    events
        .iter()
        .filter_map(|(e, f)| match &e.kind {
            RoomEventKind::Presence(p) => {
                Some((p.nick.clone(), p.kind, p.codes.codes().collect(), f.is_self))
            }
            _ => None,
        })
        .collect()
}
