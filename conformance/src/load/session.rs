//! One load session — one tokio task per connection: log in, join the user's room (the room's
//! first user creates it; the others wait until it exists), then, in one loop that always keeps
//! reading the socket, post on schedule (or closed-loop), count and time the posts that come
//! back, answer the coordinator's phase changes (chat window, ping round, stop) and send a
//! whitespace keep-alive when quiet. Every wait is bounded by a step timeout or the run's hard
//! deadline; errors are counted by kind and end the session.

use super::config::{Mode, Rate};
use super::stamp::{self, Stamp};
use super::stats::{micros, Recorder};
use super::users::User;
use super::{Phase, Shared};
use crate::client::{body_text, error_condition, Client, ClientError, ErrorKind};
use palaver_dialects::xmpp::element::Element;
use palaver_dialects::xmpp::escape::escape_attr;
use std::io::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{sleep_until, timeout_at, Instant};

const NS_DELAY: &str = "urn:xmpp:delay";
/// Logs user `idx` in over XMPP from its source address (round-robin), bounded by the run's
/// hard deadline.
pub async fn login(shared: &Shared, idx: usize, user: &User) -> Result<Client, ClientError> {
    let cfg = &shared.cfg;
    let source = cfg.sources.get(idx % cfg.sources.len().max(1)).copied();
    timeout_at(
        shared.hard_deadline,
        Client::login(shared.connect_for(idx), source, &user.name, &user.password),
    )
    .await
    .unwrap_or_else(|_| Err(ClientError::new(ErrorKind::Timeout, "hard deadline")))
}

/// Runs session `idx` to its end. `permit` (a login slot) is released once it is in its room.
pub async fn run(shared: Arc<Shared>, idx: usize, permit: OwnedSemaphorePermit) {
    let Some(user) = shared.users.get(idx) else {
        return;
    };
    let cfg = &shared.cfg;
    let stats = &shared.stats;
    let room_i = idx % cfg.rooms.len();
    let room = &cfg.rooms[room_i];
    let creator = idx < cfg.rooms.len();
    let t0 = Instant::now();
    let mut client = match login(&shared, idx, user).await {
        Ok(c) => c,
        Err(e) => {
            stats.error(&user.name, &e);
            stats.failed.fetch_add(1, Relaxed);
            if creator {
                shared.room_ready[room_i].send_replace(true);
            }
            return;
        }
    };
    stats.established.fetch_add(1, Relaxed);
    stats.session_up();
    if !creator {
        // Until the room's first user has created (and unlocked) it, or given up.
        let mut ready = shared.room_ready[room_i].subscribe();
        let wait = (Instant::now() + cfg.timeout() * 4).min(shared.hard_deadline);
        let _ = timeout_at(wait, ready.wait_for(|r| *r)).await;
    }
    let deadline = (Instant::now() + cfg.timeout()).min(shared.hard_deadline);
    let joined = client.join(room, &user.name, deadline).await;
    if creator {
        shared.room_ready[room_i].send_replace(true);
    }
    if let Err(e) = joined {
        stats.error(&user.name, &e);
        stats.failed.fetch_add(1, Relaxed);
        stats.session_down();
        client.close().await;
        return;
    }
    drop(permit);
    stats.joined_room(idx, room_i, micros(t0.elapsed()), shared.now_us());

    let mut live = Live::new(&shared, idx, room_i);
    let result = live.run(&mut client).await;
    drop(live);
    match result {
        Ok(()) => client.close().await,
        Err(e) => stats.error(&user.name, &e),
    }
    stats.session_down();
}

