//! `palaver-conformance load`: the load generator. It logs many users in over plain XMPP
//! (any server: STARTTLS or direct TLS, SASL SCRAM/PLAIN, bind, XEP-0045 join) or as SIP
//! user agents in pager-mode rooms (`--protocol sip`: REGISTER, join command), spreads them
//! over rooms and then, in `chat` mode, has them post at a fixed rate (or closed-loop) and
//! measures each post's end-to-end latency to every other occupant; in `idle` mode it holds
//! the sessions and pings from each. It reports connections, login+join rate, messages,
//! deliveries (against the expected count), latency percentiles, errors by kind and the
//! server's RSS/CPU — see docs/load.md. In `history` mode the sessions join one existing room
//! and time XEP-0313 MAM queries on its archive instead ([`history`]).
//!
//! The run is driven by phases ([`Phase`]) that this coordinator publishes on a watch channel:
//! `Ramp` (sessions are started at `ramp` per second, at most `login_concurrency` logging in
//! at once), then `Chat { start, end }` (in history mode the query window, opened after the
//! archive discovery) or, in idle mode, a hold followed by `Ping`, then `Stop` after the drain.
//! Everything is bounded by a hard deadline computed up front.
//!
//! Protocols: [`Protocol`] selects the session driver — XMPP ([`session`]) or SIP pager rooms
//! ([`sip_session`]: REGISTER with digest, the join command as a MESSAGE to the room URI,
//! MESSAGE posts carrying the same [`stamp`]). Both have the same contract — run until
//! [`Phase::Stop`], count into [`stats::Stats`] — so the coordinator, stats and report are
//! shared.

pub mod config;
mod history;
mod history_wire;
mod procstat;
mod report;
mod session;
pub(crate) mod sip_client;
mod sip_live;
mod sip_session;
mod sip_ua;
mod stamp;
mod stats;
mod users;

pub use config::{LoadArgs, Protocol};

use crate::client::{tls_config, ConnectOptions};
use anyhow::{bail, Context, Result};
use config::{Config, Mode, Tls};
use procstat::Sampler;
use report::{Connections, Idle, Login, Messages, Percentiles, Report};
use rustls_pki_types::ServerName;
use stats::Stats;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};
use users::User;

/// How often the coordinator checks progress.
const POLL: Duration = Duration::from_millis(20);
/// How often progress goes to stderr.
const PROGRESS: Duration = Duration::from_secs(5);
/// Between the end of the ramp and the first post.
const CHAT_LEAD: Duration = Duration::from_millis(200);

/// Where the run is; sessions follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Logging in and joining (and, in idle mode, holding).
    Ramp,
    /// Post (history mode: query) between `start` and `end`.
    Chat { start: Instant, end: Instant },
    /// Idle mode: ping the server once.
    Ping,
    /// Close the session.
    Stop,
}

impl Shared {
    /// Where session `idx` connects: the servers of `--server` in turn.
    pub fn connect_for(&self, idx: usize) -> &ConnectOptions {
        &self.connects[idx % self.connects.len()]
    }
}

/// What every session of a run shares.
pub struct Shared {
    pub cfg: Config,
    pub users: Vec<User>,
    /// One per server of `--server` (a pool's nodes): session `i` uses `connects[i % n]`.
    pub connects: Vec<ConnectOptions>,
    pub stats: Stats,
    /// The clock of the message stamps.
    pub epoch: Instant,
    /// Random per run: stamps of other runs are ignored.
    pub run_id: u32,
    pub phase: watch::Sender<Phase>,
    /// Per room: set once its first user has created it (or failed to).
    pub room_ready: Vec<watch::Sender<bool>>,
    /// No session outlives this.
    pub hard_deadline: Instant,
    /// History mode: the archive discovery's hand-over.
    pub history: history::State,
}

