//! The live phase of a SIP load session (in its room): one loop that always keeps reading,
//! posts stamped MESSAGEs on schedule (or closed-loop), tracks its requests in flight
//! (retransmitted over UDP from T1 doubling to T2 until answered or given up), counts a post's
//! `2xx` as its echo, answers every request from the server with 200 and times every line of
//! a room MESSAGE that carries a stamp, whatever prefix the server adds (palaver's `nick: `,
//! Kamailio imc's `[nick]: `); in idle mode it pings once with OPTIONS.

use super::config::{Mode, Rate, SipTransport};
use super::sip_session::TIMER_F;
use super::sip_ua::{Ua, T1, T2};
use super::stamp::{self, Stamp};
use super::stats::{micros, Recorder};
use super::{Phase, Shared};
use crate::client::{ClientError, ErrorKind};
use palaver_dialects::sip::{Method, SipMessage};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};

/// What a request of ours in flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Post { seq: u64, sent_us: u64 },
    Ping { sent_us: u64 },
}

/// A request in flight during the live phase.
struct Pending {
    cseq: u32,
    kind: Kind,
    bytes: Vec<u8>,
    /// Next UDP retransmission, and the interval after it.
    retx: Instant,
    interval: Duration,
    give_up: Instant,
    challenged: bool,
}

/// The state of a session that is in its room.
pub struct Live<'a> {
    shared: &'a Shared,
    idx: usize,
    room_i: usize,
    room_uri: String,
    poster: bool,
    seq: u64,
    body: Vec<u8>,
    latency: Recorder,
    echo: Recorder,
    lag: Recorder,
    seen: stamp::Seen,
    next_post: Option<Instant>,
    chat_end: Option<Instant>,
    pending: Vec<Pending>,
}

impl<'a> Live<'a> {
    pub fn new(shared: &'a Shared, idx: usize, room_i: usize, room_uri: String) -> Live<'a> {
        let cfg = &shared.cfg;
        let position = idx / cfg.rooms.len();
        let stats = &shared.stats;
        Live {
            shared,
            idx,
            room_i,
            room_uri,
            poster: cfg.mode == Mode::Chat && cfg.posters.is_none_or(|p| position < p),
            seq: 0,
            body: Vec::new(),
            latency: Recorder::new(stats.latency.clone(), idx),
            echo: Recorder::new(stats.echo.clone(), idx),
            lag: Recorder::new(stats.send_lag.clone(), idx),
            seen: stamp::Seen::default(),
            next_post: None,
            chat_end: None,
            pending: Vec::new(),
        }
    }

    fn closed_loop(&self) -> bool {
        self.shared.cfg.rate == Rate::ClosedLoop
    }

    /// Until the coordinator says stop (`Ok`) or the session fails.
    pub async fn run(&mut self, ua: &mut Ua) -> Result<(), ClientError> {
        let mut phase_rx = self.shared.phase.subscribe();
        let phase = *phase_rx.borrow_and_update();
        if self.on_phase(ua, phase).await? {
            return Ok(());
        }
        let udp = self.shared.cfg.sip_transport == SipTransport::Udp;
        loop {
            while let Some(m) = ua.conn.next_buffered() {
                self.on_message(ua, &m).await?;
            }
            let wake = self
                .pending
                .iter()
                .map(|p| {
                    if udp {
                        p.retx.min(p.give_up)
                    } else {
                        p.give_up
                    }
                })
                .chain(self.next_post)
                .chain(Some(self.shared.hard_deadline))
                .min()
                .unwrap_or(self.shared.hard_deadline);
            tokio::select! {
                biased;
                changed = phase_rx.changed() => {
                    let phase = match changed {
                        Ok(()) => *phase_rx.borrow_and_update(),
                        Err(_) => Phase::Stop,
                    };
                    if self.on_phase(ua, phase).await? {
                        return Ok(());
                    }
                }
                read = ua.conn.read_more() => read?,
                () = sleep_until(wake) => self.on_timer(ua, udp).await?,
            }
        }
    }

    /// Reacts to a phase; `true` means stop.
    async fn on_phase(&mut self, ua: &mut Ua, phase: Phase) -> Result<bool, ClientError> {
        match phase {
            Phase::Ramp => {}
            Phase::Chat { start, end } => {
                self.chat_end = Some(end);
                if self.poster {
                    self.next_post = Some(self.shared.cfg.rate.first_post(self.idx, start));
                }
            }
            Phase::Ping => {
                let uri = format!("sip:{}", ua.domain);
                let sent_us = self.shared.now_us();
                self.send(
                    ua,
                    Method::Options,
                    &uri,
                    None,
                    Kind::Ping { sent_us },
                    None,
                )
                .await?;
            }
            Phase::Stop => return Ok(true),
        }
        Ok(false)
    }

    async fn on_timer(&mut self, ua: &mut Ua, udp: bool) -> Result<(), ClientError> {
        let now = Instant::now();
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            if now >= p.give_up {
                let p = self.pending.swap_remove(i);
                let what = match p.kind {
                    Kind::Post { seq, .. } => format!("post {seq} not answered"),
                    Kind::Ping { .. } => "OPTIONS ping not answered".into(),
                };
                self.shared
                    .stats
                    .error(&ua.user, &ClientError::new(ErrorKind::Timeout, what));
                if matches!(p.kind, Kind::Post { .. }) && self.closed_loop() {
                    self.next_post = Some(now);
                }
                continue;
            }
            if udp && now >= p.retx {
                ua.conn.send(&p.bytes).await?;
                self.shared.stats.retransmissions.fetch_add(1, Relaxed);
                p.interval = (p.interval * 2).min(T2);
                p.retx = now + p.interval;
            }
            i += 1;
        }
        if let Some(at) = self.next_post.filter(|at| now >= *at) {
            if self.chat_end.is_none_or(|end| now >= end) {
                self.next_post = None;
            } else {
                self.lag.record(micros(now - at));
                self.post(ua).await?;
                self.next_post = self.shared.cfg.rate.next_post(at);
            }
        }
        Ok(())
    }

