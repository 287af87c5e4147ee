//! The load report: what a run measured, as a table on stdout and as JSON (`--json FILE`).
//! Latencies are in milliseconds (recorded in microseconds); the JSON field names are
//! documented in docs/load.md and are what scripts (bench-compare) read.

use super::config::{Config, Mode, Protocol};
use super::procstat::ProcSummary;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles {
                count: 0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean().round() / 1000.0,
        }
    }

    fn line(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  ({} samples)",
            self.p50, self.p90, self.p99, self.p99_9, self.max, self.count
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    /// Sessions started.
    pub attempted: u64,
    /// Logged in (TLS, SASL, bind done).
    pub established: u64,
    /// Never got into their room (login or join failed).
    pub failed: u64,
    /// In their room.
    pub joined: u64,
    /// Most sessions open at once.
    pub peak_concurrent: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Login {
    /// First connection attempt → last successful join, seconds.
    pub elapsed_s: f64,
    /// Joined sessions per second over that time.
    pub joins_per_s: f64,
    /// Per session: connect → self-presence from the room.
    pub latency_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct Messages {
    pub sent: u64,
    /// Σ over rooms of posts × (occupants − 1).
    pub expected_deliveries: u64,
    pub deliveries: u64,
    pub missing: u64,
    /// Posts delivered again to a receiver that had them (not in `deliveries`).
    pub duplicates: u64,
    /// Posts reflected back to their sender.
    pub echoes: u64,
    /// Seconds of posting.
    pub duration_s: f64,
    pub sent_per_s: f64,
    /// Deliveries over chat start → last delivery (at least the posting time).
    pub deliveries_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub hold_s: f64,
    /// Sessions that got an answer to the ping round, and those within one second.
    pub pinged: u64,
    pub healthy: u64,
    pub ping_ms: Percentiles,
    /// (target RSS after the hold − RSS before the first connection) / joined sessions.
    pub rss_per_session_kib: Option<f64>,
}

/// History mode: the archive discovery and the MAM query latencies.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// The room queried.
    pub room: String,
    /// Stamps (XEP-0082) of the oldest and newest archived messages, and the `start` of the
    /// middle page (halfway between them); `None` when the discovery failed.
    pub oldest: Option<String>,
    pub newest: Option<String>,
    pub middle: Option<String>,
    /// The archive size the server gave in the RSM `<count/>` of the discovery, if it did.
    pub archive_count: Option<u64>,
    /// Seconds of querying.
    pub duration_s: f64,
    pub queries_sent: u64,
    /// Queries answered with `<fin/>` (the latency samples of both kinds).
    pub queries: u64,
    pub queries_per_s: f64,
    /// Query → `<fin/>`: the 50 newest messages (`<before/>`), and 50 from the middle.
    pub latest_ms: Percentiles,
    pub middle_ms: Percentiles,
    /// Mean `<result/>` messages per answered query.
    pub results_per_query: f64,
}

/// Everything a run reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: Mode,
    pub users: usize,
    pub connections: Connections,
    pub login: Login,
    pub messages: Option<Messages>,
    /// Delivery latency: send → each other occupant.
    pub latency_ms: Option<Percentiles>,
    /// Send → the room's reflection back to the sender.
    pub echo_latency_ms: Option<Percentiles>,
    /// How late posts left against their schedule (the generator's own lag).
    pub send_lag_ms: Option<Percentiles>,
    pub idle: Option<Idle>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// Counts by kind (every kind present, zero or not).
    pub errors: BTreeMap<&'static str, u64>,
    pub errors_total: u64,
    /// SIP over UDP: requests retransmitted (no final response within T1, doubling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_retransmissions: Option<u64>,
    pub error_examples: Vec<String>,
    /// The server process (`--pid`).
    pub target: Option<ProcSummary>,
    /// This load generator.
    pub generator: Option<ProcSummary>,
    pub config: Config,
}

