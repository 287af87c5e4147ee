//! The commands of an XCCOS session, run by its task in order: `requri` (the pool URI),
//! `getserverinfo` (limits, category root), `chansrch` (public rooms by name or category,
//! with live occupant counts; `extended` adds each room's members and managers), `join`/`bjoin` (answered when each room's join sequence has
//! ended, with its members), `bccontext` (the last messages from the archive), `part` and
//! `getinv` (pending invitations). Anything else is answered 501 and the session goes on.

use super::rooms::{occupant_uri, RoomState};
use super::session::{PendingJoin, SessionTask};
use palaver_core::engine::{
    ClientProtocol, ClientRef, HistoryRequest, JoinRequest, RoomCommand, RoomError, RoomInfo,
};
use palaver_core::model::{Affiliation, Category, HistoryQuery, Whois};
use palaver_dialects::xccos::addr::{category_uri, channel_uri, parse_channel_uri, ChanId};
use palaver_dialects::xccos::encode::{
    self, ChannelInfo, ChatMessage, Member, ReplyTo, ServerInfo,
};
use palaver_dialects::xccos::{Command, CommandKind, Resp};
use std::sync::Arc;

/// Most rooms one search returns (told to clients in `getserverinfo`).
pub const SEARCH_LIMIT: u32 = 999;
/// Most rooms an extended search lists with their members and managers.
const EXTENDED_ROOMS: usize = 100;

/// A stable UUID-shaped id derived from `what` and the domain (the category root, the
/// database version).
pub fn derived_uuid(what: &str, domain: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("palaver xccos {what}\0{domain}").as_bytes());
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The largest room message accepted, in characters (what `getserverinfo` announces).
pub fn message_size_limit(max_post_bytes: usize) -> u32 {
    u32::try_from(max_post_bytes / 4).unwrap_or(u32::MAX)
}

/// `ma-cat://<domain>/<id>` of the category tree's root (`rootUri` of `getserverinfo`).
pub fn root_category_uri(domain: &str) -> String {
    category_uri(domain, derived_uuid("root", domain))
}

/// A room's facts as XCCOS lists them.
pub fn channel_info(domain: &str, room: &RoomInfo) -> ChannelInfo {
    let c = &room.config;
    ChannelInfo {
        uri: channel_uri(domain, &room.name),
        name: if c.title.is_empty() {
            room.name.clone()
        } else {
            c.title.clone()
        },
        description: c.description.clone(),
        topic: room.subject.clone(),
        category: room.category.map(|id| category_uri(domain, id)),
        users: room.occupants,
        private: c.members_only,
        hidden: !c.public,
        // Files in rooms come with the file store (not yet).
        filepost: false,
        invite: c.allow_invites,
        logged: c.logged,
    }
}

impl SessionTask {
    /// Runs one command and queues its reply.
    pub async fn command(&mut self, cmd: Command, envid: Option<u64>) {
        let to = ReplyTo {
            name: &cmd.name,
            seqid: &cmd.seqid,
            envid,
        };
        tracing::debug!(user = %self.session.user, command = %cmd.name, "XCCOS command");
        match cmd.kind {
            CommandKind::RequestUri => {
                let uri = self.svc.xccos_pool_uri();
                self.reply(&to, Resp::OK, encode::requri_data(&uri));
            }
            CommandKind::ServerInfo => {
                let domain = self.svc.domain.clone();
                let limit = message_size_limit(self.svc.config.max_post_bytes);
                let root = root_category_uri(&domain);
                let db = derived_uuid("db", &domain);
                let info = ServerInfo {
                    domain: &domain,
                    now_millis: crate::bootstrap::now_millis(),
                    search_limit: SEARCH_LIMIT,
                    message_size_limit: limit,
                    story_size_limit: limit,
                    root_uri: &root,
                    db_version: &db,
                };
                self.reply(&to, Resp::OK, encode::server_info_data(&info));
            }
            CommandKind::Search {
                by_category,
                criteria,
                extended,
            } => match self.search(by_category, &criteria).await {
                Ok(found) if extended => {
                    let rooms = self.with_members(found).await;
                    self.reply(&to, Resp::OK, encode::join_data(&rooms));
                }
                Ok(found) => self.reply(&to, Resp::OK, encode::search_data(&found)),
                Err(resp) => self.reply(&to, resp, encode::empty_data()),
            },
            CommandKind::Join { channels, .. } => self.join(&to, channels).await,
            CommandKind::Context { channel, last } => match self.context(&channel, last).await {
                Ok(data) => self.reply(&to, Resp::OK, data),
                Err(resp) => self.reply(&to, resp, encode::part_data(&channel)),
            },
            CommandKind::Part { channel } => {
                let resp = self.part(&channel).await;
                self.reply(&to, resp, encode::part_data(&channel));
            }
            CommandKind::Invitations => {
                let me = self.session.user.to_string();
                let domain = self.svc.domain.clone();
                let list: Vec<encode::Invitation> = self
                    .svc
                    .invitations
                    .iter()
                    .filter(|e| e.key().0 == me)
                    .map(|e| encode::Invitation {
                        channel: channel_uri(&domain, &e.key().1),
                        name: e.key().1.clone(),
                        inviter: format!("sip:{}", e.value().inviter),
                    })
                    .collect();
                self.reply(&to, Resp::OK, encode::invitations_data(&list));
            }
            CommandKind::Invalid(why) => {
                tracing::debug!(user = %self.session.user, why, "invalid XCCOS command");
                self.reply(&to, Resp::BAD_REQUEST, encode::empty_data());
            }
            CommandKind::Unknown => self.reply(&to, Resp::UNKNOWN_COMMAND, encode::empty_data()),
        }
    }

