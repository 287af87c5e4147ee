//! Entering and leaving a room: the XEP-0045 §7.2 entry checks and event order (others'
//! presence, own presence with status codes, history, subject), multi-session nicks, nick
//! changes (§7.6), exit (§7.14), and emptying temporary rooms (kept while watched).

use super::commands::{ClientId, HistoryRequest, JoinRequest, RoomError};
use super::events::{DeliveryFlags, PresenceKind, RoomEvent, RoomEventKind, StatusCodes};
use super::occupants::{Occupant, Session};
use super::permissions::role_on_entry;
use super::room::Room;
use crate::model::{Affiliation, Role, StoredMessage, UserId, Whois};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Nicks: 1–64 characters, no control characters, not only whitespace.
pub(super) fn validate_nick(nick: &str) -> Result<(), RoomError> {
    if nick.trim().is_empty() || nick.chars().count() > 64 || nick.chars().any(char::is_control) {
        return Err(RoomError::BadRequest("invalid nickname".into()));
    }
    Ok(())
}

impl Room {
    pub(super) async fn join(&mut self, req: JoinRequest) -> Result<(), RoomError> {
        validate_nick(&req.nick)?;
        let client = req.client.id;
        // Already in the room from this client: presence update or nick change.
        if let Some(current) = self.occupants.nick_of(client).map(str::to_string) {
            if current != req.nick {
                return self.change_nick(client, req.nick);
            }
            return self.update_presence(&current, req.payload);
        }
        let user = req.client.user.clone();
        let affiliation = self.affiliation_of(&user);
        self.check_entry(&req, affiliation)?;
        let session = Session {
            client,
            resource: req.client.resource.clone(),
            protocol: req.client.protocol,
            sink: req.client.sink.clone(),
        };
        let mut codes = StatusCodes::empty().with(StatusCodes::SELF);
        if self.record.config.whois == Whois::Anyone {
            codes = codes.with(StatusCodes::NON_ANONYMOUS);
        }
        if self.record.config.logged {
            codes = codes.with(StatusCodes::LOGGED);
        }
        let role;
        if let Some(existing) = self.occupants.get(&req.nick) {
            // Same user, another client, same nick: join as one more session.
            role = existing.role;
            self.occupants.add_session(&req.nick, session);
        } else {
            role = role_on_entry(affiliation, self.record.config.moderated);
            if self.just_created && affiliation == Affiliation::Owner {
                codes = codes.with(StatusCodes::CREATED);
                self.just_created = false;
            }
            let occupant = Occupant {
                nick: req.nick.clone(),
                user: user.clone(),
                role,
                affiliation,
                occupant_id: self.occupant_id(&user),
                payload: req.payload.clone(),
                sessions: vec![session.clone()],
            };
            // 1. Existing occupants' presence to the newcomer.
            let sees = self.record.config.whois == Whois::Anyone || role == Role::Moderator;
            let others: Vec<Arc<RoomEvent>> = self
                .occupants
                .iter()
                .map(|o| {
                    o.presence_event(&self.name, PresenceKind::Available, StatusCodes::empty())
                })
                .collect();
            for ev in &others {
                let flags = DeliveryFlags {
                    is_self: false,
                    sees_real_address: sees,
                };
                if session.sink.deliver(ev, flags).is_err() {
                    return Err(RoomError::ResourceConstraint);
                }
            }
            // 2. The newcomer's presence to everyone else.
            let ev =
                occupant.presence_event(&self.name, PresenceKind::Available, StatusCodes::empty());
            self.broadcast(&ev, None);
            self.occupants.insert(occupant);
            metrics::gauge!("palaver_occupants").increment(1.0);
        }
        // Self-presence (for a second session, re-send others' presence first).
        let Some(occ) = self.occupants.get(&req.nick) else {
            return Err(RoomError::Internal);
        };
        let sees = self.record.config.whois == Whois::Anyone || role == Role::Moderator;
        let self_flags = DeliveryFlags {
            is_self: true,
            sees_real_address: true,
        };
        let mut to_send = Vec::new();
        if occ.sessions.len() > 1 {
            for o in self.occupants.iter().filter(|o| o.nick != req.nick) {
                to_send.push((
                    o.presence_event(&self.name, PresenceKind::Available, StatusCodes::empty()),
                    DeliveryFlags {
                        is_self: false,
                        sees_real_address: sees,
                    },
                ));
            }
        }
        to_send.push((
            occ.presence_event(&self.name, PresenceKind::Available, codes),
            self_flags,
        ));
        // 3. History, 4. subject.
        let other = DeliveryFlags {
            is_self: false,
            sees_real_address: sees,
        };
        for m in self.history_for(&req.history) {
            let ev = RoomEvent::new(
                self.name.clone(),
                RoomEventKind::Message {
                    message: super::handle::served(self.engine.history_rewriter.get(), m),
                    history: true,
                },
            );
            to_send.push((ev, other));
        }
        to_send.push((
            RoomEvent::new(
                self.name.clone(),
                RoomEventKind::Subject {
                    nick: self.record.subject_nick.clone(),
                    subject: self.record.subject.clone(),
                },
            ),
            other,
        ));
        for (ev, flags) in &to_send {
            if req.client.sink.deliver(ev, *flags).is_err() {
                self.dead.push(client);
                break;
            }
        }
        self.reap_dead().await;
        Ok(())
    }

