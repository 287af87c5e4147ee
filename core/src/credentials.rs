//! Password credentials: SCRAM key derivation (RFC 5802, RFC 7677) and password checks.
//!
//! palaver never stores passwords. When an account is created (or its password changed) the
//! password is turned into one [`ScramCredential`] per supported hash (SHA-1 and SHA-256):
//!
//! ```text
//! SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations)
//! ClientKey      = HMAC-H(SaltedPassword, "Client Key")
//! StoredKey      = H(ClientKey)
//! ServerKey      = HMAC-H(SaltedPassword, "Server Key")
//! ```
//!
//! and only `salt`, `iterations`, `StoredKey` and `ServerKey` are kept. Those are exactly what a
//! SCRAM server needs (see `palaver_dialects::xmpp::sasl`), and they are enough to check a
//! cleartext password received over SASL PLAIN ([`verify_password`]).
//!
//! **Password normalization.** SASLprep (RFC 4013) mapping is *not* applied: the password's UTF-8
//! bytes are used as given, on derivation and on verification alike. ASCII passwords behave
//! exactly as every client expects; a non-ASCII password works as long as the client sends the
//! same code points it was registered with (clients that do apply SASLprep may differ for
//! passwords containing characters SASLprep maps, such as non-ASCII spaces).

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::model::{Millis, ScramCredential, UserId, UserRecord};

/// Iteration count used for new credentials (the RFC 5802/7677 examples' value; the minimum
/// RFC 7677 recommends).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Length in bytes of the random salt of new credentials.
pub const SALT_LEN: usize = 16;

/// The hash function of a SCRAM mechanism: `SCRAM-SHA-1` or `SCRAM-SHA-256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    /// SHA-1 (`SCRAM-SHA-1`, RFC 5802).
    Sha1,
    /// SHA-256 (`SCRAM-SHA-256`, RFC 7677).
    Sha256,
}

impl ScramHash {
    /// Output length of the hash in bytes (also the length of every SCRAM key): 20 or 32.
    pub fn output_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }
}

/// Derives the SCRAM credential for `password` (RFC 5802 §3).
///
/// `iterations` of 0 is treated as 1 (PBKDF2 needs at least one round); the returned credential
/// carries the count actually used. The password's UTF-8 bytes are used without SASLprep.
pub fn derive(hash: ScramHash, password: &str, salt: &[u8], iterations: u32) -> ScramCredential {
    let iterations = iterations.max(1);
    let salted = salted_password(hash, password.as_bytes(), salt, iterations);
    let client_key = hmac(hash, &salted, b"Client Key");
    let stored_key = digest(hash, &client_key);
    let server_key = hmac(hash, &salted, b"Server Key");
    ScramCredential {
        salt: salt.to_vec(),
        iterations,
        stored_key,
        server_key,
    }
}

/// Builds a new account record for `user`: SHA-1 and SHA-256 credentials, each with its own
/// fresh random [`SALT_LEN`]-byte salt and [`DEFAULT_ITERATIONS`] iterations.
pub fn new_user_record(user: UserId, password: &str, now: Millis) -> UserRecord {
    let mut rng = rand::thread_rng();
    let mut salt1 = [0u8; SALT_LEN];
    let mut salt256 = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt1);
    rng.fill_bytes(&mut salt256);
    UserRecord {
        user,
        scram_sha1: derive(ScramHash::Sha1, password, &salt1, DEFAULT_ITERATIONS),
        scram_sha256: derive(ScramHash::Sha256, password, &salt256, DEFAULT_ITERATIONS),
        created_at: now,
    }
}

/// Checks a cleartext password (SASL PLAIN) against a stored credential made with `hash`:
/// recomputes StoredKey with the credential's salt and iteration count and compares it in
/// constant time. Costs one PBKDF2 run of `cred.iterations` rounds.
pub fn verify_password(cred: &ScramCredential, hash: ScramHash, password: &str) -> bool {
    if cred.stored_key.len() != hash.output_len() {
        return false;
    }
    let candidate = derive(hash, password, &cred.salt, cred.iterations);
    constant_time_eq(&candidate.stored_key, &cred.stored_key)
}

/// PBKDF2-HMAC-H(password, salt, iterations) with output length equal to H's.
fn salted_password(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; hash.output_len()];
    // HMAC accepts keys of any length, so these never fail; on the impossible error the
    // all-zero output simply matches nothing real.
    let _ = match hash {
        ScramHash::Sha1 => pbkdf2::pbkdf2::<Hmac<Sha1>>(password, salt, iterations, &mut out),
        ScramHash::Sha256 => pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, &mut out),
    };
    out
}

/// HMAC-H(key, data).
fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha1 => match <Hmac<Sha1> as Mac>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => vec![0u8; hash.output_len()],
        },
        ScramHash::Sha256 => match <Hmac<Sha256> as Mac>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => vec![0u8; hash.output_len()],
        },
    }
}

