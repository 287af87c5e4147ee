//! [`XccosClient`]: a replay of pidgin-sipe's group chat (MS-XCCOSIP: Lync Persistent Chat
//! over a SIP INVITE dialog carrying XCCOS envelopes in INFO requests), on top of
//! [`SipClient`] and its INVITE dialogs.
//!
//! The session, as sipe's `sipe_groupchat_init` and `sipe_groupchat_invite_response` run it
//! ([`XccosClient::start`]): REGISTER; INVITE the lookup URI (`sip:ocschat@<domain>`); INFO
//! `cmd:requri`; read the pool URI from the server's `rpl:requri`; BYE the lookup dialog; INVITE
//! the pool URI; then `cmd:bjoin` of the rooms queued for rejoining, and `cmd:getinv`. The
//! session timer is not scheduled: a test refreshes with [`XccosClient::refresh`] (UPDATE).
//! Room operations (search, join with history, messages, part) are in `xccos_client/rooms.rs`,
//! event reading in `xccos_client/wait.rs`, payloads in `envelope.rs` and `events.rs`.
//!
//! Server INFOs are answered as sipe answers them — 200 on the live Call-ID, 487 on any other
//! (see [`DialogAnswers`]) — and every one is recorded ([`XccosClient::server_infos`]). The
//! bodies of those answered 200 are parsed into [`XccosEvent`]s and queued until read
//! ([`XccosClient::next_event`], [`XccosClient::wait_for`]).

pub mod envelope;
mod events;
#[cfg(test)]
mod mock_tests;
mod rooms;
mod wait;

pub use envelope::{escape, timestamp, XCCOS_NS};
pub use events::{
    parse_body, ChatMessage, Member, Reply, Room, RoomInfo, XccosEvent, AIB_CHANOP, AIB_USERS,
};

use crate::server::TestServer;
use crate::sip_client::invite::{DialogAnswers, InviteDialog};
use crate::sip_client::{InboundRequest, SipClient, SipTransport};
use anyhow::{anyhow, bail, Context as _, Result};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default lookup URI of [`crate::DOMAIN`].
pub const LOOKUP_URI: &str = "sip:ocschat@localhost";

/// The User-Agent sent on every request (shaped like sipe's).
pub const USER_AGENT: &str = "Purple/2.14.12 Sipe/1.25.0 (linux-x86_64)";

/// One group-chat user over SIP, behaving as pidgin-sipe does.
pub struct XccosClient {
    sip: SipClient,
    answers: DialogAnswers,
    transport: SipTransport,
    server: SocketAddr,
    user: String,
    password: String,
    ca: PathBuf,
    /// REGISTER before the first INVITE of a connection (true, as sipe); false leaves the
    /// INVITEs to be digest-challenged (407).
    pub register_first: bool,
    registered: bool,
    /// The next envelope id (starts random, +1 per envelope).
    envid: u32,
    /// The chat-server (pool) dialog.
    dialog: Option<InviteDialog>,
    pool_uri: Option<String>,
    /// Call-IDs of dialogs we left (BYE, abandoned, or lost in a crash).
    obsolete: Vec<String>,
    /// Rooms joined, in order (what a reconnect rejoins).
    joined: Vec<String>,
    /// Rooms to `cmd:bjoin` once the chat-server dialog is up.
    join_queue: Vec<String>,
    events: VecDeque<XccosEvent>,
    infos: Vec<InboundRequest>,
    /// Bound of each wait for a reply.
    pub timeout: Duration,
}

impl XccosClient {
    /// Connects `user` (`alice` or `alice@localhost`) over `transport` to `server`, trusting
    /// the CA in `ca` (TLS). Nothing is sent until [`XccosClient::start`].
    pub async fn connect(
        transport: SipTransport,
        server: SocketAddr,
        user: &str,
        password: &str,
        ca: &Path,
    ) -> Result<XccosClient> {
        let sip = SipClient::connect(transport, server, user, password, ca).await?;
        Ok(XccosClient::over(sip, user, password, ca))
    }

    /// The client over `sip` (connected as `user` with `password`, trusting `ca`), which it
    /// answers by dialog from now on.
    fn over(mut sip: SipClient, user: &str, password: &str, ca: &Path) -> XccosClient {
        let answers = sip.answer_by_dialog();
        XccosClient {
            transport: sip.transport(),
            server: sip.server_addr(),
            sip,
            answers,
            user: user.to_string(),
            password: password.to_string(),
            ca: ca.to_path_buf(),
            register_first: true,
            registered: false,
            envid: random_u32(),
            dialog: None,
            pool_uri: None,
            obsolete: Vec::new(),
            joined: Vec::new(),
            join_queue: Vec::new(),
            events: VecDeque::new(),
            infos: Vec::new(),
            timeout: crate::STEP_TIMEOUT,
        }
    }