    /// The entry rules every way into the room shares (joining, watching the roster): not an
    /// outcast, the room not locked (unless owner), the category admits the user, a member of a
    /// members-only room.
    pub(super) fn check_admission(
        &self,
        user: &UserId,
        affiliation: Affiliation,
    ) -> Result<(), RoomError> {
        if affiliation == Affiliation::Outcast {
            return Err(RoomError::Forbidden);
        }
        if self.record.locked && affiliation != Affiliation::Owner {
            return Err(RoomError::ItemNotFound);
        }
        if let Some(cat) = &self.category {
            if affiliation < Affiliation::Member && !cat.may_join(user) {
                return Err(RoomError::Forbidden);
            }
        }
        if self.record.config.members_only && affiliation < Affiliation::Member {
            return Err(RoomError::RegistrationRequired);
        }
        Ok(())
    }

    fn check_entry(&self, req: &JoinRequest, affiliation: Affiliation) -> Result<(), RoomError> {
        let cfg = &self.record.config;
        let user = &req.client.user;
        self.check_admission(user, affiliation)?;
        if let Some(pw) = &cfg.password {
            if affiliation < Affiliation::Owner && req.password.as_deref() != Some(pw.as_str()) {
                return Err(RoomError::NotAuthorized);
            }
        }
        if let Some(holder) = self.occupants.get(&req.nick) {
            if &holder.user != user {
                return Err(RoomError::Conflict);
            }
        } else if cfg.max_users > 0
            && self.occupants.len() >= cfg.max_users as usize
            && affiliation < Affiliation::Admin
        {
            return Err(RoomError::ServiceUnavailable);
        }
        Ok(())
    }

    fn update_presence(&mut self, nick: &str, payload: Option<Arc<str>>) -> Result<(), RoomError> {
        let Some(occ) = self.occupants.get_mut(nick) else {
            return Err(RoomError::NotAcceptable);
        };
        occ.payload = payload;
        let ev = occ.presence_event(&self.name, PresenceKind::Available, StatusCodes::empty());
        self.broadcast(&ev, Some(nick));
        Ok(())
    }

