//! History mode (`--mode history`): XEP-0313 MAM latency on one big existing room.
//!
//! Each session logs in and joins the room with `<history maxstanzas='0'/>`; a join that creates
//! the room (status 201) is a `join` error (the room has no history). Once every session is in,
//! the coordinator gives the go-ahead and the first session to see it discovers the archive:
//! the newest message (`<max>1</max><before/>`) and the oldest (`<max>1</max>`), read from their
//! forwarded `<delay stamp/>`, and the middle time halfway between them. An empty archive or a
//! refused query ends the run. Then, for `duration` seconds, every session alternates two
//! queries to the room JID — `latest` (the [`PAGE`] newest, `<before/>`) and `middle`
//! ([`PAGE`] from the middle time on, a `start` form field) — closed loop by default, or `rate`
//! per second on a fixed schedule, timing each from send to the iq result carrying `<fin/>` and
//! counting its `<result/>` messages. Fewer than [`PAGE`] is a `history_short` error (the
//! latency still counts), a refused query a `mam_error`, a page out of order or starting before
//! `start` a `protocol` error, an unanswered one a `timeout`. Result messages are not room
//! posts: nothing here counts deliveries. Server input is never trusted.

use super::history_wire::{self as wire, Answer, Archive};
use super::report::{History, Percentiles};
use super::stats::{micros, Recorder};
use super::{reap, round1, Phase, Shared, CHAT_LEAD, POLL, PROGRESS};
use crate::client::{Client, ClientError, ErrorKind};
use palaver_dialects::xmpp::datetime::format_millis;
use palaver_dialects::xmpp::element::Element;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

/// Results asked for per query.
pub const PAGE: u32 = 50;
/// A page from the middle may start this much before `start` (servers that keep whole seconds).
const START_SLACK_MS: i64 = 1000;

/// The hand-over between the coordinator and the session that runs the discovery.
pub struct State {
    /// Set by the coordinator once every session is in.
    go: watch::Sender<bool>,
    /// Taken by the session that runs the discovery.
    claimed: AtomicBool,
    /// `Some(result)` once the discovery has ended.
    found: watch::Sender<Option<Option<Archive>>>,
}

impl State {
    pub fn new() -> State {
        State {
            go: watch::channel(false).0,
            claimed: AtomicBool::new(false),
            found: watch::channel(None).0,
        }
    }
}

/// What the coordinator's measured phase leaves for the report.
pub struct Measured {
    archive: Option<Archive>,
    window_s: f64,
}

/// The coordinator's side, once the logins have settled: lets the discovery run, opens the
/// query window for `duration` seconds and waits (at most `timeout`) for the last answers.
pub async fn coordinate(shared: &Shared, tasks: &mut JoinSet<()>, joined: u64) -> Measured {
    let cfg = &shared.cfg;
    let stats = &shared.stats;
    let mut measured = Measured {
        archive: None,
        window_s: 0.0,
    };
    if joined == 0 {
        return measured;
    }
    shared.history.go.send_replace(true);
    let mut rx = shared.history.found.subscribe();
    let until =
        (Instant::now() + cfg.timeout() * 2 + Duration::from_secs(1)).min(shared.hard_deadline);
    let found = match timeout_at(until, rx.wait_for(Option::is_some)).await {
        Ok(Ok(found)) => found.clone().flatten(),
        _ => None,
    };
    let Some(archive) = found else {
        if !shared.history.claimed.load(Relaxed) {
            let e = ClientError::new(
                ErrorKind::Timeout,
                "no session was left to query the archive",
            );
            stats.error("load", &e);
        }
        return measured;
    };
    eprintln!(
        "load: history: archive {} … {}, middle {}, {} messages",
        format_millis(archive.oldest_ms),
        format_millis(archive.newest_ms),
        archive.middle,
        archive.count.map_or("?".into(), |c| c.to_string())
    );
    measured.archive = Some(archive);
    let start = Instant::now() + CHAT_LEAD;
    let end = start + cfg.duration();
    shared.phase.send_replace(Phase::Chat { start, end });
    while Instant::now() < end {
        sleep_until((Instant::now() + PROGRESS).min(end)).await;
        reap(tasks);
        if Instant::now() < end {
            eprintln!(
                "load: history: {} open, {} queries sent, {} answered",
                stats.live.load(Relaxed),
                stats.mam_sent.load(Relaxed),
                stats.mam_done.load(Relaxed),
            );
        }
    }
    let drain_until = (end + cfg.timeout()).min(shared.hard_deadline);
    while Instant::now() < drain_until && stats.mam_in_flight.load(Relaxed) > 0 {
        sleep(POLL).await;
    }
    measured.window_s = cfg.duration_secs;
    measured
}

