//! Room administration and the remaining occupant use cases: subject, private messages,
//! roles (kick, voice, moderator), affiliations (member, admin, owner, ban), configuration,
//! destruction, invitations and archive queries.

use super::commands::{ArchivePage, ClientId, InviteTicket, RoomError, RoomReply, RosterEntry};
use super::events::{
    DeliveryFlags, PresenceKind, PrivateMessage, RoomEvent, RoomEventKind, StatusCodes,
};
use super::permissions::{check_affiliation_change, check_role_change, role_on_entry};
use super::room::Room;
use crate::model::{Affiliation, AffiliationRecord, HistoryQuery, Role, RoomConfig, UserId, Whois};
use std::sync::Arc;

impl Room {
    pub(super) async fn set_subject(
        &mut self,
        client: ClientId,
        subject: String,
    ) -> Result<(), RoomError> {
        let Some(occ) = self.occupants.by_client(client) else {
            return Err(RoomError::NotAcceptable);
        };
        let allowed = occ.role == Role::Moderator
            || (self.record.config.occupants_may_change_subject && occ.role >= Role::Participant);
        if !allowed {
            return Err(RoomError::Forbidden);
        }
        let nick = occ.nick.clone();
        let mut record = self.record.clone();
        record.subject = subject.clone();
        record.subject_nick = nick.clone();
        self.persist(record).await?;
        let ev = RoomEvent::new(self.name.clone(), RoomEventKind::Subject { nick, subject });
        self.broadcast(&ev, None);
        self.reap_dead().await;
        Ok(())
    }

    pub(super) fn private(
        &mut self,
        client: ClientId,
        to_nick: &str,
        body: String,
        extra: Option<String>,
        origin_id: String,
    ) -> Result<(), RoomError> {
        let Some(from) = self.occupants.by_client(client) else {
            return Err(RoomError::NotAcceptable);
        };
        if !self.record.config.allow_private_messages && from.role != Role::Moderator {
            return Err(RoomError::NotAllowed(
                "private messages are off in this room".into(),
            ));
        }
        if self.occupants.get(to_nick).is_none() {
            return Err(RoomError::RecipientUnavailable);
        }
        let ev = RoomEvent::new(
            self.name.clone(),
            RoomEventKind::Private(PrivateMessage {
                from_nick: from.nick.clone(),
                from_user: from.user.clone(),
                from_occupant_id: from.occupant_id.clone(),
                body,
                extra,
                origin_id,
            }),
        );
        if let (Some(sink), RoomEventKind::Private(pm), Some(to)) = (
            self.engine.compliance.get(),
            &ev.kind,
            self.occupants.get(to_nick),
        ) {
            sink.record(super::compliance_map::private_event(
                &self.name,
                pm,
                from.protocol(),
                to_nick,
                to.user.as_str(),
            ));
        }
        let sees = self.record.config.whois == Whois::Anyone
            || self
                .occupants
                .get(to_nick)
                .is_some_and(|o| o.role == Role::Moderator);
        let flags = DeliveryFlags {
            is_self: false,
            sees_real_address: sees,
        };
        self.send_to(to_nick, &ev, flags);
        Ok(())
    }

    pub(super) fn set_role(
        &mut self,
        client: ClientId,
        nick: &str,
        role: Role,
        reason: Option<String>,
    ) -> Result<(), RoomError> {
        let Some(actor) = self.occupants.by_client(client) else {
            return Err(RoomError::NotAcceptable);
        };
        let Some(target) = self.occupants.get(nick) else {
            return Err(RoomError::RecipientUnavailable);
        };
        check_role_change(
            actor.role,
            actor.affiliation,
            target.role,
            target.affiliation,
            role,
        )?;
        let actor_nick = actor.nick.clone();
        if role == Role::None {
            self.remove_with_code(nick, StatusCodes::KICKED, Some(actor_nick), reason);
            return Ok(());
        }
        let Some(target) = self.occupants.get_mut(nick) else {
            return Err(RoomError::RecipientUnavailable);
        };
        target.role = role;
        let mut presence = target.presence(PresenceKind::Available, StatusCodes::empty());
        presence.actor = Some(actor_nick);
        presence.reason = reason;
        let ev = RoomEvent::new(self.name.clone(), RoomEventKind::Presence(presence));
        self.broadcast(&ev, Some(nick));
        Ok(())
    }

