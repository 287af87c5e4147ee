//! One XCCOS session: the task that owns an accepted INVITE dialog. It runs the client's
//! commands in order ([`super::commands`]), turns room events into notices and room messages
//! ([`super::rooms`]) and sends everything as server INFOs, one at a time so the client sees
//! them in order (consecutive notices share one envelope). The session ends on BYE, when the
//! session timer (RFC 4028) runs out without a refresh, when the client answers an INFO
//! with 481/487 (it considers the dialog gone), after consecutive unanswered INFOs, when its
//! connection closes, or when it falls so far behind that its room queue overflows; it then
//! leaves every room.

use super::dialog::Dialog;
use super::rooms::{Outcome, RoomState};
use crate::sip::outbound::FinalStatus;
use crate::sip::SipService;
use bytes::Bytes;
use futures::future::{BoxFuture, OptionFuture};
use palaver_core::engine::{
    ClientId, DeliveryFlags, EventSink, RoomCommand, RoomEvent, SinkClosed,
};
use palaver_core::UserId;
use palaver_dialects::sip::Method;
use palaver_dialects::xccos::encode::{self, ChannelInfo, ReplyTo};
use palaver_dialects::xccos::{Command, Resp};
use palaver_dialects::xmpp::element::Element;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Commands queued towards one session (more get 503 on the INFO).
pub const CONTROL_QUEUE: usize = 64;
/// Consecutive INFOs without a final response (timeouts) after which the client is gone.
const MAX_TIMEOUTS: u32 = 2;
/// Most notices sent in one envelope.
const MAX_NOTICES: usize = 32;

/// What the INFO handler and the sink tell the session task.
pub enum Control {
    /// A command from an INFO, with the envelope's envid.
    Command(Command, Option<u64>),
    /// A reply to send as it is (e.g. the error reply of a refused post).
    Send(Bytes),
    /// UPDATE or re-INVITE refreshed the session for this many seconds.
    Refresh(u32),
    /// End the session; send BYE when true.
    End(bool, &'static str),
}

/// A live session, as the INFO/UPDATE/BYE handlers find it.
pub struct XccosSession {
    pub user: UserId,
    /// The occupant id of this session in every room it joins.
    pub client: ClientId,
    pub dialog: Dialog,
    pub control: mpsc::Sender<Control>,
    /// The 2xx of the INVITE was ACKed.
    pub acked: AtomicBool,
}

/// The sink rooms deliver to: a bounded queue; overflowing ends the session.
pub struct XccosSink {
    tx: mpsc::Sender<(Arc<RoomEvent>, DeliveryFlags)>,
    control: mpsc::Sender<Control>,
}

impl EventSink for XccosSink {
    fn deliver(&self, event: &Arc<RoomEvent>, flags: DeliveryFlags) -> Result<(), SinkClosed> {
        match self.tx.try_send((event.clone(), flags)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("palaver_slow_consumers_total", "protocol" => "xccos")
                    .increment(1);
                let _ = self.control.try_send(Control::End(true, "too slow"));
                Err(SinkClosed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SinkClosed),
        }
    }
}

/// A join or bjoin waiting for its rooms' join sequences.
pub struct PendingJoin {
    pub name: String,
    pub seqid: String,
    pub envid: Option<u64>,
    /// Rooms still joining.
    pub waiting: Vec<String>,
    /// Rooms joined, in request order.
    pub done: Vec<String>,
    /// The first refusal (the reply's code when no room could be joined).
    pub refused: Option<Resp>,
}

/// The session task's state.
pub struct SessionTask {
    pub svc: Arc<SipService>,
    pub session: Arc<XccosSession>,
    pub sink: Arc<dyn EventSink>,
    pub rooms: HashMap<String, RoomState>,
    pub pending: Vec<PendingJoin>,
    outbox: VecDeque<Bytes>,
    envid: Arc<AtomicU64>,
}

/// Starts the task of a new session; returns the session.
pub fn start(
    svc: &Arc<SipService>,
    user: UserId,
    dialog: Dialog,
    expires: u32,
) -> Arc<XccosSession> {
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (events_tx, events_rx) = mpsc::channel(svc.config.outbound_queue.max(64));
    let session = Arc::new(XccosSession {
        user,
        client: svc.ctx.next_client_id(),
        dialog,
        control: control_tx.clone(),
        acked: AtomicBool::new(false),
    });
    let task = SessionTask {
        svc: svc.clone(),
        session: session.clone(),
        sink: Arc::new(XccosSink {
            tx: events_tx,
            control: control_tx,
        }),
        rooms: HashMap::new(),
        pending: Vec::new(),
        outbox: VecDeque::new(),
        envid: Arc::new(AtomicU64::new(u64::from(rand::random::<u32>()))),
    };
    tokio::spawn(task.run(expires, events_rx, control_rx));
    session
}

impl SessionTask {
    /// Queues one envelope item.
    pub fn push(&mut self, item: Bytes) {
        self.outbox.push_back(item);
    }

