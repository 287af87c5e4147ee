//! Server-side digest authentication (RFC 2617, RFC 7616, RFC 8760) for REGISTER and other
//! requests: challenges offering SHA-256 then MD5 with `qop="auth"`, and verification of the
//! client's Authorization value.
//!
//! Nonces are stateless: `base64url(timestamp ‖ salt ‖ HMAC-SHA256(secret, timestamp ‖ salt))`,
//! so any node sharing the secret can check them and their age. The random 8-byte salt keeps
//! two challenges issued in the same second distinct, so two clients never share a nonce (which
//! would make the second one's `nc=00000001` look like a replay). Replay protection keeps, for
//! each nonce that authenticated something, the highest `nc` seen: `nc` must increase. That map
//! is bounded; expired nonces are dropped first, and when live ones must be evicted every nonce
//! issued up to the evicted one's time is treated as stale afterwards, so eviction never
//! re-opens a replay window.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use thiserror::Error;

pub use crate::sip::digest_header::{ha1_hex, DigestAlgo, DigestCredentials};
use crate::sip::syntax::quote;

/// Default bound on the number of nonces tracked for replay protection.
pub const DEFAULT_MAX_TRACKED_NONCES: usize = 16 * 1024;

/// Clock skew tolerated for nonces that claim to come from the future (seconds).
const FUTURE_SKEW: u64 = 60;

/// Why a request's credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigestError {
    /// No Authorization header: send the challenge (401).
    #[error("no credentials")]
    Missing,
    /// Not a parsable Digest value, an unsupported algorithm or qop, or a bad nc/response: 400.
    #[error("malformed digest credentials")]
    Malformed,
    /// Credentials for another realm: challenge again (401).
    #[error("credentials for another realm")]
    WrongRealm,
    /// The lookup knows no such user (answer like [`DigestError::WrongResponse`] so users
    /// cannot be enumerated).
    #[error("unknown user")]
    UnknownUser,
    /// The response does not match: wrong password (403, or 401 with back-off).
    #[error("wrong digest response")]
    WrongResponse,
    /// Correct response for a nonce that expired or is not ours: challenge with `stale=true`.
    #[error("stale nonce")]
    StaleNonce,
    /// Correct response, but this `nc` was already used with this nonce: challenge again.
    #[error("replayed nonce count")]
    Replay,
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestOk {
    /// The authenticated `username`.
    pub user: String,
    /// The algorithm the client used.
    pub algo: DigestAlgo,
}

/// The digest authenticator of one realm.
#[derive(Debug, Clone)]
pub struct DigestServer {
    secret: [u8; 32],
    realm: String,
    nonce_lifetime: u64,
    opaque: String,
    /// nonce → (issued at, highest nc).
    seen: HashMap<String, (u64, u32)>,
    max_tracked: usize,
    /// Nonces issued at or before this time and not in `seen` are stale (see module doc).
    evicted_up_to: Option<u64>,
}

impl DigestServer {
    /// An authenticator for `realm` whose nonces live `nonce_lifetime_secs` seconds.
    pub fn new(secret: [u8; 32], realm: &str, nonce_lifetime_secs: u64) -> Self {
        let opaque = to_hex(&mac(&secret, format!("palaver-opaque:{realm}").as_bytes())[..16]);
        DigestServer {
            secret,
            realm: realm.to_string(),
            nonce_lifetime: nonce_lifetime_secs,
            opaque,
            seen: HashMap::new(),
            max_tracked: DEFAULT_MAX_TRACKED_NONCES,
            evicted_up_to: None,
        }
    }