    /// [`XccosClient::connect`] to `server`'s SIP listener for `transport`.
    pub async fn connect_to(
        server: &TestServer,
        transport: SipTransport,
        user: &str,
        password: &str,
    ) -> Result<XccosClient> {
        let sip = SipClient::connect_to(server, transport, user, password).await?;
        Ok(XccosClient::over(sip, user, password, &server.ca_path()))
    }

    /// Opens the group-chat session through `lookup_uri` (see the module doc); returns the
    /// rooms rejoined by `cmd:bjoin` (with their history), empty when none were queued.
    /// Called again while a session is up, it abandons the old dialog without BYE (its
    /// Call-ID becomes obsolete), as after a crash.
    pub async fn start(&mut self, lookup_uri: &str) -> Result<Vec<Room>> {
        if let Some(old) = self.dialog.take() {
            self.forget(&old.call_id);
        }
        if self.register_first && !self.registered {
            let code = self.sip.register(600).await?;
            if code != 200 {
                bail!("REGISTER {} was answered {code}", self.sip.aor());
            }
            self.registered = true;
        }
        let mut lookup = self.invite(lookup_uri).await?;
        let envid = self.next_envid();
        let body = envelope::envelope(envid, &envelope::requri());
        let status = self
            .sip
            .info(
                &mut lookup,
                &[("User-Agent", USER_AGENT)],
                "text/plain",
                body.as_bytes(),
            )
            .await?;
        if !status.is_success() {
            bail!("INFO cmd:requri to {lookup_uri} was answered {status}");
        }
        let reply = self.reply("rpl:requri", envid).await?;
        let pool = reply
            .data
            .as_ref()
            .and_then(|d| d.children().find(|c| c.name == "uib"))
            .and_then(|u| u.attr("uri"))
            .map(str::to_string)
            .ok_or_else(|| {
                anyhow!(
                    "rpl:requri {} without data/uib/@uri: {}",
                    reply.code,
                    reply.data_xml()
                )
            })?;
        // Drop the lookup dialog (sipe_session_close), then INVITE the pool.
        self.sip
            .bye(&mut lookup, &[("User-Agent", USER_AGENT)])
            .await?;
        self.forget(&lookup.call_id);
        let dialog = self.invite(&pool).await?;
        self.pool_uri = Some(pool);
        self.dialog = Some(dialog);
        let mut rejoined = Vec::new();
        let queue = std::mem::take(&mut self.join_queue);
        let bjoin = if queue.is_empty() {
            None
        } else {
            let cmd = envelope::bjoin(&queue)
                .ok_or_else(|| anyhow!("a malformed room URI among {queue:?}"))?;
            Some(self.send_command(&cmd).await?)
        };
        let getinv = envelope::getinv(self.sip.aor().rsplit('@').next().unwrap_or(crate::DOMAIN));
        self.send_command(&getinv).await?;
        if let Some(envid) = bjoin {
            let reply = self.reply("rpl:bjoin", envid).await?;
            rejoined = self.joined_rooms(&reply).await?;
        }
        Ok(rejoined)
    }

    /// UPDATE in the chat-server dialog (sipe's session timer); returns the status (481: the
    /// server dropped the session — sipe then BYEs and starts again).
    pub async fn refresh(&mut self) -> Result<u16> {
        let dialog = self.dialog.as_mut().context("no chat-server dialog")?;
        let response = self
            .sip
            .update(dialog, &[("User-Agent", USER_AGENT)])
            .await?;
        Ok(response.code)
    }

    /// BYE of the chat-server dialog; returns the status.
    pub async fn bye(&mut self) -> Result<u16> {
        let mut dialog = self.dialog.take().context("no chat-server dialog")?;
        let response = self
            .sip
            .bye(&mut dialog, &[("User-Agent", USER_AGENT)])
            .await;
        self.forget(&dialog.call_id);
        self.joined.clear();
        Ok(response?.code)
    }

    /// Drops the connection without BYE or part, as a Pidgin crash does, and opens a new
    /// silent one in its place: the old Call-ID becomes obsolete and the rooms joined are
    /// queued, so the next [`XccosClient::start`] rejoins them with `cmd:bjoin`.
    pub async fn crash(&mut self) -> Result<()> {
        let mut sip = SipClient::connect(
            self.transport,
            self.server,
            &self.user,
            &self.password,
            &self.ca,
        )
        .await
        .context("reconnecting after the crash")?;
        let answers = sip.answer_by_dialog();
        drop(std::mem::replace(&mut self.sip, sip));
        self.answers = answers;
        self.registered = false;
        if let Some(old) = self.dialog.take() {
            self.obsolete.push(old.call_id);
        }
        for uri in std::mem::take(&mut self.joined) {
            self.queue_join(&uri);
        }
        self.events.clear();
        Ok(())
    }

    /// Queues `chan_uri` for the `cmd:bjoin` of the next [`XccosClient::start`] (as sipe
    /// queues joins while not connected); duplicates are ignored.
    pub fn queue_join(&mut self, chan_uri: &str) {
        if !self.join_queue.iter().any(|u| u == chan_uri) {
            self.join_queue.push(chan_uri.to_string());
        }
    }

