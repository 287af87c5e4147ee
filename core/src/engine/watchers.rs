//! Observing a room without being in it: the occupant list for anyone who could enter (the SIP
//! `#members` command), and watchers — sinks that are not occupants but follow the roster
//! (every presence event), the subject and the room's destruction, for SIP SUBSCRIBE to the
//! conference event package (RFC 4575). Watchers never get messages, private messages or
//! history, don't count as occupants and don't announce themselves; one whose sink fails is
//! dropped silently. While a room has watchers it stays loaded even when nobody is in it.

use super::commands::{ClientId, RoomError, RoomSnapshot, RosterEntry};
use super::events::{DeliveryFlags, EventSink, RoomEvent, RoomEventKind};
use super::room::Room;
use crate::model::{UserId, Whois};
use std::sync::Arc;

/// One registered watcher.
struct Watcher {
    id: ClientId,
    sink: Arc<dyn EventSink>,
}

/// The watchers of one room, in registration order.
#[derive(Default)]
pub(super) struct Watchers {
    list: Vec<Watcher>,
}

impl Watchers {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds a watcher, or replaces the sink of the one with the same id.
    fn set(&mut self, id: ClientId, sink: Arc<dyn EventSink>) {
        match self.list.iter_mut().find(|w| w.id == id) {
            Some(w) => w.sink = sink,
            None => self.list.push(Watcher { id, sink }),
        }
    }

    /// Removes a watcher; false when there was none with that id.
    fn remove(&mut self, id: ClientId) -> bool {
        let before = self.list.len();
        self.list.retain(|w| w.id != id);
        self.list.len() != before
    }

    /// Keeps only the watchers whose id passes `keep`.
    pub fn retain(&mut self, keep: impl Fn(ClientId) -> bool) {
        self.list.retain(|w| keep(w.id));
    }

    /// Forgets every watcher (shutdown, destruction).
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Whether watchers follow events of this kind (roster, subject, destruction).
    pub fn follow(kind: &RoomEventKind) -> bool {
        matches!(
            kind,
            RoomEventKind::Presence(_)
                | RoomEventKind::Subject { .. }
                | RoomEventKind::Destroyed { .. }
        )
    }

    /// Delivers `event` to every watcher, dropping those whose sinks fail.
    pub fn deliver(&mut self, room: &str, event: &Arc<RoomEvent>, flags: DeliveryFlags) {
        self.list.retain(|w| {
            let ok = w.sink.deliver(event, flags).is_ok();
            if !ok {
                tracing::debug!(room, watcher = w.id, "dropping watcher with failed sink");
            }
            ok
        });
    }
}

impl Room {
    /// May `user` see who is in the room without entering it? Yes when it has an occupant
    /// here, else the entry rules without password, nick or capacity: not an outcast, the room
    /// not locked (unless owner), the category admits it, a member of a members-only room.
    fn check_observer(&self, user: &UserId) -> Result<(), RoomError> {
        if self.occupants.by_user(user).next().is_some() {
            return Ok(());
        }
        self.check_admission(user, self.affiliation_of(user))
    }

    /// Every present occupant, sorted by nick.
    fn roster(&self) -> Vec<RosterEntry> {
        let mut out: Vec<RosterEntry> = self.occupants.iter().map(|o| o.roster_entry()).collect();
        out.sort_by(|a, b| a.nick.cmp(&b.nick));
        out
    }

    /// `RoomCommand::Occupants`.
    pub(super) fn occupants_for(&self, actor: &UserId) -> Result<Vec<RosterEntry>, RoomError> {
        self.check_observer(actor)?;
        Ok(self.roster())
    }

    /// `RoomCommand::Watch`: registers the watcher and returns the state it starts from. Every
    /// event its sink gets afterwards happened after this snapshot.
    pub(super) fn watch(
        &mut self,
        watcher: ClientId,
        user: &UserId,
        sink: Arc<dyn EventSink>,
    ) -> Result<RoomSnapshot, RoomError> {
        self.check_observer(user)?;
        self.watchers.set(watcher, sink);
        Ok(RoomSnapshot {
            name: self.record.name.clone(),
            title: self.record.config.title.clone(),
            subject: self.record.subject.clone(),
            non_anonymous: self.record.config.whois == Whois::Anyone,
            occupants: self.roster(),
        })
    }

    /// `RoomCommand::Unwatch`: an emptied temporary room goes once its last watcher does.
    pub(super) async fn unwatch(&mut self, watcher: ClientId) {
        if self.watchers.remove(watcher) {
            self.close_if_abandoned().await;
        }
    }

    /// Sends a followed event to the watchers (they never see real addresses unless everyone
    /// may). Called by `broadcast` and for destruction.
    pub(super) fn tell_watchers(&mut self, event: &Arc<RoomEvent>) {
        if self.watchers.is_empty() || !Watchers::follow(&event.kind) {
            return;
        }
        let flags = DeliveryFlags {
            is_self: false,
            sees_real_address: self.record.config.whois == Whois::Anyone,
        };
        self.watchers.deliver(&self.name, event, flags);
    }
}
