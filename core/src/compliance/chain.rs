//! The hash chain: each row's hash is SHA-256 over the previous row's hash (32 bytes; 32 zero
//! bytes before the first row) followed by a canonical encoding of the row: seq and at as 8-byte
//! big-endian integers, then room, actor, protocol, kind and detail, each as a 4-byte
//! big-endian length and its UTF-8 bytes. Hashes are stored as 64 lowercase hex digits.

use super::event::ComplianceEvent;
use sha2::{Digest, Sha256};

/// The hash before the first row: 32 zero bytes, in hex.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn put_str(h: &mut Sha256, s: &str) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    h.update(len.to_be_bytes());
    h.update(s.as_bytes());
}

/// The hash (hex) of the row `seq` holding `event`, after the row whose hash is `prev` (hex).
/// `None` when `prev` is not 64 hex digits.
pub fn row_hash(prev: &str, seq: i64, event: &ComplianceEvent) -> Option<String> {
    let prev = from_hex(prev)?;
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(event.at.to_be_bytes());
    put_str(&mut h, &event.room);
    put_str(&mut h, &event.actor);
    put_str(&mut h, &event.protocol);
    put_str(&mut h, event.kind.as_str());
    put_str(&mut h, &event.detail);
    Some(to_hex(&h.finalize()))
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// 32 bytes from 64 hex digits (either case).
pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::EventKind;

    fn ev(detail: &str) -> ComplianceEvent {
        ComplianceEvent {
            at: 1,
            room: "r".into(),
            actor: "a@x".into(),
            protocol: "xmpp".into(),
            kind: EventKind::Message,
            detail: detail.into(),
        }
    }

    #[test]
    fn hex_round_trip_and_hash_sensitivity() {
        let h = row_hash(ZERO_HASH, 1, &ev("{}")).unwrap_or_default();
        assert_eq!(h.len(), 64);
        assert_eq!(from_hex(&h).map(|b| to_hex(&b)), Some(h.clone()));
        assert_ne!(Some(h.clone()), row_hash(ZERO_HASH, 2, &ev("{}")));
        assert_ne!(Some(h.clone()), row_hash(ZERO_HASH, 1, &ev("{ }")));
        assert_ne!(Some(h), row_hash(&"1".repeat(64), 1, &ev("{}")));
        assert_eq!(row_hash("xyz", 1, &ev("{}")), None);
    }
}
