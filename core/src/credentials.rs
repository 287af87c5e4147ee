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
//! SIP clients cannot use SCRAM: SIP digest authentication (RFC 3261 §22.4, with SHA-256 from
//! RFC 8760) needs `HA1 = H(username ":" realm ":" password)`. So, at the same moment, the
//! password is also turned into a [`SipDigest`]: the MD5 and SHA-256 HA1 for the realm of the
//! account's domain ([`sip_ha1`]). The digest username is the user part of the address of
//! record, i.e. the local part of the [`UserId`] (lowercase, as user ids are). HA1 is
//! password-equivalent for that realm: it must be protected like a password hash.
//!
//! **Password normalization.** SASLprep (RFC 4013) mapping is *not* applied: the password's UTF-8
//! bytes are used as given, on derivation and on verification alike. ASCII passwords behave
//! exactly as every client expects; a non-ASCII password works as long as the client sends the
//! same code points it was registered with (clients that do apply SASLprep may differ for
//! passwords containing characters SASLprep maps, such as non-ASCII spaces).

use hmac::{Hmac, Mac};
use md5::Md5;
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::model::{Millis, ScramCredential, SipDigest, UserId, UserRecord};

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

/// The hash function of a SIP/HTTP digest `algorithm` (RFC 7616 §3.3, RFC 8760).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgo {
    /// `MD5` (RFC 3261 §22.4; what every SIP client supports).
    Md5,
    /// `SHA-256` (RFC 8760).
    Sha256,
}

/// `HA1 = H(username ":" realm ":" password)` as lowercase hex (RFC 7616 §3.4.2, without the
/// `-sess` variant): what a digest server keeps instead of the password. For palaver accounts
/// `username` is the local part of the [`UserId`] and `realm` its domain (see
/// [`new_user_record`]). The strings' UTF-8 bytes are hashed as given.
pub fn sip_ha1(algo: DigestAlgo, username: &str, realm: &str, password: &str) -> String {
    let input = [username, realm, password].join(":");
    match algo {
        DigestAlgo::Md5 => to_hex(&Md5::digest(input.as_bytes())),
        DigestAlgo::Sha256 => to_hex(&Sha256::digest(input.as_bytes())),
    }
}

/// The [`SipDigest`] of `user` for `password`: realm = the user's domain, digest username = its
/// local part.
pub fn sip_digest(user: &UserId, password: &str) -> SipDigest {
    let (username, realm) = (user.local(), user.domain());
    SipDigest {
        realm: realm.to_string(),
        ha1_md5: sip_ha1(DigestAlgo::Md5, username, realm, password),
        ha1_sha256: sip_ha1(DigestAlgo::Sha256, username, realm, password),
    }
}

/// Builds a new account record for `user`: SHA-1 and SHA-256 SCRAM credentials, each with its
/// own fresh random [`SALT_LEN`]-byte salt and [`DEFAULT_ITERATIONS`] iterations, and the SIP
/// digest credentials ([`sip_digest`]: realm = the user's domain, digest username = the local
/// part of `user`, which RFC 3261 takes from the user part of the address of record).
///
/// Used both to add a user and to change a password (`palaver user passwd` passes the existing
/// `created_at` as `now`). Accounts created before palaver kept SIP digest credentials have
/// `sip_digest: None` in the store and cannot authenticate over SIP until their password is set
/// again with `palaver user passwd`, which goes through this function.
pub fn new_user_record(user: UserId, password: &str, now: Millis) -> UserRecord {
    let mut rng = rand::thread_rng();
    let mut salt1 = [0u8; SALT_LEN];
    let mut salt256 = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt1);
    rng.fill_bytes(&mut salt256);
    let sip = sip_digest(&user, password);
    UserRecord {
        scram_sha1: derive(ScramHash::Sha1, password, &salt1, DEFAULT_ITERATIONS),
        scram_sha256: derive(ScramHash::Sha256, password, &salt256, DEFAULT_ITERATIONS),
        sip_digest: Some(sip),
        user,
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

/// Lowercase hex of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
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

    /// RFC 7616 §3.9.1: user "Mufasa", password "Circle of Life", realm
    /// "http-auth@example.org". The HA1 values were computed independently (Python hashlib);
    /// the test also recomputes the example's `response` from them, which the RFC publishes.
    #[test]
    fn rfc7616_ha1_vectors() {
        let (user, realm, password) = ("Mufasa", "http-auth@example.org", "Circle of Life");
        let md5 = sip_ha1(DigestAlgo::Md5, user, realm, password);
        let sha256 = sip_ha1(DigestAlgo::Sha256, user, realm, password);
        assert_eq!(md5, "3d78807defe7de2157e2b0b6573a855f");
        assert_eq!(
            sha256,
            "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
        );

        // response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" H(method ":" uri))
        let response = |h: fn(&[u8]) -> String, ha1: &str| {
            let ha2 = h(b"GET:/dir/index.html");
            h(format!(
                "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:\
                 f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}"
            )
            .as_bytes())
        };
        let h_md5: fn(&[u8]) -> String = |d| to_hex(&Md5::digest(d));
        let h_sha256: fn(&[u8]) -> String = |d| to_hex(&Sha256::digest(d));
        assert_eq!(response(h_md5, &md5), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            response(h_sha256, &sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn sip_ha1_hashes_utf8_as_given() {
        // Independently computed (Python hashlib) over b"alice:example.org:p\xc3\xa2ss".
        assert_eq!(
            sip_ha1(DigestAlgo::Md5, "alice", "example.org", "pâss"),
            "4bf50a01401f830385642db72ab59d06"
        );
        assert_eq!(
            sip_ha1(DigestAlgo::Sha256, "alice", "example.org", "pâss"),
            "a63a53e899049163bd86ff7fd9d90ab7c93a34112fb23b0373c5696cffbd51da"
        );
        assert_ne!(
            sip_ha1(DigestAlgo::Md5, "alice", "example.org", "pâss"),
            sip_ha1(DigestAlgo::Md5, "Alice", "example.org", "pâss")
        );
    }

    #[test]
    fn new_user_record_fills_sip_digest_for_the_domain() {
        let user = UserId::parse("Alice@Example.org").expect("valid user id");
        let rec = new_user_record(user, "pâss", 1);
        let sip = rec.sip_digest.expect("sip digest");
        assert_eq!(sip.realm, "example.org");
        assert_eq!(sip.ha1_md5, "4bf50a01401f830385642db72ab59d06");
        assert_eq!(
            sip.ha1_sha256,
            "a63a53e899049163bd86ff7fd9d90ab7c93a34112fb23b0373c5696cffbd51da"
        );
        let other = new_user_record(UserId::parse("alice@example.org").expect("id"), "x", 1);
        assert_ne!(other.sip_digest.expect("sip").ha1_md5, sip.ha1_md5);
    }

    #[test]
    fn hex_encoding() {
        assert_eq!(to_hex(&[]), "");
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
