//! Room operations of an [`XccosClient`], each as pidgin-sipe sends it: the room list
//! (`cmd:chansrch`), joining (`cmd:join`, then `cmd:bccontext` for the last 25 messages of
//! each room in `rpl:join`), room messages (`grpchat`), leaving (`cmd:part`), and any raw
//! command.

use super::envelope;
use super::events::{parse_history, parse_join, parse_rooms, Reply, Room, RoomInfo};
use super::XccosClient;
use anyhow::{anyhow, bail, Result};
use std::time::SystemTime;

impl XccosClient {
    /// Every room (`cmd:chansrch` with empty criteria).
    pub async fn rooms(&mut self) -> Result<Vec<RoomInfo>> {
        self.search("").await
    }

    /// Rooms whose name matches `criteria` (`qtype="BYNAME"`).
    pub async fn search(&mut self, criteria: &str) -> Result<Vec<RoomInfo>> {
        let reply = self
            .call(&envelope::chansrch(criteria), "rpl:chansrch")
            .await?;
        let data = ok_data(&reply)?;
        Ok(data.map(parse_rooms).unwrap_or_default())
    }

    /// Sends `inner` (a `<cmd>` or `<grpchat>` element) in an envelope; returns the SIP status
    /// of the INFO.
    pub async fn command(&mut self, inner: &str) -> Result<u16> {
        Ok(self.send_envelope(inner).await?.0)
    }

    /// `cmd:getserverinfo` (Lync sends it; sipe does not) → `rpl:getserverinfo`.
    pub async fn server_info(&mut self) -> Result<Reply> {
        self.call(&envelope::getserverinfo(), "rpl:getserverinfo")
            .await
    }

    /// Sends `inner` (must be answered 2xx) and waits for the reply `reply_id`.
    pub async fn call(&mut self, inner: &str, reply_id: &str) -> Result<Reply> {
        let envid = self.send_command(inner).await?;
        self.reply(reply_id, envid).await
    }

    /// Joins `chan_uri` (`ma-chan://localhost/lobby`) as sipe does: `cmd:join`, then
    /// `cmd:bccontext` for each room of the `rpl:join`. Returns that room with members and
    /// history; a non-200 `rpl:join` is an error naming its code.
    pub async fn join(&mut self, chan_uri: &str) -> Result<Room> {
        let cmd =
            envelope::join(chan_uri).ok_or_else(|| anyhow!("malformed room URI {chan_uri:?}"))?;
        let reply = self.call(&cmd, "rpl:join").await?;
        let rooms = self.joined_rooms(&reply).await?;
        let index = rooms.iter().position(|r| r.uri == chan_uri).unwrap_or(0);
        rooms
            .into_iter()
            .nth(index)
            .ok_or_else(|| anyhow!("rpl:join without a chanib: {}", reply.data_xml()))
    }

    /// The last 25 messages of `chan_uri` (`cmd:bccontext`), oldest first as sent.
    pub async fn history(&mut self, chan_uri: &str) -> Result<Vec<super::ChatMessage>> {
        let reply = self
            .call(&envelope::bccontext(chan_uri), "rpl:bccontext")
            .await?;
        Ok(ok_data(&reply)?.map(parse_history).unwrap_or_default())
    }

    /// Sends `text` to `chan_uri` as a `grpchat` from us, stamped now; returns the SIP status
    /// of the INFO (200 once the server stored it; anything else: not delivered).
    pub async fn send(&mut self, chan_uri: &str, text: &str) -> Result<u16> {
        let ts = envelope::timestamp(SystemTime::now());
        let grpchat = envelope::grpchat(chan_uri, &self.aor(), &ts, text);
        self.command(&grpchat).await
    }

    /// Leaves `chan_uri` (`cmd:part`); returns the `rpl:part`.
    pub async fn part(&mut self, chan_uri: &str) -> Result<Reply> {
        let reply = self.call(&envelope::part(chan_uri), "rpl:part").await?;
        if reply.code == 200 {
            self.joined.retain(|u| u != chan_uri);
        }
        Ok(reply)
    }

    /// The rooms of a `rpl:join` / `rpl:bjoin`, each with its history (`cmd:bccontext`, as
    /// sipe asks right after joining); they count as joined.
    pub(super) async fn joined_rooms(&mut self, reply: &Reply) -> Result<Vec<Room>> {
        let mut rooms = ok_data(reply)?.map(parse_join).unwrap_or_default();
        for room in &mut rooms {
            if !self.joined.contains(&room.uri) {
                self.joined.push(room.uri.clone());
            }
            room.history = self.history(&room.uri).await?;
        }
        Ok(rooms)
    }
}

/// The data of a 200 reply; an error naming the code and message otherwise.
fn ok_data(reply: &Reply) -> Result<Option<&palaver_dialects::xmpp::element::Element>> {
    if reply.code != 200 {
        bail!("{} {} {}", reply.id, reply.code, reply.message);
    }
    Ok(reply.data.as_ref())
}
