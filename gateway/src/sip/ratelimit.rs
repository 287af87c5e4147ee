//! Per-source-IP token buckets for SIP requests: a flood from one address is dropped (UDP) or
//! answered 503 (streams) without slowing anyone else. The table is bounded: when it grows
//! past its limit, buckets that have refilled completely are forgotten.

use dashmap::DashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Most addresses tracked before full buckets are pruned.
const MAX_TRACKED: usize = 100_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by source address.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: DashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// `rate` requests per second sustained, `burst` at once.
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: DashMap::new(),
        }
    }

    /// Takes one token for `ip`; false when its bucket is empty.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        if self.buckets.len() > MAX_TRACKED {
            self.prune(now);
        }
        let mut bucket = self.buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn prune(&self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets
            .retain(|_, b| b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_is_limited_and_others_are_not() {
        let limiter = RateLimiter::new(1, 5);
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let allowed = (0..50).filter(|_| limiter.allow(a)).count();
        assert!((5..=6).contains(&allowed), "allowed {allowed}");
        assert!(limiter.allow(b));
    }
}