impl Report {
    /// Whether anything went wrong (for `--fail-on-error`).
    pub fn has_problems(&self) -> bool {
        self.errors_total > 0
            || self.connections.failed > 0
            || self
                .messages
                .as_ref()
                .is_some_and(|m| m.missing > 0 || m.duplicates > 0)
            || self
                .idle
                .as_ref()
                .is_some_and(|i| i.healthy < self.connections.joined)
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let c = &self.connections;
        let transport = match self.config.protocol {
            Protocol::Xmpp => format!("XMPP, {:?}", self.config.tls),
            Protocol::Sip => format!("SIP over {:?}", self.config.sip_transport),
        };
        let _ = writeln!(
            t,
            "palaver-conformance load — {:?} mode, {} users, {} rooms, server {} ({transport})",
            self.mode,
            self.users,
            self.config.rooms.len(),
            self.config.server,
        );
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "  {k:<22} {v}");
        };
        row(
            &mut t,
            "connections",
            format!(
                "{} attempted, {} established, {} joined, {} failed, peak {} open",
                c.attempted, c.established, c.joined, c.failed, c.peak_concurrent
            ),
        );
        row(
            &mut t,
            "login+join",
            format!(
                "{:.1} joins/s over {:.2} s",
                self.login.joins_per_s, self.login.elapsed_s
            ),
        );
        row(&mut t, "login+join time (ms)", self.login.latency_ms.line());
        if let Some(m) = &self.messages {
            row(
                &mut t,
                "messages",
                format!(
                    "{} sent ({:.1}/s over {:.1} s), {} echoed",
                    m.sent, m.sent_per_s, m.duration_s, m.echoes
                ),
            );
            row(
                &mut t,
                "deliveries",
                format!(
                    "{} of {} expected ({} missing, {} duplicates), {:.1}/s",
                    m.deliveries,
                    m.expected_deliveries,
                    m.missing,
                    m.duplicates,
                    m.deliveries_per_s
                ),
            );
        }
        if let Some(l) = &self.latency_ms {
            row(&mut t, "latency (ms)", l.line());
        }
        if let Some(l) = &self.echo_latency_ms {
            row(&mut t, "echo latency (ms)", l.line());
        }
        if let Some(l) = &self.send_lag_ms {
            row(&mut t, "send lag (ms)", l.line());
        }
        if let Some(i) = &self.idle {
            row(
                &mut t,
                "idle",
                format!(
                    "held {:.1} s; ping answered by {}, within 1 s by {}",
                    i.hold_s, i.pinged, i.healthy
                ),
            );
            row(&mut t, "ping (ms)", i.ping_ms.line());
            if let Some(r) = i.rss_per_session_kib {
                row(&mut t, "server RSS/session", format!("{r:.1} KiB"));
            }
        }
        if let Some(h) = &self.history {
            row(
                &mut t,
                "archive",
                match (&h.oldest, &h.newest, &h.middle) {
                    (Some(o), Some(n), Some(m)) => format!(
                        "{} messages, {o} … {n}, middle {m}",
                        h.archive_count.map_or("?".into(), |c| c.to_string())
                    ),
                    _ => "not found".into(),
                },
            );
            row(
                &mut t,
                "MAM queries",
                format!(
                    "{} answered of {} sent ({:.1}/s over {:.1} s), {:.1} results/query",
                    h.queries, h.queries_sent, h.queries_per_s, h.duration_s, h.results_per_query
                ),
            );
            row(&mut t, "latest page (ms)", h.latest_ms.line());
            row(&mut t, "middle page (ms)", h.middle_ms.line());
        }
        let errors: Vec<String> = self
            .errors
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        row(
            &mut t,
            "errors",
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join(", ")
            },
        );
        if let Some(n) = self.sip_retransmissions {
            row(&mut t, "SIP retransmissions", n.to_string());
        }
        for e in &self.error_examples {
            let _ = writeln!(t, "  {:<22}   e.g. {e}", "");
        }
        for (name, p) in [("server", &self.target), ("generator", &self.generator)] {
            if let Some(p) = p {
                row(
                    &mut t,
                    &format!("{name} (pid {})", p.pid),
                    format!(
                        "RSS {} → peak {} → {} KiB; CPU {:.1} s, avg {} %, peak {} %",
                        p.rss_start_kib,
                        p.rss_peak_kib,
                        p.rss_end_kib,
                        p.cpu_seconds,
                        p.cpu_avg_percent.map_or("-".into(), |v| format!("{v:.0}")),
                        p.cpu_peak_percent.map_or("-".into(), |v| format!("{v:.0}")),
                    ),
                );
            }
        }
        t
    }
}
