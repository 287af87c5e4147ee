//! Counters and histograms shared by the sessions of a load run, built so that the hot path
//! takes no global lock: counters are atomics, and latency samples are buffered per session
//! ([`Recorder`], up to [`BATCH`] samples) and then added to one of a few mutex-guarded HDR
//! histogram shards ([`ShardedHist`]), which are merged once at the end. Errors are counted by
//! [`ErrorKind`], with the first few messages kept as examples.

use crate::client::{ClientError, ErrorKind};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Samples a session buffers before adding them to its shard.
pub const BATCH: usize = 64;
/// Highest value a histogram holds (µs): one hour; larger samples are clamped.
const MAX_MICROS: u64 = 3_600_000_000;
/// Examples of error messages kept for the report.
const MAX_EXAMPLES: usize = 12;

/// A histogram of microseconds split over shards so that concurrent sessions rarely contend.
pub struct ShardedHist {
    shards: Vec<Mutex<Histogram<u64>>>,
}

fn new_hist() -> Histogram<u64> {
    // 3 significant digits from 1 µs to an hour: constant, valid bounds.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

impl ShardedHist {
    pub fn new(shards: usize) -> ShardedHist {
        ShardedHist {
            shards: (0..shards.max(1)).map(|_| Mutex::new(new_hist())).collect(),
        }
    }

    /// Adds samples (µs) to one shard (`shard` is taken modulo the shard count).
    pub fn add(&self, shard: usize, samples: &[u64]) {
        let Some(slot) = self.shards.get(shard % self.shards.len()) else {
            return;
        };
        let mut h = slot.lock().unwrap_or_else(|p| p.into_inner());
        for &v in samples {
            h.saturating_record(v.clamp(1, MAX_MICROS));
        }
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut out = new_hist();
        for slot in &self.shards {
            let h = slot.lock().unwrap_or_else(|p| p.into_inner());
            // Same bounds everywhere: adding cannot fail except on overflow of a count.
            let _ = out.add(&*h);
        }
        out
    }
}

/// A session's buffer of samples for one [`ShardedHist`].
pub struct Recorder {
    hist: Arc<ShardedHist>,
    shard: usize,
    buf: Vec<u64>,
}

impl Recorder {
    pub fn new(hist: Arc<ShardedHist>, shard: usize) -> Recorder {
        Recorder {
            hist,
            shard,
            buf: Vec::new(),
        }
    }

    /// Records one value (µs).
    pub fn record(&mut self, micros: u64) {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(BATCH);
        }
        self.buf.push(micros);
        if self.buf.len() >= BATCH {
            self.flush();
        }
    }

    /// Hands the buffered samples to the shard.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.hist.add(self.shard, &self.buf);
            self.buf.clear();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Everything the sessions count.
pub struct Stats {
    /// Sessions that completed login (TLS, SASL, bind).
    pub established: AtomicU64,
    /// Sessions that never got into their room (login or join failed).
    pub failed: AtomicU64,
    /// Sessions in their room.
    pub joined: AtomicU64,
    /// Sessions open right now, and the most at once.
    pub live: AtomicU64,
    pub peak_live: AtomicU64,
    /// Microseconds since the run's epoch when the last session joined.
    pub last_join_us: AtomicU64,
    pub sent: AtomicU64,
    /// Our posts that came back to a receiver other than the sender.
    pub delivered: AtomicU64,
    /// Posts a receiver got again after their first delivery (not counted in `delivered`).
    pub duplicates: AtomicU64,
    /// Our posts that came back to their sender (the room's reflection).
    pub echoed: AtomicU64,
    pub last_delivery_us: AtomicU64,
    /// Idle mode: sessions that got a ping answer, and those under one second.
    pub pinged: AtomicU64,
    pub healthy: AtomicU64,
    /// SIP over UDP: requests sent again because no final response had come.
    pub retransmissions: AtomicU64,
    /// Per room: posts sent and occupants joined (for the expected deliveries).
    pub room_sent: Vec<AtomicU64>,
    pub room_joined: Vec<AtomicU32>,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    examples: Mutex<Vec<String>>,
    /// Delivery latency (send → each other occupant), µs.
    pub latency: Arc<ShardedHist>,
    /// Reflection latency (send → back to the sender), µs.
    pub echo: Arc<ShardedHist>,
    /// Connect → in the room, µs.
    pub login: Arc<ShardedHist>,
    /// Idle mode ping round trips, µs.
    pub ping: Arc<ShardedHist>,
    /// How late the sender was against its schedule, µs (the generator's own lag).
    pub send_lag: Arc<ShardedHist>,
    /// History mode: MAM queries sent, answered with `<fin/>`, not answered yet, and the
    /// results received for the answered ones.
    pub mam_sent: AtomicU64,
    pub mam_done: AtomicU64,
    pub mam_in_flight: AtomicU64,
    pub mam_results: AtomicU64,
    /// History mode: query → `<fin/>` of the latest page and of the page from the middle, µs.
    pub mam_latest: Arc<ShardedHist>,
    pub mam_middle: Arc<ShardedHist>,
}

impl Stats {
    pub fn new(rooms: usize, shards: usize) -> Stats {
        let hist = || Arc::new(ShardedHist::new(shards));
        Stats {
            established: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            live: AtomicU64::new(0),
            peak_live: AtomicU64::new(0),
            last_join_us: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            echoed: AtomicU64::new(0),
            last_delivery_us: AtomicU64::new(0),
            pinged: AtomicU64::new(0),
            healthy: AtomicU64::new(0),
            retransmissions: AtomicU64::new(0),
            room_sent: (0..rooms).map(|_| AtomicU64::new(0)).collect(),
            room_joined: (0..rooms).map(|_| AtomicU32::new(0)).collect(),
            errors: Default::default(),
            examples: Mutex::new(Vec::new()),
            latency: hist(),
            echo: hist(),
            login: hist(),
            ping: hist(),
            send_lag: hist(),
            mam_sent: AtomicU64::new(0),
            mam_done: AtomicU64::new(0),
            mam_in_flight: AtomicU64::new(0),
            mam_results: AtomicU64::new(0),
            mam_latest: hist(),
            mam_middle: hist(),
        }
    }

    /// Counts an error (and keeps its message if it is among the first few).
    pub fn error(&self, who: &str, e: &ClientError) {
        self.errors[e.kind.index()].fetch_add(1, Relaxed);
        let mut ex = self.examples.lock().unwrap_or_else(|p| p.into_inner());
        if ex.len() < MAX_EXAMPLES {
            ex.push(format!("{who}: {e}"));
        }
    }

    /// Errors by kind, in [`ErrorKind::ALL`] order.
    pub fn errors(&self) -> Vec<(ErrorKind, u64)> {
        ErrorKind::ALL
            .iter()
            .map(|k| (*k, self.errors[k.index()].load(Relaxed)))
            .collect()
    }

    pub fn examples(&self) -> Vec<String> {
        self.examples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Session `idx` is in room `room_i`: `login_us` after it started, at `now_us` of the run.
    pub fn joined_room(&self, idx: usize, room_i: usize, login_us: u64, now_us: u64) {
        self.joined.fetch_add(1, Relaxed);
        if let Some(room) = self.room_joined.get(room_i) {
            room.fetch_add(1, Relaxed);
        }
        self.login.add(idx, &[login_us]);
        self.last_join_us.fetch_max(now_us, Relaxed);
    }

    /// A session is open.
    pub fn session_up(&self) {
        let now = self.live.fetch_add(1, Relaxed) + 1;
        self.peak_live.fetch_max(now, Relaxed);
    }

    /// A session is gone.
    pub fn session_down(&self) {
        self.live.fetch_sub(1, Relaxed);
    }

    /// Deliveries expected so far: for each room, posts × (occupants − 1).
    pub fn expected_deliveries(&self) -> u64 {
        self.room_sent
            .iter()
            .zip(&self.room_joined)
            .map(|(s, j)| s.load(Relaxed) * u64::from(j.load(Relaxed).saturating_sub(1)))
            .sum()
    }
}

/// A duration in whole microseconds, as the histograms record it (saturating).
pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorders_batch_into_shards_and_merge() {
        let h = Arc::new(ShardedHist::new(4));
        let mut a = Recorder::new(h.clone(), 0);
        let mut b = Recorder::new(h.clone(), 7);
        for v in 1..=100 {
            a.record(v);
            b.record(v * 1000);
        }
        drop(a);
        b.flush();
        let m = h.merged();
        assert_eq!(m.len(), 200);
        assert!(m.max() >= 99_000);
    }

    #[test]
    fn expected_deliveries_per_room() {
        let s = Stats::new(2, 1);
        s.room_joined[0].store(3, Relaxed);
        s.room_joined[1].store(1, Relaxed);
        s.room_sent[0].store(10, Relaxed);
        s.room_sent[1].store(5, Relaxed);
        assert_eq!(s.expected_deliveries(), 20);
    }
}
