//! Conference event subscriptions (RFC 6665 SUBSCRIBE/NOTIFY, RFC 4575 `Event: conference`)
//! on room URIs: the subscriber gets the whole roster — SIP and XMPP occupants alike — in a
//! full document, then partial documents as people join, leave, change nick or role. Each
//! subscription is a room watcher (not an occupant) with its own task that owns the dialog:
//! refreshes re-send the full state, `Expires: 0` or expiry ends it with a terminated
//! NOTIFY, and a subscriber that answers 481 or stops answering is dropped. Behind a proxy
//! that record-routes, the 2xx copies Record-Route and the NOTIFYs carry it (in order, as
//! the UAS route set of RFC 3261 §12.1.1) as `Route`, so they travel through the proxy.

use super::auth::authenticate_sender;
use super::occupant::{Queued, SipSink};
use super::transport::Flow;
use super::SipService;
use palaver_core::engine::{
    ClientId, ClientProtocol, OccupantPresence, PresenceKind, RoomCommand, RoomEventKind,
    RoomSnapshot,
};
use palaver_core::UserId;
use palaver_dialects::pager::conference_info::{
    full_document, partial_document, ConfUser, ConferenceState, EndpointStatus, UserChange,
    UserState, CONTENT_TYPE,
};
use palaver_dialects::sip::{RequestBuilder, SipMessage};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Events queued towards one subscription.
const QUEUE: usize = 256;

/// What the dialog's owner task is told by later SUBSCRIBEs.
enum Control {
    Refresh(u32),
    Unsubscribe,
}

/// One live subscription (the key in `SipService::subscriptions` is (Call-ID, our tag)).
pub struct Subscription {
    pub user: UserId,
    /// The TCP/TLS connection NOTIFYs go over (the subscription ends with it).
    connection: Option<u64>,
    control: mpsc::Sender<Control>,
}

/// Ends the subscriptions whose NOTIFYs went over a connection that closed.
pub async fn end_on_connection(svc: &SipService, connection: u64) {
    let gone: Vec<Arc<Subscription>> = svc
        .subscriptions
        .iter()
        .filter(|s| s.connection == Some(connection))
        .map(|s| s.value().clone())
        .collect();
    for sub in gone {
        let _ = sub.control.send(Control::Unsubscribe).await;
    }
}

/// The dialog state needed to send NOTIFYs.
struct Dialog {
    flow: Flow,
    remote_target: String,
    remote_uri: String,
    remote_tag: String,
    local_uri: String,
    local_tag: String,
    call_id: String,
    cseq: u32,
    /// The route set: the SUBSCRIBE's Record-Route values, in order.
    route: Vec<String>,
}

/// Handles a SUBSCRIBE.
pub async fn on_subscribe(svc: &Arc<SipService>, req: &SipMessage, flow: &Flow) {
    // In-dialog requests go to our Contact (an address, not the room domain): find the
    // dialog by Call-ID and our tag first.
    if let Some(tag) = req.to().tag() {
        let key = (req.call_id().to_string(), tag.to_string());
        let sub = svc.subscriptions.get(&key).map(|s| s.clone());
        let Some(sub) = sub else {
            let resp = svc.reply(req, 481, "Subscription Does Not Exist");
            return svc.respond(req, flow, resp).await;
        };
        let Some(expires) = checked_expires(svc, req, flow).await else {
            return;
        };
        let Some(user) = authenticate_sender(svc, req, flow).await else {
            return;
        };
        if sub.user != user {
            let resp = svc.reply(req, 403, "Not Your Subscription");
            return svc.respond(req, flow, resp).await;
        }
        let control = if expires == 0 {
            Control::Unsubscribe
        } else {
            Control::Refresh(expires)
        };
        let resp = svc.ok(req).with_header("Expires", &expires.to_string());
        svc.respond(req, flow, resp).await;
        let _ = sub.control.send(control).await;
        return;
    }
    if req
        .event()
        .is_some_and(|e| e.package.eq_ignore_ascii_case(super::provisioning::EVENT))
    {
        return super::provisioning::on_subscribe(svc, req, flow).await;
    }
    // Only conference events exist here (a presence SUBSCRIBE to a user gets 489 too).
    if !req
        .event()
        .is_some_and(|e| e.package.eq_ignore_ascii_case("conference"))
    {
        let resp = svc
            .reply(req, 489, "Bad Event")
            .with_header("Allow-Events", "conference");
        return svc.respond(req, flow, resp).await;
    }
    let room = svc.room_named_by(req);
    let Some(room) = room.and_then(|r| palaver_core::engine::validate_room_name(&r).ok()) else {
        let resp = svc.reply(req, 404, "Not Found");
        return svc.respond(req, flow, resp).await;
    };
    let Some(expires) = checked_expires(svc, req, flow).await else {
        return;
    };
    let Some(user) = authenticate_sender(svc, req, flow).await else {
        return;
    };
    let Some(contact) = req.contact() else {
        let resp = svc.reply(req, 400, "Missing Contact");
        return svc.respond(req, flow, resp).await;
    };
    let watcher = svc.ctx.next_client_id();
    let (tx, rx) = mpsc::channel(QUEUE);
    let who = user.clone();
    let snapshot = svc
        .ctx
        .engine
        .ask(&room, |reply| RoomCommand::Watch {
            watcher,
            user: who,
            sink: Arc::new(SipSink { tx }),
            reply,
        })
        .await;
    let snapshot = match snapshot {
        Ok(s) => s,
        Err(e) => {
            let (code, reason) = super::commands::status_for(&e);
            let resp = svc.reply(req, code, reason);
            return svc.respond(req, flow, resp).await;
        }
    };
    let local_tag = svc.to_tag(req);
    let local_uri = svc.room_uri(&room);
    let resp = svc
        .ok(req)
        .with_header("Expires", &expires.to_string())
        .with_header("Contact", &format!("<{}>", contact_uri(&local_uri, flow)));
    svc.respond(req, flow, resp).await;
    let dialog = Dialog {
        flow: flow.clone(),
        remote_target: contact.uri.to_string(),
        remote_uri: req.from().uri.to_string(),
        remote_tag: req.from().tag().unwrap_or_default().to_string(),
        local_uri,
        local_tag: local_tag.clone(),
        call_id: req.call_id().to_string(),
        cseq: 0,
        route: super::bindings::split_list(req.header_values("Record-Route")),
    };
    let (control_tx, control_rx) = mpsc::channel(8);
    let key = (req.call_id().to_string(), local_tag);
    svc.subscriptions.insert(
        key.clone(),
        Arc::new(Subscription {
            user,
            connection: flow.connection(),
            control: control_tx,
        }),
    );
    let roster = Roster::new(svc, &room, snapshot);
    tokio::spawn(run(
        svc.clone(),
        key,
        watcher,
        room,
        dialog,
        roster,
        expires,
        rx,
        control_rx,
    ));
}