    pub(super) async fn set_affiliation(
        &mut self,
        client: ClientId,
        actor_user: &UserId,
        user: &UserId,
        affiliation: Affiliation,
        reason: Option<String>,
    ) -> Result<(), RoomError> {
        let actor_aff = self.affiliation_of(actor_user);
        let current = self.affiliation_of(user);
        check_affiliation_change(actor_aff, current, affiliation)?;
        if current == Affiliation::Owner
            && affiliation != Affiliation::Owner
            && self
                .affiliations
                .values()
                .filter(|a| **a == Affiliation::Owner)
                .count()
                <= 1
        {
            return Err(RoomError::NotAllowed(
                "a room must keep at least one owner".into(),
            ));
        }
        let reason_text = reason.clone().unwrap_or_default();
        self.engine
            .store
            .set_affiliation(self.record.id, user, affiliation, &reason_text)
            .await
            .map_err(|_| RoomError::Internal)?;
        if affiliation == Affiliation::None {
            self.affiliations.remove(user);
        } else {
            self.affiliations.insert(user.clone(), affiliation);
        }
        let actor_nick = self
            .occupants
            .by_client(client)
            .map(|o| o.nick.clone())
            .or_else(|| Some(actor_user.to_string()));
        let nicks: Vec<String> = self
            .occupants
            .by_user(user)
            .map(|o| o.nick.clone())
            .collect();
        for nick in nicks {
            if affiliation == Affiliation::Outcast {
                self.remove_with_code(
                    &nick,
                    StatusCodes::BANNED,
                    actor_nick.clone(),
                    reason.clone(),
                );
            } else if self.record.config.members_only && affiliation < Affiliation::Member {
                self.remove_with_code(
                    &nick,
                    StatusCodes::AFFILIATION_CHANGED,
                    actor_nick.clone(),
                    reason.clone(),
                );
            } else if let Some(occ) = self.occupants.get_mut(&nick) {
                occ.affiliation = affiliation;
                occ.role = role_on_entry(affiliation, self.record.config.moderated).max(
                    if occ.role == Role::Moderator && affiliation < Affiliation::Admin {
                        Role::Participant
                    } else {
                        Role::None
                    },
                );
                let mut presence = occ.presence(PresenceKind::Available, StatusCodes::empty());
                presence.actor = actor_nick.clone();
                presence.reason = reason.clone();
                let ev = RoomEvent::new(self.name.clone(), RoomEventKind::Presence(presence));
                self.broadcast(&ev, Some(&nick));
            }
        }
        self.reap_dead().await;
        Ok(())
    }

    pub(super) fn get_affiliations(
        &self,
        actor: &UserId,
        affiliation: Affiliation,
    ) -> Result<Vec<AffiliationRecord>, RoomError> {
        let actor_aff = self.affiliation_of(actor);
        let may = match affiliation {
            Affiliation::Owner | Affiliation::Admin => actor_aff >= Affiliation::Admin,
            Affiliation::Member => {
                actor_aff >= Affiliation::Admin
                    || (self.record.config.members_only && actor_aff >= Affiliation::Member)
            }
            _ => actor_aff >= Affiliation::Admin,
        };
        if !may {
            return Err(RoomError::Forbidden);
        }
        let mut out: Vec<AffiliationRecord> = self
            .affiliations
            .iter()
            .filter(|(_, a)| **a == affiliation)
            .map(|(u, a)| AffiliationRecord {
                user: u.clone(),
                affiliation: *a,
                reason: String::new(),
            })
            .collect();
        out.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(out)
    }