    /// Posts the next message to the room.
    async fn post(&mut self, ua: &mut Ua) -> Result<(), ClientError> {
        if self.chat_end.is_none_or(|end| Instant::now() >= end) {
            return Ok(());
        }
        self.seq += 1;
        let shared = self.shared;
        let stamp = Stamp {
            sender: u32::try_from(self.idx).unwrap_or(u32::MAX),
            seq: self.seq,
            sent_us: shared.now_us(),
        };
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        stamp::write_body(&mut body, shared.run_id, stamp, shared.cfg.size);
        let kind = Kind::Post {
            seq: self.seq,
            sent_us: stamp.sent_us,
        };
        let uri = self.room_uri.clone();
        let result = self
            .send(ua, Method::Message, &uri, Some(&body), kind, None)
            .await;
        self.body = body;
        result?;
        shared.stats.sent.fetch_add(1, Relaxed);
        shared.stats.room_sent[self.room_i].fetch_add(1, Relaxed);
        Ok(())
    }

    /// Builds, sends and tracks a request.
    async fn send(
        &mut self,
        ua: &mut Ua,
        method: Method,
        uri: &str,
        body: Option<&[u8]>,
        kind: Kind,
        auth: Option<&(&'static str, String)>,
    ) -> Result<(), ClientError> {
        let sent = ua.build(method, uri, body, None, auth)?;
        ua.conn.send(&sent.bytes).await?;
        let now = Instant::now();
        self.pending.push(Pending {
            cseq: sent.cseq,
            kind,
            bytes: sent.bytes,
            retx: now + T1,
            interval: T1,
            give_up: now + self.shared.cfg.timeout().min(TIMER_F),
            challenged: auth.is_some(),
        });
        Ok(())
    }

    async fn on_message(&mut self, ua: &mut Ua, m: &SipMessage) -> Result<(), ClientError> {
        if m.is_request() {
            if ua.respond_ok(m).await? && m.method() == Some(Method::Message) {
                self.on_room_message(m);
            }
            return Ok(());
        }
        let Some(status) = m.status().filter(|s| *s >= 200) else {
            return Ok(());
        };
        let cseq = m.cseq().seq;
        let Some(i) = self.pending.iter().position(|p| p.cseq == cseq) else {
            return Ok(());
        };
        let p = self.pending.swap_remove(i);
        let shared = self.shared;
        let stats = &shared.stats;
        let now_us = shared.now_us();
        match (p.kind, status) {
            (_, 401 | 407) if !p.challenged => {
                let (method, uri, body) = match p.kind {
                    Kind::Post { .. } => (Method::Message, self.room_uri.clone(), body_of(&p)),
                    Kind::Ping { .. } => (Method::Options, format!("sip:{}", ua.domain), None),
                };
                let auth = ua.answer(m, method, &uri);
                if auth.is_some() {
                    return self
                        .send(ua, method, &uri, body.as_deref(), p.kind, auth.as_ref())
                        .await;
                }
                self.refused(&ua.user, p.kind, status, m);
            }
            (Kind::Post { sent_us, .. }, 200..=299) => {
                stats.echoed.fetch_add(1, Relaxed);
                self.echo.record(now_us.saturating_sub(sent_us));
                if self.closed_loop() {
                    self.next_post = Some(Instant::now());
                }
            }
            (Kind::Ping { sent_us }, _) => {
                let rtt = now_us.saturating_sub(sent_us);
                stats.ping.add(self.idx, &[rtt]);
                stats.pinged.fetch_add(1, Relaxed);
                if rtt < 1_000_000 {
                    stats.healthy.fetch_add(1, Relaxed);
                }
            }
            (kind, status) => self.refused(&ua.user, kind, status, m),
        }
        Ok(())
    }

    /// Counts a post the server refused.
    fn refused(&mut self, who: &str, kind: Kind, status: u16, m: &SipMessage) {
        let what = match kind {
            Kind::Post { seq, .. } => format!("post {seq}"),
            Kind::Ping { .. } => "OPTIONS".into(),
        };
        self.shared.stats.error(
            who,
            &ClientError::new(
                ErrorKind::MessageError,
                format!("{what}: {status} {}", m.reason().unwrap_or("")),
            ),
        );
        if matches!(kind, Kind::Post { .. }) && self.closed_loop() {
            self.next_post = Some(Instant::now());
        }
    }

    /// Times every line of a MESSAGE from the room that carries a stamp of this run.
    fn on_room_message(&mut self, m: &SipMessage) {
        let Ok(text) = std::str::from_utf8(m.body()) else {
            return;
        };
        let shared = self.shared;
        for line in text.lines() {
            let Some(stamp) = find_stamp(line, shared.run_id) else {
                continue;
            };
            if stamp.sender as usize == self.idx {
                continue;
            }
            if !self.seen.first_time(&stamp) {
                shared.stats.duplicates.fetch_add(1, Relaxed);
                continue;
            }
            let now_us = shared.now_us();
            shared.stats.delivered.fetch_add(1, Relaxed);
            shared.stats.last_delivery_us.fetch_max(now_us, Relaxed);
            self.latency.record(now_us.saturating_sub(stamp.sent_us));
        }
    }
}

/// The stamp in one line of a room MESSAGE, whatever the server puts before it: palaver's
/// `nick: <stamp>`, Kamailio imc's `[nick]: <stamp>`, or `<sip:user@host> <stamp>`. The stamp
/// starts a word: the line's start or just after a space.
fn find_stamp(line: &str, run: u32) -> Option<Stamp> {
    std::iter::once(0)
        .chain(line.match_indices(' ').map(|(i, _)| i + 1))
        .find_map(|i| stamp::parse(line.get(i..)?, run))
}

/// The body of a request we sent (after the blank line).
fn body_of(p: &Pending) -> Option<Vec<u8>> {
    let at = p.bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    p.bytes.get(at + 4..).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::find_stamp;
    use crate::load::stamp::{write_body, Stamp};

    #[test]
    fn stamps_behind_any_prefix() {
        let stamp = Stamp {
            sender: 3,
            seq: 9,
            sent_us: 1_234,
        };
        let mut body = Vec::new();
        write_body(&mut body, 0xab, stamp, 60);
        let body = String::from_utf8(body).unwrap_or_default();
        for line in [
            format!("u3: {body}"),
            format!("[u3]: {body}"),
            format!("<sip:u3@localhost> {body}"),
            body.clone(),
        ] {
            assert_eq!(find_stamp(&line, 0xab), Some(stamp), "{line}");
            assert_eq!(find_stamp(&line, 0xac), None, "{line}");
        }
        assert_eq!(find_stamp("*** [u2] has joined the room", 0xab), None);
    }
}
