//! Resident memory and CPU time of a process, read from `/proc/<pid>/status` (VmRSS) and
//! `/proc/<pid>/stat` (utime + stime, in clock ticks of 1/100 s — USER_HZ is 100 on every
//! Linux architecture we run on), and a background [`Sampler`] that records them every
//! [`INTERVAL`] so the report can give start / peak / end RSS and average / peak CPU.
//!
//! A server made of several processes (Kamailio's workers, a wrapper that forks the real
//! server) is measured as its whole process tree: CPU time summed over the tree, memory as
//! the sum of each process's proportional set size (`Pss` in `/proc/<pid>/smaps_rollup`), so
//! shared memory mapped by every worker is counted once, not once per worker.

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Sampling period.
pub const INTERVAL: Duration = Duration::from_millis(500);
const TICKS_PER_SEC: f64 = 100.0;

/// One reading.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    pub rss_kib: u64,
    /// User + system CPU time so far, in ticks.
    pub cpu_ticks: u64,
    /// Taken by the background task (on the regular period), not on demand.
    pub periodic: bool,
}

/// Reads a process's (or its process tree's) memory and CPU time now; `None` when it is gone
/// (or not Linux).
pub fn sample(pid: u32) -> Option<Sample> {
    let (_, mut cpu_ticks) = stat_of(pid)?;
    let children = descendants(pid);
    let rss_kib = if children.is_empty() {
        vm_rss(pid)?
    } else {
        let mut total = pss(pid).unwrap_or(0);
        for child in &children {
            if let Some((_, ticks)) = stat_of(*child) {
                cpu_ticks += ticks;
                total += pss(*child).unwrap_or(0);
            }
        }
        total
    };
    Some(Sample {
        at: Instant::now(),
        rss_kib,
        cpu_ticks,
        periodic: false,
    })
}

/// `VmRSS` of one process, KiB.
fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Proportional set size of one process, KiB.
fn pss(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Parent pid and user + system CPU ticks of one process.
fn stat_of(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the line, so ppid (4) is at 1, utime (14) and stime (15)
    // at 11 and 12.
    let ppid: u32 = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// Every process below `pid` (children, their children, …).
fn descendants(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| Some((p, stat_of(p)?.0)))
        .collect();
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for (child, _) in parents.iter().filter(|(_, pp)| *pp == parent) {
            if !found.contains(child) && *child != pid {
                found.push(*child);
                frontier.push(*child);
            }
        }
    }
    found
}

/// Periodic samples of one process, taken by a background task until dropped.
pub struct Sampler {
    pub pid: u32,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `pid` (a first sample is taken at once).
    pub fn start(pid: u32) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let store = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            loop {
                tick.tick().await;
                if let Some(mut s) = sample(pid) {
                    s.periodic = true;
                    store.lock().unwrap_or_else(|p| p.into_inner()).push(s);
                }
            }
        });
        Sampler { pid, samples, task }
    }

    /// Takes a sample now (also kept for the summary).
    pub fn now(&self) -> Option<Sample> {
        let s = sample(self.pid)?;
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(s);
        Some(s)
    }

    /// Summary of the samples between `from` and `to` (CPU average over that window).
    pub fn summary(&self, from: Instant, to: Instant) -> Option<ProcSummary> {
        let all = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<Sample> = all.clone();
        all.sort_by_key(|s| s.at);
        let first = all.first()?;
        let last = all.last()?;
        let cpu = |a: &Sample, b: &Sample| {
            let secs = b.at.duration_since(a.at).as_secs_f64();
            (secs > 0.0).then(|| {
                b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / TICKS_PER_SEC / secs * 100.0
            })
        };
        let window: Vec<&Sample> = all.iter().filter(|s| s.at >= from && s.at <= to).collect();
        let avg = match (window.first(), window.last()) {
            (Some(a), Some(b)) => cpu(a, b),
            _ => None,
        };
        // Over whole periods only: on-demand samples can be milliseconds apart, where the
        // 10 ms tick granularity would make nonsense percentages.
        let periodic: Vec<Sample> = all.iter().filter(|s| s.periodic).copied().collect();
        let peak = periodic
            .windows(2)
            .filter_map(|w| cpu(&w[0], &w[1]))
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        Some(ProcSummary {
            pid: self.pid,
            rss_start_kib: first.rss_kib,
            rss_peak_kib: all.iter().map(|s| s.rss_kib).max().unwrap_or(first.rss_kib),
            rss_end_kib: last.rss_kib,
            cpu_seconds: last.cpu_ticks.saturating_sub(first.cpu_ticks) as f64 / TICKS_PER_SEC,
            cpu_avg_percent: avg.map(round1),
            cpu_peak_percent: peak.map(round1),
        })
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// RSS and CPU of a process over a run.
#[derive(Debug, Clone, Serialize)]
pub struct ProcSummary {
    pub pid: u32,
    pub rss_start_kib: u64,
    pub rss_peak_kib: u64,
    pub rss_end_kib: u64,
    /// CPU time used between the first and the last sample.
    pub cpu_seconds: f64,
    /// Average CPU over the measured phase (chat: posting + drain; idle: hold), 100 = one core.
    pub cpu_avg_percent: Option<f64>,
    /// Highest CPU over one sampling interval.
    pub cpu_peak_percent: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_tree_is_found_and_measured_whole() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        let me = std::process::id();
        assert!(descendants(me).contains(&child.id()));
        let tree = sample(me).expect("sample");
        assert!(tree.rss_kib > 0);
        assert!(pss(child.id()).is_some());
        let _ = child.kill();
        let _ = child.wait();
    }

    #[tokio::test]
    async fn samples_this_process() {
        let s = sample(std::process::id()).expect("/proc is readable");
        assert!(s.rss_kib > 0);
        let sampler = Sampler::start(std::process::id());
        let t0 = Instant::now();
        sampler.now();
        tokio::time::sleep(Duration::from_millis(30)).await;
        sampler.now();
        let sum = sampler.summary(t0, Instant::now()).expect("samples");
        assert!(sum.rss_peak_kib >= sum.rss_start_kib.min(sum.rss_end_kib));
    }
}