    pub(super) fn get_roles(
        &self,
        actor: &UserId,
        role: Role,
    ) -> Result<Vec<RosterEntry>, RoomError> {
        if !self
            .occupants
            .by_user(actor)
            .any(|o| o.role == Role::Moderator)
        {
            return Err(RoomError::Forbidden);
        }
        let mut out: Vec<RosterEntry> = self
            .occupants
            .iter()
            .filter(|o| o.role == role)
            .map(|o| o.roster_entry())
            .collect();
        out.sort_by(|a, b| a.nick.cmp(&b.nick));
        Ok(out)
    }

    pub(super) async fn set_config(
        &mut self,
        actor: &UserId,
        config: RoomConfig,
    ) -> Result<(), RoomError> {
        if self.affiliation_of(actor) != Affiliation::Owner {
            return Err(RoomError::Forbidden);
        }
        let old = self.record.config.clone();
        let mut record = self.record.clone();
        record.config = config;
        record.locked = false;
        self.persist(record).await?;
        let new = self.record.config.clone();
        let mut codes = StatusCodes::empty().with(StatusCodes::CONFIG_CHANGED);
        if old.whois != new.whois {
            codes = codes.with(if new.whois == Whois::Anyone {
                StatusCodes::NOW_NON_ANONYMOUS
            } else {
                StatusCodes::NOW_SEMI_ANONYMOUS
            });
        }
        if old.logged != new.logged {
            codes = codes.with(if new.logged {
                StatusCodes::LOGGED
            } else {
                StatusCodes::UNLOGGED
            });
        }
        let ev = RoomEvent::new(self.name.clone(), RoomEventKind::ConfigChanged { codes });
        self.broadcast(&ev, None);
        if new.members_only && !old.members_only {
            let outsiders: Vec<String> = self
                .occupants
                .iter()
                .filter(|o| o.affiliation < Affiliation::Member)
                .map(|o| o.nick.clone())
                .collect();
            for nick in outsiders {
                self.remove_with_code(&nick, StatusCodes::MEMBERS_ONLY, None, None);
            }
        }
        if new.moderated != old.moderated {
            let moderated = new.moderated;
            let changed: Vec<String> = self
                .occupants
                .iter_mut()
                .filter(|o| o.affiliation == Affiliation::None && o.role != Role::Moderator)
                .filter_map(|o| {
                    let role = role_on_entry(o.affiliation, moderated);
                    (role != o.role).then(|| {
                        o.role = role;
                        o.nick.clone()
                    })
                })
                .collect();
            for nick in changed {
                if let Some(o) = self.occupants.get(&nick) {
                    let ev =
                        o.presence_event(&self.name, PresenceKind::Available, StatusCodes::empty());
                    self.broadcast(&ev, Some(&nick));
                }
            }
        }
        self.reap_dead().await;
        Ok(())
    }

    pub(super) async fn destroy(
        &mut self,
        actor: &UserId,
        reason: String,
        alternate: Option<String>,
    ) -> Result<(), RoomError> {
        if self.affiliation_of(actor) != Affiliation::Owner {
            return Err(RoomError::Forbidden);
        }
        self.engine
            .store
            .delete_room(self.record.id)
            .await
            .map_err(|_| RoomError::Internal)?;
        let ev = RoomEvent::new(
            self.name.clone(),
            RoomEventKind::Destroyed { reason, alternate },
        );
        // Each occupant learns it as its own exit.
        let flags = DeliveryFlags {
            is_self: true,
            sees_real_address: true,
        };
        for nick in self.occupants.nicks() {
            self.send_to(&nick, &ev, flags);
            self.occupants.remove_nick(&nick);
            metrics::gauge!("palaver_occupants").decrement(1.0);
        }
        self.tell_watchers(&ev);
        self.watchers.clear();
        self.closed = true;
        Ok(())
    }