/// The report's history section (after the sessions have ended and flushed their samples).
pub fn summary(shared: &Shared, m: Measured) -> History {
    let stats = &shared.stats;
    let done = stats.mam_done.load(Relaxed);
    let results = stats.mam_results.load(Relaxed);
    let a = m.archive.as_ref();
    History {
        room: shared.cfg.rooms.first().cloned().unwrap_or_default(),
        oldest: a.map(|a| format_millis(a.oldest_ms)),
        newest: a.map(|a| format_millis(a.newest_ms)),
        middle: a.map(|a| a.middle.clone()),
        archive_count: a.and_then(|a| a.count),
        duration_s: m.window_s,
        queries_sent: stats.mam_sent.load(Relaxed),
        queries: done,
        queries_per_s: if m.window_s > 0.0 {
            round1(done as f64 / m.window_s)
        } else {
            0.0
        },
        latest_ms: Percentiles::of(&stats.mam_latest.merged()),
        middle_ms: Percentiles::of(&stats.mam_middle.merged()),
        results_per_query: if done > 0 {
            round1(results as f64 / done as f64)
        } else {
            0.0
        },
    }
}

/// Runs history session `idx` to its end. `permit` (a login slot) is released once it is in.
pub async fn run(shared: Arc<Shared>, idx: usize, permit: OwnedSemaphorePermit) {
    let (Some(user), Some(room)) = (shared.users.get(idx), shared.cfg.rooms.first()) else {
        return;
    };
    let cfg = &shared.cfg;
    let stats = &shared.stats;
    let t0 = Instant::now();
    let mut client = match super::session::login(&shared, idx, user).await {
        Ok(c) => c,
        Err(e) => {
            stats.error(&user.name, &e);
            stats.failed.fetch_add(1, Relaxed);
            return;
        }
    };
    stats.established.fetch_add(1, Relaxed);
    stats.session_up();
    let deadline = (Instant::now() + cfg.timeout()).min(shared.hard_deadline);
    if let Err(e) = wire::join_existing(&mut client, room, &user.name, deadline).await {
        stats.error(&user.name, &e);
        stats.failed.fetch_add(1, Relaxed);
        stats.session_down();
        client.close().await;
        return;
    }
    drop(permit);
    stats.joined_room(idx, 0, micros(t0.elapsed()), shared.now_us());

    let mut querier = Querier::new(&shared, idx, room);
    let result = querier.run(&mut client).await;
    drop(querier);
    match result {
        Ok(()) => client.close().await,
        Err(e) => stats.error(&user.name, &e),
    }
    stats.session_down();
}

/// The two kinds of query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Latest,
    Middle,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Latest => "latest",
            Kind::Middle => "middle",
        }
    }
}

/// A query sent and not answered yet.
struct Pending {
    qid: String,
    kind: Kind,
    sent: Instant,
    until: Instant,
    results: u32,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    out_of_order: bool,
}

/// The state of a history session that is in the room.
struct Querier<'a> {
    shared: &'a Shared,
    idx: usize,
    room: &'a str,
    seq: u64,
    out: Vec<u8>,
    latest_body: Vec<u8>,
    /// Set when the query window opens.
    middle_body: Vec<u8>,
    middle_ms: i64,
    next_kind: Kind,
    next_query: Option<Instant>,
    end: Option<Instant>,
    pending: Vec<Pending>,
    latest: Recorder,
    middle: Recorder,
    go_seen: bool,
    last_write: Instant,
}

impl Drop for Querier<'_> {
    fn drop(&mut self) {
        let n = self.pending.len() as u64;
        self.shared.stats.mam_in_flight.fetch_sub(n, Relaxed);
    }
}