    /// Changes the bound on tracked nonces (at least 1).
    pub fn with_max_tracked(mut self, max: usize) -> Self {
        self.max_tracked = max.max(1);
        self
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Number of nonces currently tracked for replay protection.
    pub fn tracked(&self) -> usize {
        self.seen.len()
    }

    /// A fresh nonce issued at `now` (seconds).
    pub fn nonce(&self, now: u64) -> String {
        let mut salt = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut salt);
        let mut raw = Vec::with_capacity(32);
        raw.extend_from_slice(&now.to_be_bytes());
        raw.extend_from_slice(&salt);
        let tag = mac(&self.secret, &raw);
        raw.extend_from_slice(&tag[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The WWW-Authenticate (or Proxy-Authenticate) values for a 401/407: SHA-256 first, then
    /// MD5, sharing one fresh nonce; `stale=TRUE` when the previous nonce was merely stale.
    pub fn challenge(&self, now: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        [DigestAlgo::Sha256, DigestAlgo::Md5]
            .iter()
            .map(|algo| {
                format!(
                    "Digest realm={}, nonce=\"{nonce}\", opaque=\"{}\", algorithm={}, qop=\"auth\"{}",
                    quote(&self.realm),
                    self.opaque,
                    algo.name(),
                    if stale { ", stale=TRUE" } else { "" }
                )
            })
            .collect()
    }

    /// Verifies the Authorization value of a request with `method` at time `now` (seconds).
    /// `ha1_lookup(user, algo)` returns the stored hex HA1 for this realm.
    pub fn verify(
        &mut self,
        method: &str,
        authorization: Option<&str>,
        now: u64,
        ha1_lookup: impl Fn(&str, DigestAlgo) -> Option<String>,
    ) -> Result<DigestOk, DigestError> {
        let value = authorization.ok_or(DigestError::Missing)?;
        let creds = DigestCredentials::parse(value).ok_or(DigestError::Malformed)?;
        let algo = creds.algo().ok_or(DigestError::Malformed)?;
        let (Some(qop), Some(nc), Some(cnonce)) = (&creds.qop, &creds.nc, &creds.cnonce) else {
            return Err(DigestError::Malformed);
        };
        let nc_valid = nc.len() == 8 && nc.bytes().all(|b| b.is_ascii_hexdigit());
        let nc = u32::from_str_radix(nc, 16)
            .ok()
            .filter(|_| nc_valid)
            .ok_or(DigestError::Malformed)?;
        let response_valid = creds.response.len() == algo.hex_len()
            && creds.response.bytes().all(|b| b.is_ascii_hexdigit());
        if !qop.eq_ignore_ascii_case("auth")
            || cnonce.is_empty()
            || creds.uri.is_empty()
            || !response_valid
        {
            return Err(DigestError::Malformed);
        }
        if creds.realm != self.realm {
            return Err(DigestError::WrongRealm);
        }
        let ha1 = ha1_lookup(&creds.username, algo).ok_or(DigestError::UnknownUser)?;
        let expected = creds.expected_response(algo, method, &ha1.to_ascii_lowercase());
        if !constant_time_eq(
            expected.as_bytes(),
            creds.response.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(DigestError::WrongResponse);
        }
        let opaque_ok = creds.opaque.as_deref().is_none_or(|o| o == self.opaque);
        let issued = self.issued_at(&creds.nonce).filter(|_| opaque_ok);
        let issued = issued.ok_or(DigestError::StaleNonce)?;
        let fresh = issued.saturating_add(self.nonce_lifetime) >= now
            && issued <= now.saturating_add(FUTURE_SKEW);
        if !fresh {
            return Err(DigestError::StaleNonce);
        }
        match self.seen.get_mut(&creds.nonce) {
            Some((_, highest)) if nc <= *highest => return Err(DigestError::Replay),
            Some((_, highest)) => *highest = nc,
            None => {
                if self.evicted_up_to.is_some_and(|t| issued <= t) {
                    return Err(DigestError::StaleNonce);
                }
                self.remember(creds.nonce.clone(), issued, nc, now);
            }
        }
        Ok(DigestOk {
            user: creds.username,
            algo,
        })
    }

    /// The issue time of one of our nonces (`None` if it is not ours).
    fn issued_at(&self, nonce: &str) -> Option<u64> {
        let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if raw.len() != 32 {
            return None;
        }
        let (signed, tag) = raw.split_at(16);
        let expected = mac(&self.secret, signed);
        if !constant_time_eq(&expected[..16], tag) {
            return None;
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(signed.get(..8)?);
        Some(u64::from_be_bytes(ts))
    }

    fn remember(&mut self, nonce: String, issued: u64, nc: u32, now: u64) {
        if self.seen.len() >= self.max_tracked {
            let lifetime = self.nonce_lifetime;
            self.seen
                .retain(|_, (t, _)| t.saturating_add(lifetime) >= now);
        }
        while self.seen.len() >= self.max_tracked {
            let Some((oldest, t)) = self
                .seen
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, (t, _))| (k.clone(), *t))
            else {
                break;
            };
            self.seen.remove(&oldest);
            self.evicted_up_to = Some(self.evicted_up_to.map_or(t, |e| e.max(t)));
        }
        self.seen.insert(nonce, (issued, nc));
    }
}

fn mac(secret: &[u8], data: &[u8]) -> [u8; 32] {
    match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().into()
        }
        // HMAC takes keys of any length: unreachable.
        Err(_) => [0u8; 32],
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without an early exit (lengths are not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
