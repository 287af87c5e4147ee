//! The occupants of one room: each nick with its user, role, affiliation and the client sessions
//! (one user may join under one nick from several clients). Indexed by nick and by client id.

use super::commands::{ClientId, ClientProtocol, RosterEntry};
use super::events::{
    EventSink, OccupantPresence, PresenceKind, RoomEvent, RoomEventKind, StatusCodes,
};
use crate::model::{Affiliation, Role, UserId};
use std::collections::HashMap;
use std::sync::Arc;

/// One client session present in the room.
#[derive(Clone)]
pub(super) struct Session {
    pub client: ClientId,
    pub resource: Arc<str>,
    pub protocol: ClientProtocol,
    pub sink: Arc<dyn EventSink>,
}

/// One nick in the room.
#[derive(Clone)]
pub(super) struct Occupant {
    pub nick: String,
    pub user: UserId,
    pub role: Role,
    pub affiliation: Affiliation,
    pub occupant_id: String,
    pub payload: Option<Arc<str>>,
    pub sessions: Vec<Session>,
}

impl Occupant {
    /// The protocol of the occupant's first session.
    pub fn protocol(&self) -> ClientProtocol {
        self.sessions
            .first()
            .map(|s| s.protocol)
            .unwrap_or_default()
    }

    /// This occupant as a roster line.
    pub fn roster_entry(&self) -> RosterEntry {
        RosterEntry {
            nick: self.nick.clone(),
            user: self.user.clone(),
            role: self.role,
            affiliation: self.affiliation,
            protocol: self.protocol(),
        }
    }

    /// This occupant's presence as an event payload.
    pub fn presence(&self, kind: PresenceKind, codes: StatusCodes) -> OccupantPresence {
        OccupantPresence {
            nick: self.nick.clone(),
            user: self.user.clone(),
            resource: self
                .sessions
                .first()
                .map(|s| s.resource.to_string())
                .unwrap_or_default(),
            role: if kind == PresenceKind::Unavailable {
                Role::None
            } else {
                self.role
            },
            affiliation: self.affiliation,
            protocol: self.protocol(),
            occupant_id: self.occupant_id.clone(),
            kind,
            payload: self.payload.clone(),
            codes,
            new_nick: None,
            actor: None,
            reason: None,
        }
    }

    pub fn presence_event(
        &self,
        room: &Arc<str>,
        kind: PresenceKind,
        codes: StatusCodes,
    ) -> Arc<RoomEvent> {
        RoomEvent::new(
            room.clone(),
            RoomEventKind::Presence(self.presence(kind, codes)),
        )
    }
}

/// All occupants of a room.
#[derive(Default)]
pub(super) struct Occupants {
    by_nick: HashMap<String, Occupant>,
    by_client: HashMap<ClientId, String>,
}

impl Occupants {
    pub fn len(&self) -> usize {
        self.by_nick.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_nick.is_empty()
    }
    pub fn get(&self, nick: &str) -> Option<&Occupant> {
        self.by_nick.get(nick)
    }
    pub fn get_mut(&mut self, nick: &str) -> Option<&mut Occupant> {
        self.by_nick.get_mut(nick)
    }
    pub fn nick_of(&self, client: ClientId) -> Option<&str> {
        self.by_client.get(&client).map(String::as_str)
    }
    pub fn by_client(&self, client: ClientId) -> Option<&Occupant> {
        self.by_client
            .get(&client)
            .and_then(|n| self.by_nick.get(n))
    }
    pub fn by_user<'a>(&'a self, user: &'a UserId) -> impl Iterator<Item = &'a Occupant> + 'a {
        self.by_nick.values().filter(move |o| &o.user == user)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Occupant> {
        self.by_nick.values()
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Occupant> {
        self.by_nick.values_mut()
    }
    pub fn nicks(&self) -> Vec<String> {
        self.by_nick.keys().cloned().collect()
    }

    /// Adds a new occupant (its sessions are indexed).
    pub fn insert(&mut self, occupant: Occupant) {
        for s in &occupant.sessions {
            self.by_client.insert(s.client, occupant.nick.clone());
        }
        self.by_nick.insert(occupant.nick.clone(), occupant);
    }

    /// Adds another session to an existing nick.
    pub fn add_session(&mut self, nick: &str, session: Session) {
        if let Some(o) = self.by_nick.get_mut(nick) {
            self.by_client.insert(session.client, nick.to_string());
            o.sessions.push(session);
        }
    }

    /// Removes one session. Returns the occupant as it was and whether that was its last
    /// session (then the occupant is gone from the room).
    pub fn remove_session(&mut self, client: ClientId) -> Option<(Occupant, Session, bool)> {
        let nick = self.by_client.remove(&client)?;
        let occ = self.by_nick.get_mut(&nick)?;
        let pos = occ.sessions.iter().position(|s| s.client == client)?;
        let session = occ.sessions.remove(pos);
        if occ.sessions.is_empty() {
            let mut gone = self.by_nick.remove(&nick)?;
            gone.sessions.push(session.clone());
            Some((gone, session, true))
        } else {
            Some((occ.clone(), session, false))
        }
    }

    /// Removes a nick with all its sessions.
    pub fn remove_nick(&mut self, nick: &str) -> Option<Occupant> {
        let occ = self.by_nick.remove(nick)?;
        for s in &occ.sessions {
            self.by_client.remove(&s.client);
        }
        Some(occ)
    }

    /// Renames an occupant; the caller checked the new nick is free.
    pub fn rename(&mut self, old: &str, new: &str) -> Option<&Occupant> {
        let mut occ = self.by_nick.remove(old)?;
        occ.nick = new.to_string();
        for s in &occ.sessions {
            self.by_client.insert(s.client, new.to_string());
        }
        self.by_nick.insert(new.to_string(), occ);
        self.by_nick.get(new)
    }
}