/// The state of a session that is in its room.
struct Live<'a> {
    shared: &'a Shared,
    idx: usize,
    room_i: usize,
    poster: bool,
    seq: u64,
    /// `<message to='ROOM' type='groupchat' id='` — written once, reused for every post.
    prefix: Vec<u8>,
    out: Vec<u8>,
    latency: Recorder,
    echo: Recorder,
    lag: Recorder,
    seen: stamp::Seen,
    /// Next scheduled post (rate mode) or the next closed-loop post.
    next_post: Option<Instant>,
    chat_end: Option<Instant>,
    /// Closed loop: the post we wait to see reflected, and until when.
    awaiting: Option<(u64, Instant)>,
    ping_sent_us: Option<u64>,
    last_write: Instant,
}

impl<'a> Live<'a> {
    fn new(shared: &'a Shared, idx: usize, room_i: usize) -> Live<'a> {
        let cfg = &shared.cfg;
        let position = idx / cfg.rooms.len();
        let poster = cfg.mode == Mode::Chat && cfg.posters.is_none_or(|p| position < p);
        let mut prefix = Vec::with_capacity(80);
        prefix.extend_from_slice(b"<message type='groupchat' to='");
        escape_attr(&cfg.rooms[room_i], &mut prefix);
        prefix.extend_from_slice(b"' id='");
        let stats = &shared.stats;
        Live {
            shared,
            idx,
            room_i,
            poster,
            seq: 0,
            prefix,
            out: Vec::new(),
            latency: Recorder::new(stats.latency.clone(), idx),
            echo: Recorder::new(stats.echo.clone(), idx),
            lag: Recorder::new(stats.send_lag.clone(), idx),
            seen: stamp::Seen::default(),
            next_post: None,
            chat_end: None,
            awaiting: None,
            ping_sent_us: None,
            last_write: Instant::now(),
        }
    }

    /// Until the coordinator says stop (`Ok`) or the session fails.
    async fn run(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let mut phase_rx = self.shared.phase.subscribe();
        let phase = *phase_rx.borrow_and_update();
        if self.on_phase(client, phase).await? {
            return Ok(());
        }
        let keepalive = self.shared.cfg.keepalive();
        loop {
            while let Some(el) = client.next_buffered()? {
                if self.on_stanza(&el) {
                    self.post(client).await?;
                }
            }
            let wake = [
                self.next_post,
                self.awaiting.map(|a| a.1),
                Some(self.last_write + keepalive),
                Some(self.shared.hard_deadline),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.shared.hard_deadline);
            tokio::select! {
                biased;
                changed = phase_rx.changed() => {
                    let phase = match changed {
                        Ok(()) => *phase_rx.borrow_and_update(),
                        Err(_) => Phase::Stop,
                    };
                    if self.on_phase(client, phase).await? {
                        return Ok(());
                    }
                }
                read = client.read_more() => read?,
                () = sleep_until(wake) => self.on_timer(client).await?,
            }
        }
    }

    /// Reacts to a phase; `true` means stop.
    async fn on_phase(&mut self, client: &mut Client, phase: Phase) -> Result<bool, ClientError> {
        match phase {
            Phase::Ramp => {}
            Phase::Chat { start, end } => {
                self.chat_end = Some(end);
                if self.poster {
                    self.next_post = Some(self.shared.cfg.rate.first_post(self.idx, start));
                }
            }
            Phase::Ping => {
                if self.ping_sent_us.is_none() {
                    let mut iq = Vec::with_capacity(100);
                    iq.extend_from_slice(b"<iq type='get' id='load-ping' to='");
                    escape_attr(&self.shared.cfg.domain, &mut iq);
                    iq.extend_from_slice(b"'><ping xmlns='urn:xmpp:ping'/></iq>");
                    self.ping_sent_us = Some(self.shared.now_us());
                    client.send(&iq).await?;
                    self.last_write = Instant::now();
                }
            }
            Phase::Stop => return Ok(true),
        }
        Ok(false)
    }

    async fn on_timer(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let now = Instant::now();
        if now >= self.shared.hard_deadline {
            return Err(ClientError::new(ErrorKind::Timeout, "hard deadline"));
        }
        if let Some((seq, until)) = self.awaiting {
            if now >= until {
                self.awaiting = None;
                self.shared.stats.error(
                    &self.shared.users[self.idx].name,
                    &ClientError::new(
                        ErrorKind::Timeout,
                        format!("post {seq} not reflected by the room"),
                    ),
                );
                self.next_post = Some(now);
            }
        }
        if let Some(at) = self.next_post {
            if now >= at {
                if self.chat_end.is_none_or(|end| now >= end) {
                    self.next_post = None;
                } else {
                    self.lag.record(micros(now - at));
                    self.post(client).await?;
                    self.next_post = self.shared.cfg.rate.next_post(at);
                }
            }
        }
        if now >= self.last_write + self.shared.cfg.keepalive() {
            client.send(b" ").await?;
            self.last_write = now;
        }
        Ok(())
    }

    /// Posts the next message to the room.
    async fn post(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let now = Instant::now();
        if self.chat_end.is_none_or(|end| now >= end) {
            return Ok(());
        }
        self.seq += 1;
        let shared = self.shared;
        self.out.clear();
        self.out.extend_from_slice(&self.prefix);
        let _ = write!(self.out, "{}-{}'><body>", self.idx, self.seq);
        let stamp = Stamp {
            sender: u32::try_from(self.idx).unwrap_or(u32::MAX),
            seq: self.seq,
            sent_us: shared.now_us(),
        };
        stamp::write_body(&mut self.out, shared.run_id, stamp, shared.cfg.size);
        self.out.extend_from_slice(b"</body></message>");
        client.send(&self.out).await?;
        self.last_write = now;
        shared.stats.sent.fetch_add(1, Relaxed);
        shared.stats.room_sent[self.room_i].fetch_add(1, Relaxed);
        if shared.cfg.rate == Rate::ClosedLoop {
            self.awaiting = Some((self.seq, now + shared.cfg.timeout()));
        }
        Ok(())
    }

    /// Counts a stanza; `true` means post the next message now (closed loop).
    fn on_stanza(&mut self, el: &Element) -> bool {
        let shared = self.shared;
        let stats = &shared.stats;
        match el.name.as_str() {
            "message" if el.attr("type") == Some("error") => {
                stats.error(
                    &shared.users[self.idx].name,
                    &ClientError::new(
                        ErrorKind::MessageError,
                        format!("post refused: {}", error_condition(el)),
                    ),
                );
                false
            }
            "message" => {
                if el.get_child("delay", NS_DELAY).is_some() {
                    return false;
                }
                let Some(stamp) = body_text(el).and_then(|b| stamp::parse(b, shared.run_id)) else {
                    return false;
                };
                let now_us = shared.now_us();
                let latency = now_us.saturating_sub(stamp.sent_us);
                if stamp.sender as usize == self.idx {
                    stats.echoed.fetch_add(1, Relaxed);
                    self.echo.record(latency);
                    if self.awaiting.is_some_and(|(seq, _)| seq == stamp.seq) {
                        self.awaiting = None;
                        return self.chat_end.is_some_and(|end| Instant::now() < end);
                    }
                } else if !self.seen.first_time(&stamp) {
                    stats.duplicates.fetch_add(1, Relaxed);
                } else {
                    stats.delivered.fetch_add(1, Relaxed);
                    stats.last_delivery_us.fetch_max(now_us, Relaxed);
                    self.latency.record(latency);
                }
                false
            }
            "iq" if el.attr("id") == Some("load-ping") => {
                if let Some(sent) = self
                    .ping_sent_us
                    .filter(|_| !matches!(el.attr("type"), Some("get" | "set")))
                {
                    let rtt = shared.now_us().saturating_sub(sent);
                    stats.ping.add(self.idx, &[rtt]);
                    stats.pinged.fetch_add(1, Relaxed);
                    if rtt < 1_000_000 {
                        stats.healthy.fetch_add(1, Relaxed);
                    }
                }
                false
            }
            _ => false,
        }
    }
}