/// The subscription duration asked for, bounded; `None` when refused (423 sent).
async fn checked_expires(svc: &SipService, req: &SipMessage, flow: &Flow) -> Option<u32> {
    let cfg = &svc.config;
    let expires = req
        .expires()
        .unwrap_or(cfg.default_expires)
        .min(cfg.max_expires);
    if expires != 0 && expires < cfg.min_expires {
        let resp = svc
            .reply(req, 423, "Interval Too Brief")
            .with_header("Min-Expires", &cfg.min_expires.to_string());
        svc.respond(req, flow, resp).await;
        return None;
    }
    Some(expires)
}

/// Our Contact for the dialog: the room's user part at the address the flow reaches us on.
fn contact_uri(local_uri: &str, flow: &Flow) -> String {
    let user = local_uri
        .strip_prefix("sip:")
        .and_then(|s| s.split('@').next())
        .unwrap_or("room");
    let scheme = if flow.transport == super::Transport::Tls {
        "sips"
    } else {
        "sip"
    };
    let transport = match flow.transport {
        super::Transport::Udp => "",
        super::Transport::Tcp => ";transport=tcp",
        super::Transport::Tls => ";transport=tls",
    };
    format!("{scheme}:{user}@{}{transport}", flow.local)
}

/// The roster as conference-info sees it.
struct Roster {
    entity: String,
    title: String,
    subject: String,
    room_jid: String,
    non_anonymous: bool,
    users: BTreeMap<String, ConfUser>,
}

impl Roster {
    fn new(svc: &SipService, room: &str, snapshot: RoomSnapshot) -> Roster {
        let mut roster = Roster {
            entity: svc.room_uri(room),
            title: snapshot.title,
            subject: snapshot.subject,
            room_jid: format!("{room}@{}", svc.room_domain),
            non_anonymous: snapshot.non_anonymous,
            users: BTreeMap::new(),
        };
        for e in &snapshot.occupants {
            let user = roster.conf_user(e.protocol, &e.user, &e.nick, e.role);
            roster.users.insert(e.nick.clone(), user);
        }
        roster
    }

    fn conf_user(
        &self,
        protocol: ClientProtocol,
        user: &UserId,
        nick: &str,
        role: palaver_core::model::Role,
    ) -> ConfUser {
        let entity = match (self.non_anonymous, protocol) {
            (true, ClientProtocol::Sip) => format!("sip:{user}"),
            (true, ClientProtocol::Xmpp) => format!("xmpp:{user}"),
            (false, _) => format!("xmpp:{}/{}", self.room_jid, nick),
        };
        ConfUser {
            entity,
            display_text: nick.to_string(),
            role,
            status: EndpointStatus::Connected,
        }
    }

    fn full(&self, version: u32) -> String {
        let state = ConferenceState {
            entity: self.entity.clone(),
            display_text: self.title.clone(),
            subject: self.subject.clone(),
            users: self.users.values().cloned().collect(),
        };
        full_document(&state, version)
    }