    /// The Call-ID of the chat-server dialog.
    pub fn call_id(&self) -> Option<&str> {
        self.dialog.as_ref().map(|d| d.call_id.as_str())
    }

    /// The chat-server dialog.
    pub fn dialog(&self) -> Option<&InviteDialog> {
        self.dialog.as_ref()
    }

    /// Session-Expires of the chat-server dialog.
    pub fn session_expires(&self) -> Option<u32> {
        self.dialog.as_ref().and_then(|d| d.session_expires)
    }

    /// The pool URI of the last `rpl:requri`.
    pub fn pool_uri(&self) -> Option<&str> {
        self.pool_uri.as_deref()
    }

    /// Call-IDs of dialogs left behind (BYE, abandoned by a new start, or crashed).
    pub fn obsolete_call_ids(&self) -> &[String] {
        &self.obsolete
    }

    /// Rooms joined (and not parted) in this session.
    pub fn joined(&self) -> &[String] {
        &self.joined
    }

    /// `sip:user@domain`.
    pub fn aor(&self) -> String {
        self.sip.aor()
    }

    /// The SIP user agent underneath (raw requests, inbox, settings).
    pub fn sip(&mut self) -> &mut SipClient {
        &mut self.sip
    }

    // ----- internals -----

    /// INVITEs `uri` as sipe does (`sipe_im_invite`) and marks the dialog live.
    async fn invite(&mut self, uri: &str) -> Result<InviteDialog> {
        let local = self.sip.local_addr();
        let transport = self.transport.via_token().to_ascii_lowercase();
        let contact = format!(
            "<sip:{}:{};maddr={};transport={transport}>;proxy=replace",
            self.sip.aor().trim_start_matches("sip:"),
            local.port(),
            local.ip()
        );
        let marker = if local.is_ipv4() { "IP4" } else { "IP6" };
        let sdp = format!(
            "v=0\r\no=- 0 0 IN {marker} {ip}\r\ns=session\r\nc=IN {marker} {ip}\r\nt=0 0\r\n\
             m=message {port} sip null\r\na=accept-types:text/plain text/html image/gif \
             multipart/alternative application/im-iscomposing+xml application/ms-imdn+xml \
             text/x-msmsgsinvite\r\n",
            ip = local.ip(),
            port = local.port()
        );
        let headers = [
            ("User-Agent", USER_AGENT),
            ("Supported", "ms-sender"),
            ("Contact", contact.as_str()),
        ];
        let dialog = self.sip.invite(uri, &headers, Some(&sdp)).await?;
        self.answers.open(&dialog.call_id);
        Ok(dialog)
    }

    fn forget(&mut self, call_id: &str) {
        self.answers.end(call_id);
        self.obsolete.push(call_id.to_string());
    }

    fn next_envid(&mut self) -> u32 {
        let envid = self.envid;
        self.envid = self.envid.wrapping_add(1);
        envid
    }

    /// Sends `inner` in an envelope in the chat-server dialog; fails unless answered 2xx.
    /// Returns the envid.
    async fn send_command(&mut self, inner: &str) -> Result<u32> {
        let (code, envid) = self.send_envelope(inner).await?;
        if !(200..300).contains(&code) {
            bail!(
                "the INFO carrying {} was answered {code}",
                envelope_id(inner)
            );
        }
        Ok(envid)
    }

    /// Sends `inner` in an envelope in the chat-server dialog; returns (SIP status, envid).
    async fn send_envelope(&mut self, inner: &str) -> Result<(u16, u32)> {
        let envid = self.next_envid();
        let body = envelope::envelope(envid, inner);
        let dialog = self
            .dialog
            .as_mut()
            .context("no chat-server dialog (call start first)")?;
        let response = self
            .sip
            .info(
                dialog,
                &[("User-Agent", USER_AGENT)],
                "text/plain",
                body.as_bytes(),
            )
            .await?;
        Ok((response.code, envid))
    }

    /// Waits for the reply `id` to the envelope `envid` (when the reply names one).
    async fn reply(&mut self, id: &str, envid: u32) -> Result<Reply> {
        let event = self
            .wait_for(
                id,
                |e| {
                    matches!(e, XccosEvent::Reply(r)
                        if r.id.eq_ignore_ascii_case(id) && r.envid.is_none_or(|x| x == envid))
                },
                self.timeout,
            )
            .await?;
        match event {
            XccosEvent::Reply(r) => Ok(r),
            other => bail!("not a reply: {other:?}"),
        }
    }
}

impl std::fmt::Debug for XccosClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XccosClient")
            .field("sip", &self.sip)
            .field("call_id", &self.call_id())
            .field("joined", &self.joined)
            .finish_non_exhaustive()
    }
}

/// The `id` of the first element of `inner` (`cmd:join`), for messages.
fn envelope_id(inner: &str) -> &str {
    inner
        .split("id=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("a command")
}

/// A random starting envid (sipe: `rand()`).
fn random_u32() -> u32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & 0x7fff_ffff
}