    pub(super) async fn invite(
        &mut self,
        client: ClientId,
        invitee: &UserId,
    ) -> Result<InviteTicket, RoomError> {
        let Some(occ) = self.occupants.by_client(client) else {
            return Err(RoomError::NotAcceptable);
        };
        let inviter_aff = occ.affiliation;
        let ticket = InviteTicket {
            inviter_nick: occ.nick.clone(),
            inviter: occ.user.clone(),
            password: self.record.config.password.clone(),
        };
        if !self.record.config.allow_invites && inviter_aff < Affiliation::Admin {
            return Err(RoomError::Forbidden);
        }
        if self.record.config.members_only && self.affiliation_of(invitee) < Affiliation::Member {
            if inviter_aff < Affiliation::Admin {
                return Err(RoomError::Forbidden);
            }
            if self.affiliation_of(invitee) == Affiliation::None {
                self.engine
                    .store
                    .set_affiliation(self.record.id, invitee, Affiliation::Member, "invited")
                    .await
                    .map_err(|_| RoomError::Internal)?;
                self.affiliations
                    .insert(invitee.clone(), Affiliation::Member);
            }
        }
        Ok(ticket)
    }

    /// Checks access here, then reads the store off the room task.
    pub(super) fn query_archive(
        &self,
        actor: &UserId,
        mut query: HistoryQuery,
        after_id: Option<String>,
        before_id: Option<String>,
        reply: RoomReply<ArchivePage>,
    ) {
        let aff = self.affiliation_of(actor);
        let cfg = &self.record.config;
        if aff == Affiliation::Outcast || (cfg.members_only && aff < Affiliation::Member) {
            let _ = reply.send(Err(RoomError::Forbidden));
            return;
        }
        let store = self.engine.store.clone();
        let rewriter = self.engine.history_rewriter.get().cloned();
        let room_id = self.record.id;
        tokio::spawn(async move {
            let result = async {
                let lookup = |id: Option<String>| {
                    let store = store.clone();
                    async move {
                        match id {
                            None => Ok(None),
                            Some(id) => match store.message_by_stanza_id(room_id, &id).await {
                                Ok(Some(m)) => Ok(Some(m.seq)),
                                Ok(None) => Err(RoomError::ItemNotFound),
                                Err(_) => Err(RoomError::Internal),
                            },
                        }
                    }
                };
                // RSM <count/> is the size of the whole result set, before paging: it
                // does not depend on the page, so it is read at the same time as the rows
                // (one store round trip on the answer's path instead of two).
                let whole = query.clone();
                if let Some(seq) = lookup(after_id).await? {
                    query.after_seq = Some(seq);
                }
                if let Some(seq) = lookup(before_id).await? {
                    query.before_seq = Some(seq);
                }
                let max = query.limit;
                query.limit = max.saturating_add(1);
                let (count, rows) = tokio::join!(
                    store.count_messages(room_id, &whole),
                    store.history(room_id, &query)
                );
                let count = count.map_err(|_| RoomError::Internal)?;
                let mut rows = rows.map_err(|_| RoomError::Internal)?;
                let complete = rows.len() <= max as usize;
                if !complete {
                    if query.from_end {
                        rows.remove(0);
                    } else {
                        rows.truncate(max as usize);
                    }
                }
                Ok(ArchivePage {
                    messages: rows
                        .into_iter()
                        .map(|m| super::handle::served(rewriter.as_ref(), Arc::new(m)))
                        .collect(),
                    complete,
                    count,
                })
            }
            .await;
            let _ = reply.send(result);
        });
    }

    /// Writes the room record and adopts it.
    async fn persist(&mut self, record: crate::model::RoomRecord) -> Result<(), RoomError> {
        self.engine.store.update_room(&record).await.map_err(|e| {
            tracing::error!(room = %self.name, error = %e, "saving room failed");
            RoomError::Internal
        })?;
        self.record = record;
        Ok(())
    }
}
