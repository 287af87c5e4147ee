//! Per-IP back-off for failed logins: after N failures an address gets
//! `<temporary-auth-failure/>` without a password check until its back-off expires (30 s,
//! doubling with each further failure, at most 15 min). A success clears the address.

use dashmap::DashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    blocked_until: Option<Instant>,
}

/// Failure counters by client address.
pub struct AuthBackoff {
    threshold: u32,
    entries: DashMap<IpAddr, Entry>,
}

impl AuthBackoff {
    pub fn new(threshold: u32) -> Self {
        AuthBackoff {
            threshold: threshold.max(1),
            entries: DashMap::new(),
        }
    }

    /// If the address is currently blocked, how long remains.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        let until = self.entries.get(&ip).and_then(|e| e.blocked_until)?;
        until.checked_duration_since(Instant::now())
    }

    /// Records a failure; returns the block now in force, if any.
    pub fn failure(&self, ip: IpAddr) -> Option<Duration> {
        let mut e = self.entries.entry(ip).or_insert(Entry {
            failures: 0,
            blocked_until: None,
        });
        e.failures = e.failures.saturating_add(1);
        if e.failures < self.threshold {
            return None;
        }
        let extra = (e.failures - self.threshold).min(5);
        let block = Duration::from_secs(30u64 << extra).min(Duration::from_secs(900));
        e.blocked_until = Some(Instant::now() + block);
        Some(block)
    }

    pub fn success(&self, ip: IpAddr) {
        self.entries.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_threshold_and_clears_on_success() {
        let b = AuthBackoff::new(5);
        let ip: IpAddr = [127, 0, 0, 9].into();
        for _ in 0..4 {
            assert!(b.failure(ip).is_none());
            assert!(b.blocked_for(ip).is_none());
        }
        let block = b.failure(ip).expect("fifth failure blocks");
        assert_eq!(block, Duration::from_secs(30));
        assert!(b.blocked_for(ip).is_some());
        assert_eq!(b.failure(ip), Some(Duration::from_secs(60)));
        let other: IpAddr = [127, 0, 0, 10].into();
        assert!(b.blocked_for(other).is_none());
        b.success(ip);
        assert!(b.blocked_for(ip).is_none());
    }
}
