//! SIP occupants: a user that sent `#join` to a room is an ordinary room occupant whose
//! [`EventSink`] feeds a delivery task. The task turns room events into text (through the
//! pager's `RoomView`), batches what arrived together (the welcome, who is present, history
//! and topic of a join go out as one MESSAGE), and sends MESSAGEs from the room URI to the
//! user's registered contacts, a few in flight at a time. After
//! `sip.delivery_failures_before_leave` consecutive failures (timeout, 408, 481, …) the user
//! leaves the room; it also leaves when its registration ends.

use super::bindings::Target;
use super::outbound::{room_message, FinalStatus};
use super::SipService;
use futures::stream::{FuturesOrdered, StreamExt};
use palaver_core::engine::{
    ClientId, ClientProtocol, ClientRef, DeliveryFlags, EventSink, HistoryRequest, JoinRequest,
    PresenceKind, RoomCommand, RoomError, RoomEvent, RoomEventKind, SinkClosed, StatusCodes,
};
use palaver_core::UserId;
use palaver_dialects::pager::text::{split_body, RoomView};
use std::sync::Arc;
use tokio::sync::mpsc;

/// MESSAGEs in flight towards one occupant.
const WINDOW: usize = 16;
/// Most queued events merged into one MESSAGE.
const MAX_BATCH: usize = 64;

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
                .filter(|t| t.flow.is_open())
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
    let occupancy = Arc::new(Occupancy {
        client,
        user: user.clone(),
        room: room.to_string(),
        fallback,
    });
    svc.occupants.insert(key.clone(), occupancy.clone());
    tokio::spawn(deliver(svc.clone(), occupancy, rx));
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

/// Makes `user` leave every room it is in (registration gone).
pub async fn leave_all(svc: &SipService, user: &str, reason: &str) {
    let mine: Vec<Arc<Occupancy>> = svc
        .occupants
        .iter()
        .filter(|e| e.key().0 == user)
        .map(|e| e.value().clone())
        .collect();
    for occ in mine {
        tracing::info!(user, room = %occ.room, reason, "SIP occupant leaves");
        let cmd = RoomCommand::Leave {
            client: occ.client,
            status: Some(Arc::from(reason)),
        };
        svc.ctx.engine.send(&occ.room, cmd).await;
    }
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

async fn send_job(
    svc: Arc<SipService>,
    occ: Arc<Occupancy>,
    body: String,
    author: Option<String>,
) -> FinalStatus {
    let targets = occ.targets(&svc);
    let from = svc.room_uri(&occ.room);
    send_text(&svc, &targets, &occ.user, &from, author.as_deref(), &body).await
}

/// Adds the text for one event to the batch; true when the event ends our occupancy.
fn take(
    view: &mut RoomView,
    (event, flags): &Queued,
    texts: &mut Vec<String>,
    author: &mut Option<String>,
) -> bool {
    if let Some(text) = view.event_text(event, *flags) {
        texts.push(text);
        *author = match &event.kind {
            RoomEventKind::Message {
                message,
                history: false,
            } => Some(message.nick.clone()),
            RoomEventKind::Private(pm) => Some(pm.from_nick.clone()),
            _ => None,
        };
    }
    match &event.kind {
        RoomEventKind::Presence(p) => {
            flags.is_self
                && p.kind == PresenceKind::Unavailable
                && !p.codes.has(StatusCodes::NICK_CHANGED)
        }
        RoomEventKind::Destroyed { .. } => true,
        _ => false,
    }
}

async fn deliver(svc: Arc<SipService>, occ: Arc<Occupancy>, mut rx: mpsc::Receiver<Queued>) {
    let mut view = RoomView::new();
    let mut in_flight = FuturesOrdered::new();
    let mut failures = 0u32;
    let mut ended = false;
    let max_failures = svc.config.delivery_failures_before_leave.max(1);
    loop {
        tokio::select! {
            Some(status) = in_flight.next(), if !in_flight.is_empty() => {
                if status < 300 {
                    failures = 0;
                } else {
                    failures += 1;
                    tracing::debug!(user = %occ.user, room = %occ.room, status, failures, "SIP delivery failed");
                    if failures >= max_failures && !ended {
                        tracing::info!(user = %occ.user, room = %occ.room, status, "SIP occupant unreachable; leaving the room");
                        let cmd = RoomCommand::Leave {
                            client: occ.client,
                            status: Some(Arc::from("SIP client unreachable")),
                        };
                        svc.ctx.engine.send(&occ.room, cmd).await;
                        ended = true;
                    }
                }
            }
            queued = rx.recv(), if !ended && in_flight.len() < WINDOW => {
                let Some(first) = queued else {
                    ended = true;
                    continue;
                };
                let mut texts = Vec::new();
                let mut author = None;
                let mut count = 1;
                ended = take(&mut view, &first, &mut texts, &mut author);
                while !ended && count < MAX_BATCH {
                    let Ok(next) = rx.try_recv() else { break };
                    count += 1;
                    ended = take(&mut view, &next, &mut texts, &mut author);
                }
                if !texts.is_empty() {
                    let author = if texts.len() == 1 { author } else { None };
                    in_flight.push_back(send_job(svc.clone(), occ.clone(), texts.join("\n"), author));
                }
            }
            else => break,
        }
    }
    let key = (occ.user.to_string(), occ.room.clone());
    svc.occupants.remove_if(&key, |_, o| o.client == occ.client);
}