    /// Applies a presence; returns the changes to announce.
    fn apply(&mut self, p: &OccupantPresence, changes: &mut Vec<UserChange>) {
        if p.kind == PresenceKind::Unavailable {
            if let Some(mut gone) = self.users.remove(&p.nick) {
                gone.status = EndpointStatus::Disconnected;
                changes.push(UserChange {
                    state: UserState::Deleted,
                    user: gone,
                });
            }
            return;
        }
        let user = self.conf_user(p.protocol, &p.user, &p.nick, p.role);
        let state = match self.users.insert(p.nick.clone(), user.clone()) {
            None => UserState::Added,
            Some(old) if old != user => UserState::Partial,
            Some(_) => return,
        };
        changes.push(UserChange { state, user });
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    svc: Arc<SipService>,
    key: (String, String),
    watcher: ClientId,
    room: String,
    mut dialog: Dialog,
    mut roster: Roster,
    expires: u32,
    mut events: mpsc::Receiver<Queued>,
    mut control: mpsc::Receiver<Control>,
) {
    let mut version = 1;
    let mut deadline = Instant::now() + Duration::from_secs(u64::from(expires));
    let mut alive = expires > 0;
    let state = |deadline: Instant| {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        format!("active;expires={left}")
    };
    let mut reason = "timeout";
    if alive {
        alive = notify(&svc, &mut dialog, &state(deadline), &roster.full(version)).await;
        if !alive {
            // The subscriber is gone (481, timeout…): nothing more to tell it.
            reason = "";
        }
    } else {
        // A fetch (Expires: 0, RFC 6665 §4.4.3): one NOTIFY with the state that also ends it.
        let terminated = format!("terminated;reason={reason}");
        notify(&svc, &mut dialog, &terminated, &roster.full(version)).await;
        reason = "";
    }
    while alive {
        tokio::select! {
            queued = events.recv() => {
                let Some(first) = queued else {
                    reason = "noresource";
                    break;
                };
                let mut batch = vec![first];
                while batch.len() < 64 {
                    match events.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let mut changes = Vec::new();
                let mut full = false;
                for (event, _) in &batch {
                    match &event.kind {
                        RoomEventKind::Presence(p) => roster.apply(p, &mut changes),
                        RoomEventKind::Subject { subject, .. } => {
                            roster.subject = subject.clone();
                            full = true;
                        }
                        RoomEventKind::Destroyed { .. } => {
                            reason = "noresource";
                            alive = false;
                        }
                        _ => {}
                    }
                }
                if !alive {
                    break;
                }
                let body = if full {
                    Some(roster.full(version + 1))
                } else if !changes.is_empty() {
                    Some(partial_document(&roster.entity, &changes, version + 1))
                } else {
                    None
                };
                if let Some(body) = body {
                    version += 1;
                    if !notify(&svc, &mut dialog, &state(deadline), &body).await {
                        reason = "";
                        break;
                    }
                }
            }
            ctl = control.recv() => match ctl {
                Some(Control::Refresh(secs)) => {
                    deadline = Instant::now() + Duration::from_secs(u64::from(secs));
                    version += 1;
                    if !notify(&svc, &mut dialog, &state(deadline), &roster.full(version)).await {
                        reason = "";
                        break;
                    }
                }
                Some(Control::Unsubscribe) | None => {
                    reason = "";
                    alive = false;
                    version += 1;
                    let body = roster.full(version);
                    notify(&svc, &mut dialog, "terminated", &body).await;
                }
            },
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    if !reason.is_empty() {
        version += 1;
        let body = roster.full(version);
        notify(
            &svc,
            &mut dialog,
            &format!("terminated;reason={reason}"),
            &body,
        )
        .await;
    }
    svc.subscriptions.remove(&key);
    svc.ctx
        .engine
        .send(&room, RoomCommand::Unwatch { watcher })
        .await;
    tracing::debug!(room, "conference subscription ended");
}

/// Sends one NOTIFY in the dialog; false when the subscriber is gone (481, timeout, …).
async fn notify(svc: &SipService, dialog: &mut Dialog, state: &str, body: &str) -> bool {
    dialog.cseq += 1;
    let mut builder = RequestBuilder::notify(&dialog.remote_target);
    for hop in &dialog.route {
        builder = builder.header("Route", hop);
    }
    let built = builder
        .via(dialog.flow.transport.via_name(), &dialog.flow.local)
        .from(&dialog.local_uri, None, &dialog.local_tag)
        .to(&dialog.remote_uri, None, Some(&dialog.remote_tag))
        .call_id(&dialog.call_id)
        .cseq(dialog.cseq)
        .contact(&contact_uri(&dialog.local_uri, &dialog.flow))
        .header("Event", "conference")
        .header("Subscription-State", state)
        .body(CONTENT_TYPE, body.as_bytes())
        .build();
    let request = match built {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build NOTIFY");
            return false;
        }
    };
    let status = svc.client_transactions.run(&dialog.flow, request).await;
    (200..300).contains(&status)
}
