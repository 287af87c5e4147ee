//! Every cross case, grouped by area: entering, leaving and rosters ([`roster`]), posts both
//! ways ([`posts`]), history and the archive ([`history`]), nicks and the subject
//! ([`naming`]), moderation ([`moderation`]). [`Scene`] is the usual start: the XMPP owner's
//! fresh room with the SIP user in it.

/// Runs `$body` (with `$s`: `&mut Scene`) on the scene `$open` makes and always closes it.
macro_rules! with_scene {
    ($open:expr, |$s:ident| $body:expr) => {{
        let mut scene = $open.await?;
        let result: anyhow::Result<$crate::suite::case::Outcome> = async {
            let $s = &mut scene;
            $body
        }
        .await;
        scene.close().await;
        result
    }};
}

mod history;
mod moderation;
mod naming;
mod posts;
mod roster;

use super::ctx::{CrossCase, CrossCtx, Room};
use super::pager::Pager;
use super::room::{self, available};
use crate::suite::session::Session;
use crate::suite::xml::{attr, is_groupchat_body, presence_from};
use anyhow::{ensure, Result};
use palaver_dialects::xmpp::element::Element;

/// Every case, in run order.
pub fn all() -> Vec<CrossCase> {
    let mut v = Vec::new();
    v.extend(roster::cases());
    v.extend(posts::cases());
    v.extend(history::cases());
    v.extend(naming::cases());
    v.extend(moderation::cases());
    v
}

/// A room owned by user 0 over XMPP with the SIP user in it (`#join <sip nick>`, answered
/// 2xx, seen by the owner as an available presence).
pub struct Scene {
    pub owner: Session,
    pub room: Room,
    pub sip: Pager,
    pub nick: String,
    /// The SIP occupant's presence as the owner got it (`None` before it joins).
    pub seen: Option<Element>,
}

impl Scene {
    /// Creates the room (configuration `fields`) and registers the SIP user, not in it yet.
    pub async fn bare(cx: &CrossCtx, fields: &[(&str, &str)]) -> Result<Scene> {
        let (owner, room) = room::create(cx, fields).await?;
        let sip = match Pager::open(cx).await {
            Ok(p) => p,
            Err(e) => {
                room::destroy(owner, &room).await;
                return Err(e);
            }
        };
        Ok(Scene {
            owner,
            room,
            sip,
            nick: cx.sip_nick(),
            seen: None,
        })
    }

    /// Creates the room (configuration `fields`), registers the SIP user and joins it.
    pub async fn open(cx: &CrossCtx, fields: &[(&str, &str)]) -> Result<Scene> {
        let mut s = Scene::bare(cx, fields).await?;
        match s.join().await {
            Ok(()) => Ok(s),
            Err(e) => {
                s.close().await;
                Err(e)
            }
        }
    }

    /// The SIP user sends `#join <nick>`: 2xx, then the owner sees it arrive.
    pub async fn join(&mut self) -> Result<()> {
        let nick = self.nick.clone();
        self.sip
            .send_ok(&self.room, &format!("#join {nick}"))
            .await?;
        let seen = room::presence(
            &mut self.owner,
            &self.room,
            &nick,
            "the SIP occupant's presence",
            available,
        )
        .await?;
        self.seen = Some(seen);
        Ok(())
    }

    /// Ends the SIP session and destroys the room.
    pub async fn close(self) {
        self.sip.close().await;
        room::destroy(self.owner, &self.room).await;
    }
}

impl Scene {
    /// Sends `command` (a `#join` or post the room should refuse) and checks the refusal: the
    /// SIP user is told (a non-2xx answer, or a MESSAGE from the room), and the XMPP owner, up
    /// to its own marker post, sees no presence from room/`nick`, and neither `command` nor the
    /// SIP user's next post as groupchat.
    pub async fn refused(&mut self, cx: &CrossCtx, command: &str, nick: &str) -> Result<()> {
        if self.seen.is_some() {
            self.catch_up(cx).await?;
        }
        let status = self.sip.send(&self.room, command).await?;
        if (200..300).contains(&status) {
            self.sip
                .recv(&self.room, "a MESSAGE refusing it", |_| true)
                .await
                .map_err(|e| {
                    anyhow::anyhow!("{command} answered {status} and not refused: {e:#}")
                })?;
        }
        let post = cx.unique("refused");
        let _ = self.sip.send(&self.room, &post).await?;
        let marker = cx.unique("marker");
        let before = self.owner_marker(&marker).await?;
        let occupant = self.room.occupant(nick);
        let room = self.room.jid.clone();
        let wrong = before.iter().find(|e| {
            presence_from(e, &occupant)
                || is_groupchat_body(e, &room, &post)
                || is_groupchat_body(e, &room, command)
        });
        ensure!(wrong.is_none(), "after {command}: {wrong:?}");
        Ok(())
    }

    /// The owner posts a marker and the SIP occupant reads everything up to it, so that the
    /// next MESSAGE it reads came after.
    pub async fn catch_up(&mut self, cx: &CrossCtx) -> Result<()> {
        let marker = cx.unique("marker");
        self.owner.say(&self.room.jid, &marker).await?;
        self.sip
            .collect(&self.room, "the marker", |i| i.body.contains(&marker))
            .await?;
        Ok(())
    }

    /// The owner posts `marker` and collects everything up to its reflection.
    pub async fn owner_marker(&mut self, marker: &str) -> Result<Vec<Element>> {
        let id = self.owner.id();
        let room = self.room.jid.clone();
        self.owner
            .send(&format!(
                "<message type='groupchat' to='{}' id='{id}'><body>{}</body></message>",
                attr(&room),
                attr(marker)
            ))
            .await?;
        self.owner
            .collect("the marker's reflection", |e| {
                is_groupchat_body(e, &room, marker)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn every_case_has_its_own_id_and_a_clause() {
        let all = super::all();
        let ids: HashSet<&str> = all.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), all.len(), "an id is used twice");
        for c in &all {
            assert!(c.id.starts_with("cross."), "{}", c.id);
            assert!(!c.clause.is_empty(), "{} cites no clause", c.id);
        }
    }
}
