//! The client side of SASL for XMPP: choosing a mechanism among those the server offers
//! (SCRAM-SHA-256, then SCRAM-SHA-1, then PLAIN — PLAIN only over TLS), and the SCRAM exchange
//! of RFC 5802 / RFC 7677 (no channel binding: gs2 header `n,,`), including the check of the
//! server's signature. Nothing here panics on what the server sends.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Highest SCRAM iteration count we agree to compute (a hostile server cannot make each login
/// cost minutes of CPU).
const MAX_ITERATIONS: u32 = 1_000_000;

/// A SASL mechanism this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    ScramSha256,
    ScramSha1,
    Plain,
}

impl Mechanism {
    /// The IANA name, as in `<mechanism/>`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// Parses a mechanism name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Mechanism> {
        [
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// The mechanism to use: `wanted` if the server offers it (PLAIN also needs TLS), otherwise the
/// strongest one offered.
pub fn choose(offered: &[String], wanted: Option<Mechanism>, encrypted: bool) -> Option<Mechanism> {
    let usable = |m: Mechanism| {
        offered.iter().any(|o| o == m.name()) && (m != Mechanism::Plain || encrypted)
    };
    match wanted {
        Some(m) => usable(m).then_some(m),
        None => [
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain,
        ]
        .into_iter()
        .find(|m| usable(*m)),
    }
}

/// The initial response of PLAIN (RFC 4616): `\0user\0password`, base64.
pub fn plain_initial(user: &str, password: &str) -> String {
    B64.encode(format!("\0{user}\0{password}"))
}

/// One SCRAM exchange on the client side.
pub struct Scram {
    mech: Mechanism,
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl Scram {
    /// Starts an exchange for `user` with a random nonce.
    pub fn new(mech: Mechanism, user: &str, password: &str) -> Scram {
        let nonce: [u8; 18] = rand::random();
        Scram::with_nonce(mech, user, password, &B64.encode(nonce))
    }

    /// Starts an exchange with a given nonce (tests use the RFC's).
    pub fn with_nonce(mech: Mechanism, user: &str, password: &str, nonce: &str) -> Scram {
        let name = user.replace('=', "=3D").replace(',', "=2C");
        Scram {
            mech,
            password: password.to_string(),
            nonce: nonce.to_string(),
            client_first_bare: format!("n={name},r={nonce}"),
            server_signature: None,
        }
    }

    /// The client-first message (the payload of `<auth/>`).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Takes the server-first message (decoded `<challenge/>`) and returns the client-final
    /// message (for `<response/>`).
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "server-first message is not UTF-8".to_string())?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("m", _)) => return Err("server requires a SCRAM extension".into()),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("server-first message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("server nonce does not extend ours".into());
        }
        let salt = B64
            .decode(salt.ok_or("server-first message has no salt")?)
            .map_err(|_| "salt is not base64".to_string())?;
        let iterations: u32 = iterations
            .ok_or("server-first message has no iteration count")?
            .parse()
            .map_err(|_| "bad iteration count".to_string())?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(format!("iteration count {iterations} out of range"));
        }
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let salted = self.salted_password(&salt, iterations);
        let client_key = self.hmac(&salted, b"Client Key")?;
        let stored_key = self.hash(&client_key);
        let signature = self.hmac(&stored_key, auth_message.as_bytes())?;
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = self.hmac(&salted, b"Server Key")?;
        self.server_signature = Some(self.hmac(&server_key, auth_message.as_bytes())?);
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final message (`v=…`, from `<success/>` or a last `<challenge/>`).
    pub fn verify_server_final(&self, data: &[u8]) -> Result<(), String> {
        let text =
            std::str::from_utf8(data).map_err(|_| "server-final is not UTF-8".to_string())?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("server-final error: {e}"));
        }
        let v = text
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .ok_or("server-final message has no verifier")?;
        let v = B64
            .decode(v)
            .map_err(|_| "server verifier is not base64".to_string())?;
        match &self.server_signature {
            Some(expected) if *expected == v => Ok(()),
            Some(_) => Err("the server's signature is wrong".into()),
            None => Err("server-final before client-final".into()),
        }
    }

    fn salted_password(&self, salt: &[u8], iterations: u32) -> Vec<u8> {
        let password = self.password.as_bytes();
        match self.mech {
            Mechanism::ScramSha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            _ => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }

    fn hmac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
        let bad_key = |_| "HMAC key rejected".to_string();
        Ok(match self.mech {
            Mechanism::ScramSha1 => {
                let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).map_err(bad_key)?;
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            _ => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(bad_key)?;
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        })
    }

    fn hash(&self, data: &[u8]) -> Vec<u8> {
        match self.mech {
            Mechanism::ScramSha1 => Sha1::digest(data).to_vec(),
            _ => Sha256::digest(data).to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mech: Mechanism, nonce: &str, server_first: &str, final_msg: &str, server_final: &str) {
        let mut s = Scram::with_nonce(mech, "user", "pencil", nonce);
        assert_eq!(s.client_first(), format!("n,,n=user,r={nonce}"));
        assert_eq!(
            s.client_final(server_first.as_bytes()).as_deref(),
            Ok(final_msg)
        );
        assert_eq!(s.verify_server_final(server_final.as_bytes()), Ok(()));
        assert!(s.verify_server_final(b"v=AAAA").is_err());
    }

    #[test]
    fn rfc5802_sha1_vector() {
        run(
            Mechanism::ScramSha1,
            "fyko+d2lbbFgONRv9qkxdawL",
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        );
    }

    #[test]
    fn rfc7677_sha256_vector() {
        run(
            Mechanism::ScramSha256,
            "rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        );
    }

    #[test]
    fn hostile_server_first_is_refused() {
        let mut s = Scram::with_nonce(Mechanism::ScramSha256, "user", "pw", "abc");
        for bad in [
            "r=xyz1,s=QSXC,i=4096",
            "r=abc,s=QSXC,i=4096",
            "r=abc1,s=!!,i=4096",
            "r=abc1,s=QSXC,i=0",
            "r=abc1,s=QSXC,i=99999999999",
            "r=abc1,s=QSXC",
            "m=ext,r=abc1,s=QSXC,i=1",
        ] {
            assert!(s.client_final(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(s.verify_server_final(b"v=AAAA").is_err());
    }

    #[test]
    fn usernames_are_escaped() {
        let s = Scram::with_nonce(Mechanism::ScramSha1, "a=b,c", "pw", "n");
        assert_eq!(s.client_first(), "n,,n=a=3Db=2Cc,r=n");
    }

    #[test]
    fn choice_prefers_scram_and_plain_needs_tls() {
        let offered: Vec<String> = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]
            .map(String::from)
            .to_vec();
        assert_eq!(choose(&offered, None, true), Some(Mechanism::ScramSha256));
        assert_eq!(
            choose(&offered, Some(Mechanism::Plain), true),
            Some(Mechanism::Plain)
        );
        assert_eq!(choose(&offered, Some(Mechanism::Plain), false), None);
        let plain_only = vec!["PLAIN".to_string()];
        assert_eq!(choose(&plain_only, None, false), None);
        assert_eq!(choose(&plain_only, None, true), Some(Mechanism::Plain));
    }
}