/// H(data).
fn digest(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha1 => Sha1::digest(data).to_vec(),
        ScramHash::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// Compares two byte strings without an early exit on the first difference (lengths are not
/// secret and are compared directly).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimal standard-alphabet base64 decoder for the RFC test vectors (core has no base64
    /// dependency). Panics on bad input: test-only.
    fn b64(s: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut nbits = 0;
        let mut out = Vec::new();
        for c in s.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET.iter().position(|&a| a == c).expect("base64 char") as u32;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                out.push((bits >> nbits) as u8);
            }
        }
        out
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
        a.iter().zip(b).map(|(x, y)| x ^ y).collect()
    }

    /// Checks a credential against an RFC example exchange: the server signature must match
    /// and the client proof must unmask to a ClientKey whose hash is StoredKey.
    fn check_against_exchange(
        hash: ScramHash,
        cred: &ScramCredential,
        auth_message: &str,
        client_proof_b64: &str,
        server_signature_b64: &str,
    ) {
        let server_signature = hmac(hash, &cred.server_key, auth_message.as_bytes());
        assert_eq!(server_signature, b64(server_signature_b64));
        let client_signature = hmac(hash, &cred.stored_key, auth_message.as_bytes());
        let client_key = xor(&b64(client_proof_b64), &client_signature);
        assert_eq!(digest(hash, &client_key), cred.stored_key);
    }

    #[test]
    fn rfc5802_sha1_vector() {
        let salt = b64("QSXCR+Q6sek8bf92");
        let cred = derive(ScramHash::Sha1, "pencil", &salt, 4096);
        assert_eq!(cred.salt, salt);
        assert_eq!(cred.iterations, 4096);
        // Independently computed (Python hashlib/hmac).
        assert_eq!(
            cred.stored_key,
            hex("e9d94660c39d65c38fbad91c358f14da0eef2bd6")
        );
        assert_eq!(
            cred.server_key,
            hex("0fe09258b3ac852ba502cc62ba903eaacdbf7d31")
        );
        let auth_message = "n=user,r=fyko+d2lbbFgONRv9qkxdawL,\
             r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,\
             c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
        check_against_exchange(
            ScramHash::Sha1,
            &cred,
            auth_message,
            "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        );
    }

    #[test]
    fn rfc7677_sha256_vector() {
        let salt = b64("W22ZaJ0SNY7soEsUEjb6gQ==");
        let cred = derive(ScramHash::Sha256, "pencil", &salt, 4096);
        assert_eq!(
            cred.stored_key,
            hex("586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6")
        );
        assert_eq!(
            cred.server_key,
            hex("c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5")
        );
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
             r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
             c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        check_against_exchange(
            ScramHash::Sha256,
            &cred,
            auth_message,
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
    }

    #[test]
    fn verify_password_accepts_right_and_rejects_wrong() {
        let salt = b64("QSXCR+Q6sek8bf92");
        for hash in [ScramHash::Sha1, ScramHash::Sha256] {
            let cred = derive(hash, "pencil", &salt, 64);
            assert!(verify_password(&cred, hash, "pencil"));
            assert!(!verify_password(&cred, hash, "Pencil"));
            assert!(!verify_password(&cred, hash, ""));
            assert!(!verify_password(&cred, hash, "pencil "));
        }
        // A credential checked with the wrong hash never matches.
        let cred = derive(ScramHash::Sha1, "pencil", &salt, 64);
        assert!(!verify_password(&cred, ScramHash::Sha256, "pencil"));
        let cred = derive(ScramHash::Sha256, "pencil", &salt, 64);
        assert!(!verify_password(&cred, ScramHash::Sha1, "pencil"));
    }

    #[test]
    fn verify_password_rejects_corrupt_credentials() {
        let mut cred = derive(ScramHash::Sha256, "pencil", b"salt", 16);
        cred.stored_key.pop();
        assert!(!verify_password(&cred, ScramHash::Sha256, "pencil"));
        cred.stored_key.clear();
        assert!(!verify_password(&cred, ScramHash::Sha256, "pencil"));
    }

    #[test]
    fn non_ascii_password_round_trips_without_normalization() {
        let cred = derive(ScramHash::Sha256, "pâss wörd\u{a0}", b"salt", 16);
        assert!(verify_password(&cred, ScramHash::Sha256, "pâss wörd\u{a0}"));
        // No SASLprep: a non-breaking space is not mapped to an ASCII space.
        assert!(!verify_password(&cred, ScramHash::Sha256, "pâss wörd "));
    }

    #[test]
    fn zero_iterations_is_treated_as_one() {
        let zero = derive(ScramHash::Sha1, "pencil", b"salt", 0);
        let one = derive(ScramHash::Sha1, "pencil", b"salt", 1);
        assert_eq!(zero, one);
        assert_eq!(zero.iterations, 1);
        assert!(verify_password(&zero, ScramHash::Sha1, "pencil"));
    }

    #[test]
    fn new_user_record_uses_fresh_salts_and_defaults() {
        let user = UserId::parse("Alice@Example.org").expect("valid user id");
        let a = new_user_record(user.clone(), "secret", 1234);
        let b = new_user_record(user.clone(), "secret", 1234);
        assert_eq!(a.user, user);
        assert_eq!(a.created_at, 1234);
        for (cred, hash) in [
            (&a.scram_sha1, ScramHash::Sha1),
            (&a.scram_sha256, ScramHash::Sha256),
        ] {
            assert_eq!(cred.salt.len(), SALT_LEN);
            assert_eq!(cred.iterations, DEFAULT_ITERATIONS);
            assert_eq!(cred.stored_key.len(), hash.output_len());
            assert_eq!(cred.server_key.len(), hash.output_len());
            assert!(verify_password(cred, hash, "secret"));
            assert!(!verify_password(cred, hash, "Secret"));
        }
        assert_ne!(a.scram_sha1.salt, a.scram_sha256.salt);
        assert_ne!(a.scram_sha1.salt, b.scram_sha1.salt);
        assert_ne!(a.scram_sha256.stored_key, b.scram_sha256.stored_key);
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