impl Shared {
    /// Microseconds since the run's epoch.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

fn spawn_session(
    tasks: &mut JoinSet<()>,
    protocol: Protocol,
    shared: Arc<Shared>,
    idx: usize,
    permit: OwnedSemaphorePermit,
) {
    if shared.cfg.mode == Mode::History {
        tasks.spawn(history::run(shared, idx, permit));
        return;
    }
    match protocol {
        Protocol::Xmpp => tasks.spawn(session::run(shared, idx, permit)),
        Protocol::Sip => tasks.spawn(sip_session::run(shared, idx, permit)),
    };
}

/// Runs the load described by `args` and prints the report.
pub async fn run(args: LoadArgs) -> Result<ExitCode> {
    let cfg = Config::resolve(args)?;
    let users = users::load(&cfg)?;
    let mut addrs = Vec::new();
    for server in cfg
        .server
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let addr = tokio::net::lookup_host(server)
            .await
            .with_context(|| format!("resolving {server}"))?
            .next()
            .with_context(|| format!("{server} has no address"))?;
        if let Some(bad) = cfg.sources.iter().find(|s| s.is_ipv4() != addr.is_ipv4()) {
            bail!("source {bad} is not of the same address family as {addr}");
        }
        addrs.push(addr);
    }
    let Some(&addr) = addrs.first() else {
        bail!("--server names no server");
    };
    warn_fd_limit(users.len());
    let tls = match (&cfg.tls, &cfg.ca) {
        (Tls::Off, _) => None,
        _ if cfg.protocol == Protocol::Sip => None,
        (_, Some(ca)) => Some(tls_config(ca)?),
        (_, None) => bail!("--ca is required with TLS"),
    };
    let connect = ConnectOptions {
        addr,
        domain: cfg.domain.clone(),
        tls_mode: cfg.tls.mode(),
        tls,
        tls_name: ServerName::try_from(cfg.tls_name.clone())
            .with_context(|| format!("TLS name {:?}", cfg.tls_name))?,
        mechanism: cfg.mechanism,
        resource: None,
        step_timeout: cfg.timeout(),
    };
    let n = users.len();
    let ramp_secs = if cfg.ramp > 0.0 {
        n as f64 / cfg.ramp
    } else {
        0.0
    };
    let settle = cfg.timeout() * 12;
    let phase_secs = match cfg.mode {
        Mode::Chat => cfg.duration_secs + cfg.drain_secs,
        Mode::Idle => cfg.hold_secs + cfg.timeout_secs,
        // Discovery (two queries), querying, and the last answers.
        Mode::History => cfg.duration_secs + 3.0 * cfg.timeout_secs,
    };
    let epoch = Instant::now();
    let hard_deadline = epoch + Duration::from_secs_f64(ramp_secs + phase_secs + 10.0) + settle;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (phase, _) = watch::channel(Phase::Ramp);
    let shared = Arc::new(Shared {
        stats: Stats::new(cfg.rooms.len(), (threads * 4).clamp(4, 64)),
        room_ready: (0..cfg.rooms.len())
            .map(|_| watch::channel(false).0)
            .collect(),
        users,
        connects: addrs
            .iter()
            .map(|&addr| ConnectOptions {
                addr,
                ..connect.clone()
            })
            .collect(),
        epoch,
        run_id: rand::random(),
        phase,
        hard_deadline,
        history: history::State::new(),
        cfg,
    });
    let cfg = &shared.cfg;
    let stats = &shared.stats;
    let target = cfg.pid.map(Sampler::start);
    let generator = Sampler::start(std::process::id());
    let rss_before = target.as_ref().and_then(Sampler::now).map(|s| s.rss_kib);