    /// XEP-0421: stable per (room, user), not revealing the user without the server secret.
    fn occupant_id(&self, user: &UserId) -> String {
        let mut h = Sha256::new();
        h.update(&self.engine.config.occupant_id_secret);
        h.update(self.record.id.to_be_bytes());
        h.update(user.as_str().as_bytes());
        let digest = h.finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Recent messages a joiner asked for, oldest first.
    fn history_for(&self, req: &HistoryRequest) -> Vec<Arc<StoredMessage>> {
        let room_max = self
            .record
            .config
            .history_length
            .min(self.engine.config.max_history) as usize;
        let mut max = req
            .max_stanzas
            .map(|m| m as usize)
            .unwrap_or(room_max)
            .min(room_max);
        let now = super::handle::now_millis();
        let mut not_before = i64::MIN;
        if let Some(s) = req.seconds {
            not_before = not_before.max(now - i64::from(s) * 1000);
        }
        if let Some(since) = req.since {
            not_before = not_before.max(since);
        }
        let mut chars_left = req.max_chars.map(|c| c as usize);
        if chars_left == Some(0) {
            max = 0;
        }
        let mut picked = Vec::new();
        for m in self.recent.iter().rev() {
            if picked.len() >= max || m.ts < not_before {
                break;
            }
            if let Some(left) = chars_left.as_mut() {
                // Approximate the stanza's size by its body plus envelope overhead.
                let cost = m.body.chars().count() + m.nick.len() + 160;
                if cost > *left {
                    break;
                }
                *left -= cost;
            }
            picked.push(m.clone());
        }
        picked.reverse();
        picked
    }

    pub(super) fn change_nick(&mut self, client: ClientId, new: String) -> Result<(), RoomError> {
        validate_nick(&new)?;
        let Some(old) = self.occupants.nick_of(client).map(str::to_string) else {
            return Err(RoomError::NotAcceptable);
        };
        if old == new {
            return Ok(());
        }
        if self.occupants.get(&new).is_some() {
            return Err(RoomError::Conflict);
        }
        let Some(occ) = self.occupants.get(&old) else {
            return Err(RoomError::Internal);
        };
        let mut gone = occ.presence(
            PresenceKind::Unavailable,
            StatusCodes::empty().with(StatusCodes::NICK_CHANGED),
        );
        gone.role = occ.role;
        gone.new_nick = Some(new.clone());
        let ev = RoomEvent::new(self.name.clone(), RoomEventKind::Presence(gone));
        self.broadcast(&ev, Some(&old));
        let Some(occ) = self.occupants.rename(&old, &new) else {
            return Err(RoomError::Internal);
        };
        let ev = occ.presence_event(&self.name, PresenceKind::Available, StatusCodes::empty());
        self.broadcast(&ev, Some(&new));
        Ok(())
    }

    /// A session leaves (or vanished). When it was the occupant's last session everyone sees
    /// the occupant go; an emptied temporary or still-locked room is destroyed.
    pub(super) async fn leave(&mut self, client: ClientId, status: Option<Arc<str>>) {
        let Some((occ, session, last)) = self.occupants.remove_session(client) else {
            return;
        };
        let mut presence = occ.presence(PresenceKind::Unavailable, StatusCodes::empty());
        if status.is_some() {
            presence.payload = status;
        }
        let ev = RoomEvent::new(self.name.clone(), RoomEventKind::Presence(presence));
        let self_flags = DeliveryFlags {
            is_self: true,
            sees_real_address: true,
        };
        let _ = session.sink.deliver(&ev, self_flags);
        if last {
            metrics::gauge!("palaver_occupants").decrement(1.0);
            self.broadcast(&ev, None);
        }
        self.close_if_abandoned().await;
        Box::pin(self.reap_dead()).await;
    }

    /// A temporary or still-locked room with neither occupants nor watchers is destroyed.
    pub(super) async fn close_if_abandoned(&mut self) {
        if self.occupants.is_empty()
            && self.watchers.is_empty()
            && (!self.record.config.persistent || self.record.locked)
            && !self.closed
        {
            tracing::info!(room = %self.name, "destroying empty temporary room");
            if let Err(e) = self.engine.store.delete_room(self.record.id).await {
                tracing::error!(room = %self.name, error = %e, "deleting temporary room failed");
            }
            self.closed = true;
        }
    }

    /// Removes every occupant with an unavailable presence carrying `code` (332 shutdown,
    /// 322 members-only) — each learns it themselves with 110.
    pub(super) fn shutdown_occupants(&mut self, code: u32) {
        for nick in self.occupants.nicks() {
            self.remove_with_code(&nick, code, None, None);
        }
    }

    /// Removes one occupant, telling it (with 110) and everyone else.
    pub(super) fn remove_with_code(
        &mut self,
        nick: &str,
        code: u32,
        actor: Option<String>,
        reason: Option<String>,
    ) {
        let Some(occ) = self.occupants.get(nick) else {
            return;
        };
        let mut presence = occ.presence(PresenceKind::Unavailable, StatusCodes::empty().with(code));
        presence.actor = actor;
        presence.reason = reason;
        if code == StatusCodes::BANNED {
            presence.affiliation = Affiliation::Outcast;
        }
        let ev = RoomEvent::new(self.name.clone(), RoomEventKind::Presence(presence));
        self.broadcast(&ev, Some(nick));
        if self.occupants.remove_nick(nick).is_some() {
            metrics::gauge!("palaver_occupants").decrement(1.0);
        }
    }
}
