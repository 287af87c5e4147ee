//! A cap on concurrent TCP/TLS connections per source IP address, for XMPP and SIP
//! listeners alike: a connection over the cap is closed at once, before any TLS or parsing,
//! so one host cannot exhaust sockets, memory and tasks. A permit is held for the life of
//! each connection and released when it is dropped.

use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Open connections by source address.
pub struct ConnLimiter {
    /// The cap; changed at run time by a configuration reload (SIGHUP).
    max: AtomicUsize,
    open: DashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees the slot.
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl ConnLimiter {
    /// At most `max` concurrent connections per address (0 means no cap).
    pub fn new(max: usize) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            max: AtomicUsize::new(max),
            open: DashMap::new(),
        })
    }

    /// Changes the cap for new connections (open ones stay).
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// A permit for a new connection from `ip`, or `None` when the address is at its cap.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnPermit> {
        let mut count = self.open.entry(ip).or_insert(0);
        let max = self.max.load(Ordering::Relaxed);
        if max > 0 && *count >= max {
            return None;
        }
        *count += 1;
        Some(ConnPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// Connections currently open from `ip`.
    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> usize {
        self.open.get(&ip).map_or(0, |c| *c)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Some(mut count) = self.limiter.open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
        }
        self.limiter.open.remove_if(&self.ip, |_, c| *c == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_per_address_and_slots_come_back() {
        let limiter = ConnLimiter::new(2);
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        let first = limiter.try_acquire(a);
        let second = limiter.try_acquire(a);
        assert!(first.is_some() && second.is_some());
        assert!(limiter.try_acquire(a).is_none());
        assert!(limiter.try_acquire(b).is_some());
        drop(first);
        assert_eq!(limiter.open_from(a), 1);
        assert!(limiter.try_acquire(a).is_some());
    }

    #[test]
    fn zero_means_no_cap() {
        let limiter = ConnLimiter::new(0);
        let a: IpAddr = [127, 0, 0, 2].into();
        let permits: Vec<_> = (0..100).filter_map(|_| limiter.try_acquire(a)).collect();
        assert_eq!(permits.len(), 100);
    }
}