    // Ramp: start sessions at `ramp` per second, `login_concurrency` in flight at most.
    let logins = Arc::new(Semaphore::new(cfg.login_concurrency));
    let mut tasks = JoinSet::new();
    let ramp_start = Instant::now();
    let mut last_progress = ramp_start;
    let mut attempted = 0u64;
    for i in 0..n {
        if cfg.ramp > 0.0 {
            sleep_until(ramp_start + Duration::from_secs_f64(i as f64 / cfg.ramp)).await;
        }
        let Ok(Ok(permit)) = timeout_at(hard_deadline, logins.clone().acquire_owned()).await else {
            break;
        };
        spawn_session(&mut tasks, cfg.protocol, shared.clone(), i, permit);
        attempted += 1;
        reap(&mut tasks);
        if last_progress.elapsed() >= PROGRESS {
            last_progress = Instant::now();
            progress(stats, "ramp");
        }
    }
    let settle_until = (Instant::now() + settle).min(hard_deadline);
    while stats.joined.load(Relaxed) + stats.failed.load(Relaxed) < attempted
        && Instant::now() < settle_until
    {
        sleep(POLL).await;
        reap(&mut tasks);
        if last_progress.elapsed() >= PROGRESS {
            last_progress = Instant::now();
            progress(stats, "logins");
        }
    }
    let joined = stats.joined.load(Relaxed);
    let login_elapsed = Duration::from_micros(stats.last_join_us.load(Relaxed))
        .saturating_sub(ramp_start.duration_since(epoch))
        .as_secs_f64();

    // The measured phase.
    let mut messages = None;
    let mut idle = None;
    let mut history = None;
    let measure_from = Instant::now();
    match cfg.mode {
        Mode::Chat if joined == 0 => {
            messages = Some(Messages {
                sent: 0,
                expected_deliveries: 0,
                deliveries: 0,
                duplicates: 0,
                missing: 0,
                echoes: 0,
                duration_s: 0.0,
                sent_per_s: 0.0,
                deliveries_per_s: 0.0,
            });
        }
        Mode::Chat => {
            let start = Instant::now() + CHAT_LEAD;
            let end = start + cfg.duration();
            shared.phase.send_replace(Phase::Chat { start, end });
            while Instant::now() < end {
                sleep_until((Instant::now() + PROGRESS).min(end)).await;
                reap(&mut tasks);
                if Instant::now() < end {
                    progress(stats, "chat");
                }
            }
            let drain_until = (end + cfg.drain()).min(hard_deadline);
            while Instant::now() < drain_until
                && (stats.delivered.load(Relaxed) < stats.expected_deliveries()
                    || stats.echoed.load(Relaxed) < stats.sent.load(Relaxed))
            {
                sleep(POLL).await;
            }
            let sent = stats.sent.load(Relaxed);
            let expected = stats.expected_deliveries();
            let deliveries = stats.delivered.load(Relaxed);
            let duration = cfg.duration_secs;
            let last = Duration::from_micros(stats.last_delivery_us.load(Relaxed));
            let window = last
                .saturating_sub(start.duration_since(epoch))
                .as_secs_f64()
                .max(duration);
            messages = Some(Messages {
                sent,
                expected_deliveries: expected,
                deliveries,
                missing: expected.saturating_sub(deliveries),
                duplicates: stats.duplicates.load(Relaxed),
                echoes: stats.echoed.load(Relaxed),
                duration_s: duration,
                sent_per_s: round1(sent as f64 / duration),
                deliveries_per_s: round1(deliveries as f64 / window),
            });
        }
        Mode::History => history = Some(history::coordinate(&shared, &mut tasks, joined).await),
        Mode::Idle => {
            let hold_end = Instant::now() + cfg.hold();
            while Instant::now() < hold_end {
                sleep_until((Instant::now() + PROGRESS).min(hold_end)).await;
                reap(&mut tasks);
            }
            let rss_held = target.as_ref().and_then(Sampler::now).map(|s| s.rss_kib);
            shared.phase.send_replace(Phase::Ping);
            let ping_until = (Instant::now() + cfg.timeout()).min(hard_deadline);
            while Instant::now() < ping_until
                && stats.pinged.load(Relaxed) < stats.live.load(Relaxed)
            {
                sleep(POLL).await;
            }
            idle = Some(Idle {
                hold_s: cfg.hold_secs,
                pinged: stats.pinged.load(Relaxed),
                healthy: stats.healthy.load(Relaxed),
                ping_ms: Percentiles::of(&stats.ping.merged()),
                rss_per_session_kib: match (rss_before, rss_held) {
                    (Some(b), Some(a)) if joined > 0 => {
                        Some(round1(a.saturating_sub(b) as f64 / joined as f64))
                    }
                    _ => None,
                },
            });
        }
    }
    let measure_to = Instant::now();