impl<'a> Querier<'a> {
    fn new(shared: &'a Shared, idx: usize, room: &'a str) -> Querier<'a> {
        let stats = &shared.stats;
        Querier {
            shared,
            idx,
            room,
            seq: 0,
            out: Vec::with_capacity(512),
            latest_body: wire::rsm(PAGE, true),
            middle_body: Vec::new(),
            middle_ms: 0,
            next_kind: if idx.is_multiple_of(2) {
                Kind::Latest
            } else {
                Kind::Middle
            },
            next_query: None,
            end: None,
            pending: Vec::new(),
            latest: Recorder::new(stats.mam_latest.clone(), idx),
            middle: Recorder::new(stats.mam_middle.clone(), idx),
            go_seen: false,
            last_write: Instant::now(),
        }
    }

    fn user(&self) -> &str {
        self.shared
            .users
            .get(self.idx)
            .map_or("?", |u| u.name.as_str())
    }

    fn error(&self, kind: ErrorKind, message: String) {
        self.shared
            .stats
            .error(self.user(), &ClientError::new(kind, message));
    }

    /// Until the coordinator says stop (`Ok`) or the session fails.
    async fn run(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let shared = self.shared;
        let mut phase_rx = shared.phase.subscribe();
        let mut go_rx = shared.history.go.subscribe();
        // A session that got in late may find the window open already.
        match *phase_rx.borrow_and_update() {
            Phase::Stop => return Ok(()),
            Phase::Chat { start, end } => self.open(start, end),
            Phase::Ramp | Phase::Ping => {}
        }
        let keepalive = shared.cfg.keepalive();
        loop {
            while let Some(el) = client.next_buffered()? {
                if self.on_stanza(&el) {
                    self.query(client).await?;
                }
            }
            let wake = [
                self.next_query,
                self.pending.iter().map(|p| p.until).min(),
                Some(self.last_write + keepalive),
                Some(shared.hard_deadline),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(shared.hard_deadline);
            let go_seen = self.go_seen;
            tokio::select! {
                biased;
                changed = phase_rx.changed() => {
                    let phase = match changed {
                        Ok(()) => *phase_rx.borrow_and_update(),
                        Err(_) => Phase::Stop,
                    };
                    match phase {
                        Phase::Stop => return Ok(()),
                        Phase::Chat { start, end } => self.open(start, end),
                        Phase::Ramp | Phase::Ping => {}
                    }
                }
                go = async { go_rx.wait_for(|g| *g).await.is_ok() }, if !go_seen => {
                    self.go_seen = true;
                    if go && !shared.history.claimed.swap(true, Relaxed) {
                        self.discover(client).await?;
                    }
                }
                read = client.read_more() => read?,
                () = sleep_until(wake) => self.on_timer(client).await?,
            }
        }
    }

    /// Runs the discovery and publishes its result. Query-level failures are counted here and
    /// end the run (not the session); a broken stream ends the session too.
    async fn discover(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let shared = self.shared;
        let qid = format!("h{}", self.idx);
        let cfg = &shared.cfg;
        let found =
            wire::find_archive(client, self.room, &qid, cfg.timeout(), shared.hard_deadline).await;
        self.last_write = Instant::now();
        let found_tx = &self.shared.history.found;
        match found {
            Ok(a) => {
                found_tx.send_replace(Some(Some(a)));
                Ok(())
            }
            Err(e) => {
                found_tx.send_replace(Some(None));
                match e.kind {
                    ErrorKind::Closed | ErrorKind::Protocol | ErrorKind::StreamError => Err(e),
                    _ => {
                        self.shared.stats.error(self.user(), &e);
                        Ok(())
                    }
                }
            }
        }
    }

    /// The query window opens (the archive was found, else the coordinator would not open it).
    fn open(&mut self, start: Instant, end: Instant) {
        let found = self.shared.history.found.borrow().clone().flatten();
        let Some(archive) = found else {
            return;
        };
        self.middle_body = wire::from_start(&archive.middle, PAGE);
        self.middle_ms = archive.middle_ms;
        self.end = Some(end);
        self.next_query = Some(self.shared.cfg.rate.first_post(self.idx, start));
    }

    async fn on_timer(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let now = Instant::now();
        if now >= self.shared.hard_deadline {
            return Err(ClientError::new(ErrorKind::Timeout, "hard deadline"));
        }
        let before = self.pending.len();
        let mut expired = Vec::new();
        self.pending.retain(|p| {
            let keep = p.until > now;
            if !keep {
                expired.push((p.kind, p.qid.clone()));
            }
            keep
        });
        for (kind, qid) in &expired {
            let timeout = self.shared.cfg.timeout_secs;
            self.error(
                ErrorKind::Timeout,
                format!(
                    "MAM {} query {qid} got no <fin/> in {timeout} s",
                    kind.name()
                ),
            );
        }
        let gone = (before - self.pending.len()) as u64;
        self.shared.stats.mam_in_flight.fetch_sub(gone, Relaxed);
        if gone > 0 && self.pending.is_empty() && self.closed_loop() {
            self.next_query = Some(now);
        }
        if let Some(at) = self.next_query.filter(|at| now >= *at) {
            if self.end.is_none_or(|end| now >= end) {
                self.next_query = None;
            } else {
                self.query(client).await?;
                self.next_query = self.shared.cfg.rate.next_post(at);
            }
        }
        if now >= self.last_write + self.shared.cfg.keepalive() {
            client.send(b" ").await?;
            self.last_write = now;
        }
        Ok(())
    }

    fn closed_loop(&self) -> bool {
        self.shared.cfg.rate == super::config::Rate::ClosedLoop
    }

    /// Sends the next query (alternating the kinds) while the window is open.
    async fn query(&mut self, client: &mut Client) -> Result<(), ClientError> {
        let now = Instant::now();
        if self.end.is_none_or(|end| now >= end) {
            return Ok(());
        }
        self.seq += 1;
        let kind = self.next_kind;
        self.next_kind = match kind {
            Kind::Latest => Kind::Middle,
            Kind::Middle => Kind::Latest,
        };
        let qid = format!("h{}-{}", self.idx, self.seq);
        self.out.clear();
        let body = match kind {
            Kind::Latest => &self.latest_body,
            Kind::Middle => &self.middle_body,
        };
        wire::write_query(&mut self.out, self.room, &qid, body);
        client.send(&self.out).await?;
        self.last_write = now;
        let stats = &self.shared.stats;
        stats.mam_sent.fetch_add(1, Relaxed);
        stats.mam_in_flight.fetch_add(1, Relaxed);
        self.pending.push(Pending {
            qid,
            kind,
            sent: now,
            until: now + self.shared.cfg.timeout(),
            results: 0,
            first_ms: None,
            last_ms: None,
            out_of_order: false,
        });
        Ok(())
    }

    /// Counts a stanza; `true` means send the next query now (closed loop).
    fn on_stanza(&mut self, el: &Element) -> bool {
        if let Some(qid) = wire::result_query_id(el) {
            if let Some(p) = self.pending.iter_mut().find(|p| p.qid == qid) {
                p.results += 1;
                if let Some(ms) = wire::result_stamp(el) {
                    p.out_of_order |= p.last_ms.is_some_and(|last| ms < last);
                    p.first_ms = p.first_ms.or(Some(ms));
                    p.last_ms = Some(ms);
                }
            }
            return false;
        }
        if el.name != "iq" {
            return false;
        }
        let Some(i) = el
            .attr("id")
            .and_then(|id| self.pending.iter().position(|p| p.qid == id))
        else {
            return false;
        };
        let p = self.pending.swap_remove(i);
        let stats = &self.shared.stats;
        stats.mam_in_flight.fetch_sub(1, Relaxed);
        let what = format!("MAM {} query {}", p.kind.name(), p.qid);
        match wire::answer(el) {
            Answer::Refused(why) => self.error(ErrorKind::MamError, format!("{what}: {why}")),
            Answer::Fin { .. } => {
                let latency = micros(p.sent.elapsed());
                match p.kind {
                    Kind::Latest => self.latest.record(latency),
                    Kind::Middle => self.middle.record(latency),
                }
                stats.mam_done.fetch_add(1, Relaxed);
                stats.mam_results.fetch_add(u64::from(p.results), Relaxed);
                if p.results < PAGE {
                    let n = p.results;
                    self.error(
                        ErrorKind::HistoryShort,
                        format!("{what}: {n} results, {PAGE} asked for"),
                    );
                }
                if p.out_of_order {
                    self.error(ErrorKind::Protocol, format!("{what}: results out of order"));
                }
                let early = p
                    .first_ms
                    .is_some_and(|first| first < self.middle_ms - START_SLACK_MS);
                if p.kind == Kind::Middle && early {
                    let start = format_millis(self.middle_ms);
                    self.error(
                        ErrorKind::Protocol,
                        format!("{what}: results from before start {start}"),
                    );
                }
            }
        }
        self.closed_loop()
            && self.pending.is_empty()
            && self.end.is_some_and(|end| Instant::now() < end)
    }
}
