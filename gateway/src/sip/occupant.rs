//! SIP occupants: a user that sent `#join` to a room is an ordinary room occupant whose
//! [`EventSink`] feeds a delivery task ([`delivery`]) that sends the room's events as
//! MESSAGEs from the room URI to the user's registered contacts (or, without a registration,
//! back over the flow its `#join` came on). The user leaves the room after
//! `sip.delivery_failures_before_leave` consecutive failed deliveries, when its registration
//! ends, and when the connection it joined on without one closes.

mod delivery;

use super::bindings::Target;
use super::outbound::{room_message, FinalStatus};
use super::SipService;
use palaver_core::engine::{
    ClientId, ClientProtocol, ClientRef, DeliveryFlags, EventSink, HistoryRequest, JoinRequest,
    RoomCommand, RoomError, RoomEvent, SinkClosed,
};
use palaver_core::UserId;
use palaver_dialects::pager::text::split_body;
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::ns;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A room event as queued for a SIP task.
pub type Queued = (Arc<RoomEvent>, DeliveryFlags);

/// One SIP user in one room.
pub struct Occupancy {
    pub client: ClientId,
    pub user: UserId,
    pub room: String,
    /// Where to reach a user that joined without a registration (the flow its `#join` came on).
    pub fallback: Option<Target>,
}

impl Occupancy {
    /// Where the room's MESSAGEs go now.
    pub fn targets(&self, svc: &SipService) -> Vec<Target> {
        let targets = svc.bindings.targets(&self.user.to_string());
        if targets.is_empty() {
            self.fallback
                .iter()
                .filter(|t| svc.bindings.unregistered_flow_open(&t.flow))
                .cloned()
                .collect()
        } else {
            targets
        }
    }
}

/// The `EventSink` of SIP occupants and conference watchers: a bounded queue to their task.
pub struct SipSink {
    pub tx: mpsc::Sender<Queued>,
}

impl EventSink for SipSink {
    fn deliver(&self, event: &Arc<RoomEvent>, flags: DeliveryFlags) -> Result<(), SinkClosed> {
        match self.tx.try_send((event.clone(), flags)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("palaver_slow_consumers_total", "protocol" => "sip").increment(1);
                Err(SinkClosed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SinkClosed),
        }
    }
}

/// Joins `user` to `room` as `nick`. `via` is where to answer when the user has no
/// registration.
pub async fn join(
    svc: &Arc<SipService>,
    user: &UserId,
    room: &str,
    nick: &str,
    via: Target,
) -> Result<(), RoomError> {
    let key = (user.to_string(), room.to_string());
    let client = svc.ctx.next_client_id();
    let (tx, rx) = mpsc::channel(svc.config.outbound_queue.max(16));
    let fallback = svc.bindings.targets(&key.0).is_empty().then_some(via);
    if let Some(via) = &fallback {
        svc.bindings.watch_unregistered(&key.0, &via.flow);
    }
    let occupancy = Arc::new(Occupancy {
        client,
        user: user.clone(),
        room: room.to_string(),
        fallback,
    });
    svc.occupants.insert(key.clone(), occupancy.clone());
    tokio::spawn(delivery::deliver(svc.clone(), occupancy, rx));
    let req = JoinRequest {
        client: ClientRef {
            id: client,
            user: user.clone(),
            resource: Arc::from("sip"),
            sink: Arc::new(SipSink { tx }),
            protocol: ClientProtocol::Sip,
        },
        nick: nick.to_string(),
        password: None,
        history: HistoryRequest::default(),
        payload: None,
        create: false,
        instant: true,
    };
    let result = svc
        .ctx
        .engine
        .ask(room, |reply| RoomCommand::Join { req, reply })
        .await;
    if result.is_err() {
        svc.occupants.remove_if(&key, |_, o| o.client == client);
    }
    result
}

/// The occupancy of `user` in `room`, if joined.
pub fn find(svc: &SipService, user: &UserId, room: &str) -> Option<Arc<Occupancy>> {
    svc.occupants
        .get(&(user.to_string(), room.to_string()))
        .map(|o| o.clone())
}

/// Forgets the occupancy of `user` in `room` if it is still the one of `client` (a later
/// join's is kept).
pub fn forget(svc: &SipService, user: &UserId, room: &str, client: ClientId) {
    svc.occupants
        .remove_if(&(user.to_string(), room.to_string()), |_, o| {
            o.client == client
        });
}

/// Makes `user` leave every room where it can no longer be reached (its registrations, or
/// the connection it joined on without one, are gone).
pub async fn leave_all(svc: &SipService, user: &str, reason: &str) {
    let mine: Vec<Arc<Occupancy>> = svc
        .occupants
        .iter()
        .filter(|e| e.key().0 == user)
        .map(|e| e.value().clone())
        .filter(|occ| occ.targets(svc).is_empty())
        .collect();
    for occ in mine {
        tracing::info!(user, room = %occ.room, reason, "SIP occupant leaves");
        let cmd = RoomCommand::Leave {
            client: occ.client,
            status: Some(leave_status(reason)),
        };
        svc.ctx.engine.send(&occ.room, cmd).await;
    }
}

/// The presence payload of a SIP occupant that leaves for `reason`: the engine relays it to
/// XMPP occupants as the children of the unavailable presence, so it is a `<status/>`
/// element, not bare text.
pub fn leave_status(reason: &str) -> Arc<str> {
    let status = Element::new("status", ns::CLIENT).with_text(reason);
    Arc::from(String::from_utf8_lossy(&status.to_bytes(ns::CLIENT)).as_ref())
}

/// Sends `text` (split to fit) from `from_uri`/`from_name` to every target of a user;
/// returns the best final status (480 when there is no target).
pub async fn send_text(
    svc: &SipService,
    targets: &[Target],
    user: &UserId,
    from_uri: &str,
    from_name: Option<&str>,
    text: &str,
) -> FinalStatus {
    let aor = format!("sip:{user}");
    let mut best: Option<FinalStatus> = None;
    for target in targets {
        let limit = if target.flow.transport.reliable() {
            svc.config.max_post_bytes
        } else {
            svc.config.udp_body_bytes
        };
        let mut status = 200;
        for part in split_body(text, limit) {
            let Some(request) = room_message(target, &aor, from_uri, from_name, &part) else {
                status = 500;
                break;
            };
            status = svc.client_transactions.run(&target.flow, request).await;
            if status >= 300 {
                break;
            }
        }
        best = Some(match best {
            Some(b) if b < 300 => b,
            _ => status,
        });
    }
    best.unwrap_or(480)
}