    // Stop: sessions close their streams; stragglers are aborted.
    shared.phase.send_replace(Phase::Stop);
    let close_until = Instant::now() + Duration::from_secs(5);
    loop {
        match timeout_at(close_until, tasks.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                break;
            }
        }
    }
    if let Some(t) = &target {
        t.now();
    }
    generator.now();
    // RSS start/peak/end and CPU time over the whole run; average CPU over the measured phase.
    let target_summary = target
        .as_ref()
        .and_then(|t| t.summary(measure_from, measure_to));

    let chat = cfg.mode == Mode::Chat;
    let report = Report {
        mode: cfg.mode,
        users: n,
        connections: Connections {
            attempted,
            established: stats.established.load(Relaxed),
            failed: stats.failed.load(Relaxed),
            joined,
            peak_concurrent: stats.peak_live.load(Relaxed),
        },
        login: Login {
            elapsed_s: round3(login_elapsed),
            joins_per_s: if login_elapsed > 0.0 {
                round1(joined as f64 / login_elapsed)
            } else {
                0.0
            },
            latency_ms: Percentiles::of(&stats.login.merged()),
        },
        messages,
        latency_ms: chat.then(|| Percentiles::of(&stats.latency.merged())),
        echo_latency_ms: chat.then(|| Percentiles::of(&stats.echo.merged())),
        send_lag_ms: chat.then(|| Percentiles::of(&stats.send_lag.merged())),
        idle,
        history: history.map(|m| history::summary(&shared, m)),
        errors: stats
            .errors()
            .into_iter()
            .filter(|(k, _)| cfg.mode == Mode::History || !k.history_only())
            .map(|(k, v)| (k.name(), v))
            .collect(),
        errors_total: stats.errors().iter().map(|(_, v)| v).sum(),
        sip_retransmissions: (cfg.protocol == Protocol::Sip)
            .then(|| stats.retransmissions.load(Relaxed)),
        error_examples: stats.examples(),
        target: target_summary,
        generator: generator.summary(measure_from, measure_to),
        config: cfg.clone(),
    };
    emit(&report)?;
    Ok(if cfg.fail_on_error && report.has_problems() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints the table (unless the JSON goes to stdout) and writes the JSON.
fn emit(report: &Report) -> Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    match &report.config.json {
        Some(p) if p.as_os_str() == "-" => println!("{json}"),
        Some(p) => {
            print!("{}", report.table());
            std::fs::write(p, json + "\n").with_context(|| format!("writing {}", p.display()))?;
        }
        None => print!("{}", report.table()),
    }
    Ok(())
}

/// Collects finished sessions so the join set does not grow with them.
fn reap(tasks: &mut JoinSet<()>) {
    while tasks.try_join_next().is_some() {}
}

fn progress(stats: &Stats, phase: &str) {
    eprintln!(
        "load: {phase}: {} joined, {} failed, {} open, {} sent, {} delivered",
        stats.joined.load(Relaxed),
        stats.failed.load(Relaxed),
        stats.live.load(Relaxed),
        stats.sent.load(Relaxed),
        stats.delivered.load(Relaxed),
    );
}

/// Warns when the open-files limit is below what `sessions` connections need (the limit can
/// only be raised from outside: `ulimit -n`).
fn warn_fd_limit(sessions: usize) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(soft) = soft {
        if soft < sessions + 64 {
            eprintln!(
                "load: warning: the open-files limit is {soft}, {sessions} sessions need more \
                 (raise it with `ulimit -n {}`)",
                sessions + 1024
            );
        }
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