    async fn search(&self, by_category: bool, criteria: &str) -> Result<Vec<ChannelInfo>, Resp> {
        let engine = &self.svc.ctx.engine;
        let rooms = engine.list_rooms().await.map_err(|_| Resp::INTERNAL)?;
        let domain = &self.svc.domain;
        let wanted_category: Option<Option<String>> = if by_category {
            let root = root_category_uri(domain);
            if criteria.eq_ignore_ascii_case(&root) || criteria.is_empty() {
                None
            } else {
                let categories: Vec<Category> = self
                    .svc
                    .ctx
                    .store
                    .list_categories()
                    .await
                    .map_err(|_| Resp::INTERNAL)?;
                let found = categories
                    .iter()
                    .find(|c| {
                        category_uri(domain, c.id).eq_ignore_ascii_case(criteria)
                            || c.name.eq_ignore_ascii_case(criteria)
                    })
                    .map(|c| category_uri(domain, c.id));
                Some(Some(found.ok_or(Resp::NO_CHANNEL)?))
            }
        } else {
            None
        };
        let needle = criteria.to_lowercase();
        let mut out: Vec<ChannelInfo> = rooms
            .iter()
            .filter(|r| r.config.public && !r.locked)
            .map(|r| channel_info(domain, r))
            .filter(|c| match &wanted_category {
                Some(cat) => c.category == *cat,
                None => {
                    by_category
                        || needle.is_empty()
                        || c.name.to_lowercase().contains(&needle)
                        || c.uri.to_lowercase().contains(&needle)
                        || c.description.to_lowercase().contains(&needle)
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.truncate(SEARCH_LIMIT as usize);
        Ok(out)
    }

    /// The rooms of an extended search with their standing members: managers (owners and
    /// admins, as channel operators) and members, from the stored affiliations. Only the
    /// first [`EXTENDED_ROOMS`] rooms get them (two store reads each).
    async fn with_members(&self, rooms: Vec<ChannelInfo>) -> Vec<(ChannelInfo, Vec<Member>)> {
        let store = &self.svc.ctx.store;
        let mut out = Vec::with_capacity(rooms.len());
        for (i, room) in rooms.into_iter().enumerate() {
            let mut members = Vec::new();
            let name = parse_channel_uri(&room.uri).map(|(_, v)| v.to_string());
            if let (true, Some(name)) = (i < EXTENDED_ROOMS, name) {
                if let Ok(Some(record)) = store.get_room(&name).await {
                    for a in store.affiliations(record.id).await.unwrap_or_default() {
                        let chanop = match a.affiliation {
                            Affiliation::Owner | Affiliation::Admin => true,
                            Affiliation::Member => false,
                            _ => continue,
                        };
                        members.push(Member {
                            uri: format!("sip:{}", a.user),
                            chanop,
                        });
                    }
                }
            }
            out.push((room, members));
        }
        out
    }

    async fn join(&mut self, to: &ReplyTo<'_>, channels: Vec<ChanId>) {
        let mut pending = PendingJoin {
            name: to.name.to_string(),
            seqid: to.seqid.to_string(),
            envid: to.envid,
            waiting: Vec::new(),
            done: Vec::new(),
            refused: None,
        };
        for chan in channels {
            let Some(room) = self.svc.room_of_channel(&chan.uri()) else {
                pending.refused.get_or_insert(Resp::NO_CHANNEL);
                continue;
            };
            if let Some(state) = self.rooms.get(&room) {
                if state.joining {
                    pending.waiting.push(room);
                } else {
                    pending.done.push(room);
                }
                continue;
            }
            match self.enter(&room).await {
                Ok(()) => pending.waiting.push(room),
                Err(resp) => {
                    pending.refused.get_or_insert(resp);
                }
            }
        }
        self.pending.push(pending);
        self.answer_finished_joins();
    }

    /// Sends the room a join as this session (the user's local part as nick, the whole
    /// address when that is taken); the join sequence then arrives as events.
    async fn enter(&mut self, room: &str) -> Result<(), Resp> {
        let engine = self.svc.ctx.engine.clone();
        let info = engine.room_info(room).await.ok_or(Resp::NO_CHANNEL)?;
        let domain = self.svc.domain.clone();
        let mut state = RoomState::new(
            room,
            &domain,
            &self.svc.room_domain,
            channel_info(&domain, &info),
        );
        state.whois_anyone = info.config.whois == Whois::Anyone;
        self.rooms.insert(room.to_string(), state);
        let user = self.session.user.clone();
        let mut result = Err(RoomError::Conflict);
        for nick in [user.local().to_string(), user.to_string()] {
            let req = JoinRequest {
                client: ClientRef {
                    id: self.session.client,
                    user: user.clone(),
                    resource: Arc::from("xccos"),
                    sink: self.sink.clone(),
                    protocol: ClientProtocol::Sip,
                },
                nick,
                password: None,
                history: HistoryRequest {
                    max_stanzas: Some(0),
                    ..HistoryRequest::default()
                },
                payload: None,
                create: false,
                instant: true,
            };
            result = engine
                .ask(room, |reply| RoomCommand::Join { req, reply })
                .await;
            if result != Err(RoomError::Conflict) {
                break;
            }
        }
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                self.rooms.remove(room);
                tracing::debug!(user = %user, room, error = %e, "XCCOS join refused");
                Err(Resp::from_room_error(&e))
            }
        }
    }

    async fn context(
        &mut self,
        channel: &str,
        last: u32,
    ) -> Result<palaver_dialects::xmpp::element::Element, Resp> {
        let room = self.svc.room_of_channel(channel).ok_or(Resp::NO_CHANNEL)?;
        let real = match self.rooms.get(&room) {
            Some(state) => state.sees_real_addresses(),
            None => {
                let info = self
                    .svc
                    .ctx
                    .engine
                    .room_info(&room)
                    .await
                    .ok_or(Resp::NO_CHANNEL)?;
                info.config.whois == Whois::Anyone
            }
        };
        let query = HistoryQuery {
            limit: last,
            from_end: true,
            ..HistoryQuery::default()
        };
        let actor_user = self.session.user.clone();
        let page = self
            .svc
            .ctx
            .engine
            .ask(&room, |reply| RoomCommand::QueryArchive {
                actor_user,
                query,
                after_id: None,
                before_id: None,
                reply,
            })
            .await
            .map_err(|e| Resp::from_room_error(&e))?;
        let authors: Vec<String> = page
            .messages
            .iter()
            .map(|m| {
                let real = real || m.sender == self.session.user;
                occupant_uri(&m.sender, &m.nick, &room, &self.svc.room_domain, real)
            })
            .collect();
        let channel = channel_uri(&self.svc.domain, &room);
        let messages: Vec<ChatMessage<'_>> = page
            .messages
            .iter()
            .zip(&authors)
            .map(|(m, author)| ChatMessage {
                channel: &channel,
                author,
                ts_millis: m.ts,
                text: &m.body,
                seq: m.seq,
            })
            .collect();
        Ok(encode::context_data(&channel, &messages))
    }

    async fn part(&mut self, channel: &str) -> Resp {
        let Some(room) = self.svc.room_of_channel(channel) else {
            return Resp::NO_CHANNEL;
        };
        if self.rooms.remove(&room).is_none() {
            return Resp::NOT_IN_CHANNEL;
        }
        self.join_failed(&room, Resp::NOT_IN_CHANNEL);
        let cmd = RoomCommand::Leave {
            client: self.session.client,
            status: None,
        };
        self.svc.ctx.engine.send(&room, cmd).await;
        Resp::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_uuid_shaped_and_per_domain() {
        let a = derived_uuid("root", "localhost");
        assert_eq!(a, derived_uuid("root", "localhost"));
        assert_ne!(a, derived_uuid("root", "example.org"));
        assert_ne!(a, derived_uuid("db", "localhost"));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }
}