    /// Queues a reply to a command.
    pub fn reply(&mut self, to: &ReplyTo<'_>, resp: Resp, data: Element) {
        let e = encode::reply(to, resp, data);
        self.push(super::rooms::element_bytes(&e));
    }

    async fn run(
        mut self,
        expires: u32,
        mut events: mpsc::Receiver<(Arc<RoomEvent>, DeliveryFlags)>,
        mut control: mpsc::Receiver<Control>,
    ) {
        let mut deadline = Instant::now() + Duration::from_secs(u64::from(expires));
        let mut in_flight: Option<BoxFuture<'static, FinalStatus>> = None;
        let mut timeouts = 0u32;
        let (mut bye, mut reason) = (true, "session expired");
        loop {
            if in_flight.is_none() {
                if let Some(body) = self.next_envelope() {
                    in_flight = Some(self.send_info(body));
                }
            }
            tokio::select! {
                Some(status) = OptionFuture::from(in_flight.as_mut()), if in_flight.is_some() => {
                    in_flight = None;
                    match status {
                        200..=299 => timeouts = 0,
                        481 | 487 => {
                            (bye, reason) = (false, "client ended the dialog");
                            break;
                        }
                        408 | 503 => {
                            timeouts += 1;
                            if timeouts >= MAX_TIMEOUTS || !self.session.dialog.flow.is_open() {
                                (bye, reason) = (false, "client does not answer");
                                break;
                            }
                        }
                        other => {
                            tracing::debug!(user = %self.session.user, status = other, "XCCOS INFO refused");
                        }
                    }
                }
                event = events.recv() => {
                    let Some((event, flags)) = event else { break };
                    self.on_event(&event, flags);
                }
                ctl = control.recv() => match ctl {
                    Some(Control::Command(cmd, envid)) => self.command(cmd, envid).await,
                    Some(Control::Send(item)) => self.push(item),
                    Some(Control::Refresh(secs)) => {
                        deadline = Instant::now() + Duration::from_secs(u64::from(secs));
                    }
                    Some(Control::End(send_bye, why)) => {
                        (bye, reason) = (send_bye, why);
                        break;
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        self.finish(bye, reason).await;
    }

    /// The next INFO body: one item, or up to [`MAX_NOTICES`] consecutive notices together
    /// (clients read every `<ntc>` of an envelope but only the first `<grpchat>`).
    fn next_envelope(&mut self) -> Option<Vec<u8>> {
        let first = self.outbox.pop_front()?;
        let mut items = first.to_vec();
        if first.starts_with(b"<ntc") {
            let mut n = 1;
            while n < MAX_NOTICES && self.outbox.front().is_some_and(|i| i.starts_with(b"<ntc")) {
                if let Some(next) = self.outbox.pop_front() {
                    items.extend_from_slice(&next);
                }
                n += 1;
            }
        }
        let envid = self.envid.fetch_add(1, Ordering::Relaxed);
        Some(encode::envelope(envid, &items))
    }

    fn send_info(&self, body: Vec<u8>) -> BoxFuture<'static, FinalStatus> {
        let svc = self.svc.clone();
        let session = self.session.clone();
        Box::pin(async move {
            let Some(request) = session.dialog.request(Method::Info, Some(&body)) else {
                return 500;
            };
            svc.client_transactions
                .run(&session.dialog.flow, request)
                .await
        })
    }

    fn on_event(&mut self, event: &Arc<RoomEvent>, flags: DeliveryFlags) {
        let Some(room) = self.rooms.get_mut(&*event.room) else {
            return;
        };
        match room.apply(event, flags, &self.session.user) {
            Outcome::None => {}
            Outcome::Item(item) => self.push(item),
            Outcome::Joined => self.joined(event.room.as_ref()),
            Outcome::Ended(notice) => {
                let name = event.room.to_string();
                self.rooms.remove(&name);
                self.join_failed(&name, Resp::NOT_ALLOWED);
                if let Some(n) = notice {
                    self.push(n);
                }
            }
        }
    }

    /// A room's join sequence ended: the join (or bjoin) waiting for it may be answered.
    fn joined(&mut self, room: &str) {
        for p in &mut self.pending {
            if let Some(i) = p.waiting.iter().position(|r| r == room) {
                p.waiting.remove(i);
                p.done.push(room.to_string());
            }
        }
        self.answer_finished_joins();
    }

    /// A room could not be joined (refused, or gone during the join sequence).
    pub fn join_failed(&mut self, room: &str, resp: Resp) {
        for p in &mut self.pending {
            if let Some(i) = p.waiting.iter().position(|r| r == room) {
                p.waiting.remove(i);
                p.refused.get_or_insert(resp);
            }
        }
        self.answer_finished_joins();
    }

    /// Sends the replies of joins whose rooms have all answered.
    pub fn answer_finished_joins(&mut self) {
        let (finished, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.waiting.is_empty());
        self.pending = waiting;
        for p in finished {
            let rooms: Vec<(ChannelInfo, Vec<encode::Member>)> = p
                .done
                .iter()
                .filter_map(|r| self.rooms.get(r))
                .map(|r| {
                    let members = r.members();
                    let mut info = r.info.clone();
                    info.users = u32::try_from(members.len()).unwrap_or(u32::MAX);
                    (info, members)
                })
                .collect();
            let resp = match (&p.refused, rooms.is_empty()) {
                (Some(refused), true) => *refused,
                _ => Resp::OK,
            };
            let to = ReplyTo {
                name: &p.name,
                seqid: &p.seqid,
                envid: p.envid,
            };
            let data = if rooms.is_empty() {
                encode::empty_data()
            } else {
                encode::join_data(&rooms)
            };
            self.reply(&to, resp, data);
        }
    }

    /// Leaves every room, forgets the session and, if asked, ends the dialog with BYE.
    async fn finish(self, bye: bool, reason: &'static str) {
        let session = &self.session;
        tracing::info!(user = %session.user, call_id = %session.dialog.call_id, reason, "XCCOS session ends");
        let key = (
            session.dialog.call_id.clone(),
            session.dialog.local_tag.clone(),
        );
        self.svc
            .xccos
            .remove_if(&key, |_, s| Arc::ptr_eq(s, session));
        metrics::gauge!("palaver_xccos_sessions").set(self.svc.xccos.len() as f64);
        for room in self.rooms.keys() {
            let cmd = RoomCommand::Leave {
                client: session.client,
                status: Some(crate::sip::occupant::leave_status(reason)),
            };
            self.svc.ctx.engine.send(room, cmd).await;
        }
        if bye && session.dialog.flow.is_open() {
            if let Some(request) = session.dialog.request(Method::Bye, None) {
                let svc = self.svc.clone();
                let flow = session.dialog.flow.clone();
                tokio::spawn(async move {
                    svc.client_transactions.run(&flow, request).await;
                });
            }
        }
    }
}
