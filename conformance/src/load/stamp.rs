//! The stamp in every load message body — `plv1 <run> <sender> <seq> <sent µs> xxxx…` — from
//! which a receiver tells whose post it is, which one, and how long it took (the send time is
//! microseconds since the run's epoch, one clock for every session of the process). Bodies are
//! padded with `x` to the configured size; `<run>` (random per run) keeps stale messages of an
//! earlier run, e.g. from room history, out of the counts.

use std::io::Write as _;

const MAGIC: &str = "plv1";

/// What a body says about its post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the sending session.
    pub sender: u32,
    pub seq: u64,
    pub sent_us: u64,
}

/// Appends the body text for `stamp` to `out`, padded to `size` bytes (never cut).
pub fn write_body(out: &mut Vec<u8>, run: u32, stamp: Stamp, size: usize) {
    let start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "{MAGIC} {run:08x} {} {} {}",
        stamp.sender, stamp.seq, stamp.sent_us
    );
    let len = out.len() - start;
    if len < size {
        out.push(b' ');
        out.resize(start + size, b'x');
    }
}

/// Reads a body written by [`write_body`] in run `run`; anything else is `None`.
pub fn parse(body: &str, run: u32) -> Option<Stamp> {
    let mut it = body.split(' ');
    if it.next()? != MAGIC || u32::from_str_radix(it.next()?, 16).ok()? != run {
        return None;
    }
    Some(Stamp {
        sender: it.next()?.parse().ok()?,
        seq: it.next()?.parse().ok()?,
        sent_us: it.next()?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let stamp = Stamp {
            sender: 42,
            seq: 7,
            sent_us: 123_456_789,
        };
        let mut out = b"<body>".to_vec();
        write_body(&mut out, 0xdead, stamp, 100);
        assert_eq!(out.len(), 6 + 100);
        let body = std::str::from_utf8(&out[6..]).expect("ascii");
        assert_eq!(parse(body, 0xdead), Some(stamp));
        assert_eq!(parse(body, 0xbeef), None);
        let mut short = Vec::new();
        write_body(&mut short, 1, stamp, 5);
        assert_eq!(
            parse(std::str::from_utf8(&short).expect("ascii"), 1),
            Some(stamp)
        );
        assert_eq!(parse("hello world", 1), None);
        assert_eq!(parse("plv1 00000001 x 1 2", 1), None);
    }
}

/// The stamps one receiver has seen, to tell a first delivery from a duplicate (a server that
/// delivers a post twice — a retransmission taken for a new request, a replay — must not look
/// faster for it). One bit per (sender, seq): a few words per sender for a run.
#[derive(Debug, Default)]
pub struct Seen {
    bits: std::collections::HashMap<u32, Vec<u64>>,
}

impl Seen {
    /// Records `stamp`; false when this receiver had seen it already.
    pub fn first_time(&mut self, stamp: &Stamp) -> bool {
        let words = self.bits.entry(stamp.sender).or_default();
        let Ok(word) = usize::try_from(stamp.seq / 64) else {
            return true;
        };
        if words.len() <= word {
            words.resize(word + 1, 0);
        }
        let bit = 1u64 << (stamp.seq % 64);
        let first = words[word] & bit == 0;
        words[word] |= bit;
        first
    }
}

#[cfg(test)]
mod seen_tests {
    use super::*;

    #[test]
    fn a_stamp_counts_once_per_receiver() {
        let mut seen = Seen::default();
        let s = |sender, seq| Stamp {
            sender,
            seq,
            sent_us: 0,
        };
        assert!(seen.first_time(&s(1, 0)));
        assert!(seen.first_time(&s(1, 130)));
        assert!(seen.first_time(&s(2, 0)));
        assert!(!seen.first_time(&s(1, 0)));
        assert!(!seen.first_time(&s(1, 130)));
        assert!(seen.first_time(&s(1, 129)));
    }
}
