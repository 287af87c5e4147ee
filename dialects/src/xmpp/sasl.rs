//! Server side of SASL for XMPP (RFC 6120 §6), sans-IO: `SCRAM-SHA-256`, `SCRAM-SHA-1`
//! (RFC 5802, RFC 7677) and `PLAIN` (RFC 4616).
//!
//! This module only parses and produces the SASL payloads; the caller reads `<auth>` and
//! `<response>` elements, decodes their text with [`decode_payload`], feeds the bytes here,
//! encodes replies with [`encode_payload`] for `<challenge>`/`<success>`, and turns a
//! [`SaslError`] into `<failure><{condition}/></failure>` with [`SaslError::condition`].
//!
//! A SCRAM exchange with [`ScramServer`]:
//!
//! 1. [`ScramServer::client_first`] parses the client-first message and returns
//!    [`ScramStep::NeedKeys`] with the (SASLname-decoded) username;
//! 2. the caller looks the user up and passes the stored keys (or `None` for an unknown user)
//!    to [`ScramServer::server_first`], whose output goes into `<challenge>`;
//! 3. [`ScramServer::client_final`] checks the client proof and returns the server-final
//!    message (`v=…`) to send as the additional data of `<success>`.
//!
//! Unknown users get a plausible challenge (salt derived from the username and a per-process
//! random secret, 4096 iterations) and fail only at step 3 with `not-authorized`, so accounts
//! cannot be probed by their challenge. The server never needs the password or PBKDF2: it holds
//! only StoredKey and ServerKey.
//!
//! Limits and simplifications: every message is bounded ([`MAX_SCRAM_MESSAGE`],
//! [`MAX_PLAIN_MESSAGE`], [`MAX_PAYLOAD_TEXT`]); channel binding (`-PLUS`, gs2 flag `p`) is not
//! supported, so flag `y` is accepted; SASLprep is not applied to usernames or passwords (bytes
//! are used as given, matching palaver-core's credential derivation); mandatory extensions
//! (`m=`) are refused. Nothing here panics on input.

use std::fmt;
use std::sync::OnceLock;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Largest SCRAM message (client-first or client-final) accepted, in bytes.
pub const MAX_SCRAM_MESSAGE: usize = 4096;

/// Largest PLAIN message accepted, in bytes.
pub const MAX_PLAIN_MESSAGE: usize = 4096;

/// Largest base64 text of an `<auth>`/`<response>` element accepted by [`decode_payload`].
pub const MAX_PAYLOAD_TEXT: usize = 8192;

/// Iteration count announced to unknown users. Real accounts should use the same count
/// (palaver-core's default is 4096) so fake challenges look like real ones.
pub const FAKE_ITERATIONS: u32 = 4096;

/// Salt length announced to unknown users (palaver-core's real salts are 16 bytes too).
const FAKE_SALT_LEN: usize = 16;

/// Base64 for `<auth>`/`<response>` text: standard alphabet, padding optional.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A SASL mechanism palaver offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `PLAIN` (RFC 4616); only to be offered over TLS.
    Plain,
}

impl Mechanism {
    /// All mechanisms, strongest first (the order to advertise them in).
    pub const ALL: [Mechanism; 3] = [
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    /// The IANA mechanism name, as it appears in `<mechanism>` and `<auth mechanism=…>`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// Parses a mechanism name (exact, case-sensitive match, as SASL names are uppercase).
    pub fn from_name(s: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Whether this is a SCRAM mechanism (handled by [`ScramServer`]).
    pub fn is_scram(self) -> bool {
        matches!(self, Mechanism::ScramSha256 | Mechanism::ScramSha1)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Keys the server holds for one user and one hash (mirror of palaver-core's
/// `ScramCredential`, borrowed; dialects does not depend on core).
#[derive(Clone, Copy)]
pub struct ScramKeys<'a> {
    /// The salt given to the client.
    pub salt: &'a [u8],
    /// PBKDF2 iteration count given to the client.
    pub iterations: u32,
    /// StoredKey = H(ClientKey).
    pub stored_key: &'a [u8],
    /// ServerKey = HMAC(SaltedPassword, "Server Key").
    pub server_key: &'a [u8],
}

impl fmt::Debug for ScramKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys")
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why an authentication exchange failed; each maps to an RFC 6120 §6.5 failure condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The request could not be parsed or broke the mechanism's rules (`<malformed-request/>`).
    #[error("malformed SASL request: {0}")]
    MalformedRequest(String),
    /// Wrong credentials, unknown user, or a failed check (`<not-authorized/>`).
    #[error("not authorized")]
    NotAuthorized,
    /// The mechanism is not offered (`<invalid-mechanism/>`).
    #[error("invalid mechanism")]
    InvalidMechanism,
    /// The mechanism needs TLS first (`<encryption-required/>`).
    #[error("encryption required")]
    EncryptionRequired,
    /// The client aborted the exchange (`<aborted/>`).
    #[error("aborted")]
    Aborted,
    /// The authorization identity is not acceptable (`<invalid-authzid/>`).
    #[error("invalid authorization identity")]
    InvalidAuthzid,
    /// The payload was not valid base64 (`<incorrect-encoding/>`).
    #[error("incorrect base64 encoding")]
    IncorrectEncoding,
}

impl SaslError {
    /// The RFC 6120 §6.5 condition element name to put inside `<failure>`.
    pub fn condition(&self) -> &'static str {
        match self {
            SaslError::MalformedRequest(_) => "malformed-request",
            SaslError::NotAuthorized => "not-authorized",
            SaslError::InvalidMechanism => "invalid-mechanism",
            SaslError::EncryptionRequired => "encryption-required",
            SaslError::Aborted => "aborted",
            SaslError::InvalidAuthzid => "invalid-authzid",
            SaslError::IncorrectEncoding => "incorrect-encoding",
        }
    }
}

fn malformed(why: &str) -> SaslError {
    SaslError::MalformedRequest(why.to_string())
}

/// What the caller must do after [`ScramServer::client_first`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramStep {
    /// The client-first message was parsed; look up the keys for `username` (SASLname-decoded:
    /// `=2C` → `,`, `=3D` → `=`; no SASLprep) and call [`ScramServer::server_first`].
    /// `authzid` is the requested authorization identity, if any: the caller must check it
    /// (e.g. equal to the user's bare JID) and fail with [`SaslError::InvalidAuthzid`] otherwise.
    NeedKeys {
        /// The authentication identity.
        username: String,
        /// The authorization identity (`a=`), if the client sent one.
        authzid: Option<String>,
    },
}

/// The hash behind a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => hmac_with::<Hmac<Sha1>>(key, data, self.len()),
            Hash::Sha256 => hmac_with::<Hmac<Sha256>>(key, data, self.len()),
        }
    }
}

fn hmac_with<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8], len: usize) -> Vec<u8> {
    match <M as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; unreachable, and an all-zero MAC matches nothing.
        Err(_) => vec![0u8; len],
    }
}

/// Compares without an early exit (lengths are not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Parsed client-first message.
struct ClientFirst {
    /// The gs2 header exactly as sent (`n,,`, `y,a=…,`), echoed base64 in `c=`.
    gs2_header: String,
    /// client-first-message-bare, part of the AuthMessage.
    bare: String,
    client_nonce: String,
    username: String,
    authzid: Option<String>,
}

/// State after server-first, waiting for client-final.
struct Pending {
    first: ClientFirst,
    server_first: String,
    nonce: String,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    /// False for an unknown user: the proof check then always fails.
    known: bool,
}

enum State {
    AwaitClientFirst,
    AwaitServerFirst(ClientFirst),
    AwaitClientFinal(Box<Pending>),
    Done {
        username: String,
        authzid: Option<String>,
    },
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::AwaitClientFirst => "await-client-first",
            State::AwaitServerFirst(_) => "await-server-first",
            State::AwaitClientFinal(_) => "await-client-final",
            State::Done { .. } => "done",
            State::Failed => "failed",
        }
    }
}

/// One SCRAM exchange, server side. Any error ends the exchange: later calls fail too.
pub struct ScramServer {
    mech: Mechanism,
    server_nonce: String,
    state: State,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer")
            .field("mech", &self.mech)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// Starts an exchange for `mech`, which must be a SCRAM mechanism (for
    /// [`Mechanism::Plain`] the exchange fails at once with [`SaslError::InvalidMechanism`]).
    ///
    /// `server_nonce` is this server's part of the nonce: random printable ASCII without `,`
    /// (use [`random_nonce`]; tests pass fixed values). An empty or invalid one is replaced by
    /// [`random_nonce`].
    pub fn new(mech: Mechanism, server_nonce: String) -> ScramServer {
        let server_nonce = if is_valid_nonce(&server_nonce) {
            server_nonce
        } else {
            random_nonce()
        };
        let state = if mech.is_scram() {
            State::AwaitClientFirst
        } else {
            State::Failed
        };
        ScramServer {
            mech,
            server_nonce,
            state,
        }
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mech
    }

    /// The authentication identity, once the client-first message has been parsed.
    pub fn username(&self) -> Option<&str> {
        match &self.state {
            State::AwaitServerFirst(first) => Some(&first.username),
            State::AwaitClientFinal(p) => Some(&p.first.username),
            State::Done { username, .. } => Some(username),
            State::AwaitClientFirst | State::Failed => None,
        }
    }

    /// The requested authorization identity, once the client-first message has been parsed.
    pub fn authzid(&self) -> Option<&str> {
        match &self.state {
            State::AwaitServerFirst(first) => first.authzid.as_deref(),
            State::AwaitClientFinal(p) => p.first.authzid.as_deref(),
            State::Done { authzid, .. } => authzid.as_deref(),
            State::AwaitClientFirst | State::Failed => None,
        }
    }

    /// Whether the exchange succeeded (client-final verified).
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }

    fn hash(&self) -> Hash {
        match self.mech {
            Mechanism::ScramSha1 => Hash::Sha1,
            Mechanism::ScramSha256 | Mechanism::Plain => Hash::Sha256,
        }
    }

    /// Parses the client-first message (the initial response of `<auth>`).
    ///
    /// Accepts gs2 flags `n` and `y`; `p=…` (channel binding, not supported yet), `m=`
    /// extensions, missing or empty fields, bad SASLname escapes, non-UTF-8 and messages over
    /// [`MAX_SCRAM_MESSAGE`] fail with [`SaslError::MalformedRequest`].
    pub fn client_first(&mut self, msg: &[u8]) -> Result<ScramStep, SaslError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitClientFirst => {}
            State::Failed if !self.mech.is_scram() => return Err(SaslError::InvalidMechanism),
            _ => return Err(malformed("unexpected client-first message")),
        }
        let first = parse_client_first(msg)?;
        let step = ScramStep::NeedKeys {
            username: first.username.clone(),
            authzid: first.authzid.clone(),
        };
        self.state = State::AwaitServerFirst(first);
        Ok(step)
    }

    /// Builds the server-first message (`r=…,s=…,i=…`) to send in `<challenge>`, from the user's
    /// keys, or from a fake but stable salt when `keys` is `None` (unknown user; the exchange
    /// then fails with [`SaslError::NotAuthorized`] at [`ScramServer::client_final`]).
    ///
    /// Called out of order (not right after a successful `client_first`), it returns an empty
    /// vector and the exchange fails.
    pub fn server_first(&mut self, keys: Option<ScramKeys<'_>>) -> Vec<u8> {
        let first = match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitServerFirst(first) => first,
            _ => return Vec::new(),
        };
        let hash = self.hash();
        let (salt, iterations, stored_key, server_key, known) = match keys {
            Some(k) => (
                k.salt.to_vec(),
                k.iterations,
                k.stored_key.to_vec(),
                k.server_key.to_vec(),
                true,
            ),
            None => (
                fake_salt(self.mech, &first.username),
                FAKE_ITERATIONS,
                vec![0u8; hash.len()],
                vec![0u8; hash.len()],
                false,
            ),
        };
        let nonce = format!("{}{}", first.client_nonce, self.server_nonce);
        let server_first = format!("r={nonce},s={},i={iterations}", STANDARD.encode(&salt));
        let out = server_first.clone().into_bytes();
        self.state = State::AwaitClientFinal(Box::new(Pending {
            first,
            server_first,
            nonce,
            stored_key,
            server_key,
            known,
        }));
        out
    }

    /// Checks the client-final message (the `<response>` payload) and returns the
    /// server-final message (`v=…`) to send as the additional data of `<success>`.
    ///
    /// The channel-binding echo must be the base64 of the gs2 header (`biws` for `n,,`, `eSws`
    /// for `y,,`), the nonce must be the one sent in server-first, and the proof is checked in
    /// constant time; a failed check (or an unknown user) gives [`SaslError::NotAuthorized`].
    /// Unparseable messages give [`SaslError::MalformedRequest`].
    pub fn client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, SaslError> {
        let pending = match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitClientFinal(p) => p,
            _ => return Err(malformed("unexpected client-final message")),
        };
        let hash = self.hash();
        let s = bounded_utf8(msg, MAX_SCRAM_MESSAGE)?;
        let (without_proof, proof) = s
            .rsplit_once(',')
            .ok_or_else(|| malformed("missing proof"))?;
        let proof = proof
            .strip_prefix("p=")
            .ok_or_else(|| malformed("missing proof"))?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(|| malformed("missing channel binding"))?;
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| malformed("missing nonce"))?;
        for ext in attrs {
            check_extension(ext)?;
        }
        let cbind = STANDARD
            .decode(cbind)
            .map_err(|_| malformed("channel binding is not base64"))?;
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| malformed("proof is not base64"))?;

        let auth_message = format!(
            "{},{},{}",
            pending.first.bare, pending.server_first, without_proof
        );
        let client_signature = hash.hmac(&pending.stored_key, auth_message.as_bytes());
        let proof_ok = proof.len() == hash.len() && {
            let client_key: Vec<u8> = proof
                .iter()
                .zip(&client_signature)
                .map(|(p, s)| p ^ s)
                .collect();
            constant_time_eq(&hash.digest(&client_key), &pending.stored_key)
        };
        let cbind_ok = cbind == pending.first.gs2_header.as_bytes();
        let nonce_ok = nonce == pending.nonce;
        if !(proof_ok & cbind_ok & nonce_ok & pending.known) {
            return Err(SaslError::NotAuthorized);
        }
        let server_signature = hash.hmac(&pending.server_key, auth_message.as_bytes());
        let Pending { first, .. } = *pending;
        self.state = State::Done {
            username: first.username,
            authzid: first.authzid,
        };
        Ok(format!("v={}", STANDARD.encode(server_signature)).into_bytes())
    }
}

/// Checks the size bound and UTF-8 of a message.
fn bounded_utf8(msg: &[u8], max: usize) -> Result<&str, SaslError> {
    if msg.len() > max {
        return Err(malformed("message too long"));
    }
    std::str::from_utf8(msg).map_err(|_| malformed("message is not UTF-8"))
}

/// RFC 5802 §7 `client-first-message`.
fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, SaslError> {
    let s = bounded_utf8(msg, MAX_SCRAM_MESSAGE)?;
    let (flag, rest) = s
        .split_once(',')
        .ok_or_else(|| malformed("missing gs2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(malformed("channel binding is not supported")),
        _ => return Err(malformed("bad gs2 channel-binding flag")),
    }
    let (authz, bare) = rest
        .split_once(',')
        .ok_or_else(|| malformed("missing gs2 header"))?;
    let authzid = if authz.is_empty() {
        None
    } else {
        let name = authz
            .strip_prefix("a=")
            .ok_or_else(|| malformed("bad authzid"))?;
        Some(decode_saslname(name)?)
    };
    let gs2_header = s[..s.len() - bare.len()].to_string();

    let mut attrs = bare.split(',');
    let user_attr = attrs.next().unwrap_or("");
    if user_attr.starts_with("m=") {
        return Err(malformed("mandatory extensions are not supported"));
    }
    let username = user_attr
        .strip_prefix("n=")
        .ok_or_else(|| malformed("missing username"))?;
    let username = decode_saslname(username)?;
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or_else(|| malformed("missing nonce"))?;
    if !is_valid_nonce(client_nonce) {
        return Err(malformed("bad nonce"));
    }
    for ext in attrs {
        check_extension(ext)?;
    }
    Ok(ClientFirst {
        gs2_header,
        bare: bare.to_string(),
        client_nonce: client_nonce.to_string(),
        username,
        authzid,
    })
}

/// RFC 5802 `saslname`: non-empty, no NUL or `,`, `=` only in `=2C` and `=3D`.
fn decode_saslname(s: &str) -> Result<String, SaslError> {
    if s.is_empty() {
        return Err(malformed("empty name"));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['=', '\0']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = t;
        } else {
            return Err(malformed("bad character or escape in name"));
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// RFC 5802 `printable` nonce: non-empty, `%x21-2B / %x2D-7E`.
fn is_valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// RFC 5802 `attr-val` extension (ignored): `ALPHA "=" 1*value-char`, no NUL.
fn check_extension(ext: &str) -> Result<(), SaslError> {
    let mut chars = ext.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.next() == Some('=')
        && !chars.as_str().is_empty()
        && !chars.as_str().contains('\0');
    if ok {
        Ok(())
    } else {
        Err(malformed("bad attribute"))
    }
}

/// Per-process random secret behind fake salts.
fn fake_salt_secret() -> &'static [u8; 32] {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    SECRET.get_or_init(|| {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        secret
    })
}

/// A stable (per process), unpredictable salt for an unknown user.
fn fake_salt(mech: Mechanism, username: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(32 + username.len());
    input.extend_from_slice(b"palaver-scram-fake-salt\0");
    input.extend_from_slice(mech.name().as_bytes());
    input.push(0);
    input.extend_from_slice(username.as_bytes());
    let mut salt = Hash::Sha256.hmac(fake_salt_secret(), &input);
    salt.truncate(FAKE_SALT_LEN);
    salt
}

/// Credentials of a SASL PLAIN message (RFC 4616). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// Authorization identity, if one was given (an empty one counts as absent).
    pub authzid: Option<String>,
    /// Authentication identity (username), non-empty.
    pub authcid: String,
    /// The cleartext password, non-empty, used as given (no SASLprep).
    pub password: String,
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses a PLAIN message: `[authzid] NUL authcid NUL passwd`.
///
/// Exactly two NULs, UTF-8, at most [`MAX_PLAIN_MESSAGE`] bytes, non-empty authcid and
/// password; anything else fails with [`SaslError::MalformedRequest`].
pub fn parse_plain(msg: &[u8]) -> Result<PlainCredentials, SaslError> {
    let s = bounded_utf8(msg, MAX_PLAIN_MESSAGE)?;
    let mut parts = s.split('\0');
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("PLAIN message needs exactly two NUL separators"));
    };
    if authcid.is_empty() {
        return Err(malformed("empty username"));
    }
    if password.is_empty() {
        return Err(malformed("empty password"));
    }
    Ok(PlainCredentials {
        authzid: (!authzid.is_empty()).then(|| authzid.to_string()),
        authcid: authcid.to_string(),
        password: password.to_string(),
    })
}

/// A fresh server nonce: 24 random bytes, base64 (32 characters, never `,`).
pub fn random_nonce() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

/// Decodes the base64 text of an `<auth>` or `<response>` element. Empty content or `=` means
/// an empty payload (RFC 6120 §6.4.2). Surrounding XML whitespace is ignored and padding is
/// optional; other invalid base64 gives [`SaslError::IncorrectEncoding`], text longer than
/// [`MAX_PAYLOAD_TEXT`] gives [`SaslError::MalformedRequest`].
pub fn decode_payload(text: &str) -> Result<Vec<u8>, SaslError> {
    if text.len() > MAX_PAYLOAD_TEXT {
        return Err(malformed("payload too long"));
    }
    let t = text.trim_matches([' ', '\t', '\r', '\n']);
    if t.is_empty() || t == "=" {
        return Ok(Vec::new());
    }
    LENIENT_B64
        .decode(t)
        .map_err(|_| SaslError::IncorrectEncoding)
}

/// Encodes a payload for `<challenge>` or `<success>`: standard base64, and `=` for an empty
/// payload (RFC 6120 §6.4.2).
pub fn encode_payload(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_string()
    } else {
        STANDARD.encode(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b64(s: &str) -> Vec<u8> {
        STANDARD.decode(s).expect("test base64")
    }

    /// Server-side keys for `password`, computed like palaver-core does.
    struct OwnedKeys {
        salt: Vec<u8>,
        iterations: u32,
        stored_key: Vec<u8>,
        server_key: Vec<u8>,
    }

    impl OwnedKeys {
        fn new(mech: Mechanism, password: &str, salt: &[u8], iterations: u32) -> OwnedKeys {
            let hash = hash_of(mech);
            let salted = salted_password(hash, password, salt, iterations);
            let client_key = hash.hmac(&salted, b"Client Key");
            OwnedKeys {
                salt: salt.to_vec(),
                iterations,
                stored_key: hash.digest(&client_key),
                server_key: hash.hmac(&salted, b"Server Key"),
            }
        }

        fn keys(&self) -> ScramKeys<'_> {
            ScramKeys {
                salt: &self.salt,
                iterations: self.iterations,
                stored_key: &self.stored_key,
                server_key: &self.server_key,
            }
        }
    }

    fn hash_of(mech: Mechanism) -> Hash {
        match mech {
            Mechanism::ScramSha1 => Hash::Sha1,
            _ => Hash::Sha256,
        }
    }

    fn salted_password(hash: Hash, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; hash.len()];
        match hash {
            Hash::Sha1 => {
                pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut out)
            }
            Hash::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out)
            }
        }
        out
    }

    /// A test SCRAM client: builds client-final (with proof) from the server-first message.
    fn client_final_for(
        mech: Mechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &[u8],
        cbind_b64: &str,
    ) -> Vec<u8> {
        let hash = hash_of(mech);
        let sf = std::str::from_utf8(server_first).expect("utf8");
        let mut nonce = "";
        let mut salt = Vec::new();
        let mut iterations = 0;
        for attr in sf.split(',') {
            if let Some(v) = attr.strip_prefix("r=") {
                nonce = v;
            } else if let Some(v) = attr.strip_prefix("s=") {
                salt = b64(v);
            } else if let Some(v) = attr.strip_prefix("i=") {
                iterations = v.parse().expect("iterations");
            }
        }
        let without_proof = format!("c={cbind_b64},r={nonce}");
        let auth_message = format!("{client_first_bare},{sf},{without_proof}");
        let salted = salted_password(hash, password, &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.digest(&client_key);
        let signature = hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes()
    }

    fn need_keys(username: &str, authzid: Option<&str>) -> ScramStep {
        ScramStep::NeedKeys {
            username: username.to_string(),
            authzid: authzid.map(str::to_string),
        }
    }

    #[test]
    fn rfc5802_sha1_exchange() {
        let keys = OwnedKeys::new(
            Mechanism::ScramSha1,
            "pencil",
            &b64("QSXCR+Q6sek8bf92"),
            4096,
        );
        let mut server = ScramServer::new(Mechanism::ScramSha1, "3rfcNHYJY1ZVvWVs7j".into());
        let step = server
            .client_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
            .expect("client-first");
        assert_eq!(step, need_keys("user", None));
        assert_eq!(server.username(), Some("user"));
        let sf = server.server_first(Some(keys.keys()));
        assert_eq!(
            sf,
            b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
        );
        let sfinal = server
            .client_final(
                b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            )
            .expect("client-final");
        assert_eq!(sfinal, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
        assert!(server.is_complete());
        assert_eq!(server.username(), Some("user"));
        assert_eq!(server.authzid(), None);
    }

    #[test]
    fn rfc7677_sha256_exchange() {
        let keys = OwnedKeys::new(
            Mechanism::ScramSha256,
            "pencil",
            &b64("W22ZaJ0SNY7soEsUEjb6gQ=="),
            4096,
        );
        let mut server = ScramServer::new(
            Mechanism::ScramSha256,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        );
        let step = server
            .client_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .expect("client-first");
        assert_eq!(step, need_keys("user", None));
        let sf = server.server_first(Some(keys.keys()));
        assert_eq!(
            sf,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let sfinal = server
            .client_final(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .expect("client-final");
        assert_eq!(sfinal, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        assert!(server.is_complete());
    }

    /// Runs an exchange with the test client; returns the server's verdict.
    fn run(
        mech: Mechanism,
        stored_password: Option<&str>,
        client_password: &str,
        client_first: &str,
        cbind_b64: &str,
    ) -> Result<Vec<u8>, SaslError> {
        let keys = stored_password.map(|p| OwnedKeys::new(mech, p, b"0123456789abcdef", 64));
        let mut server = ScramServer::new(mech, random_nonce());
        server.client_first(client_first.as_bytes())?;
        let sf = server.server_first(keys.as_ref().map(OwnedKeys::keys));
        let bare = client_first.splitn(3, ',').nth(2).expect("bare");
        let cf = client_final_for(mech, client_password, bare, &sf, cbind_b64);
        server.client_final(&cf)
    }

    #[test]
    fn round_trip_with_test_client() {
        for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
            let v =
                run(mech, Some("s3cret"), "s3cret", "n,,n=alice,r=abc", "biws").expect("success");
            assert!(v.starts_with(b"v="));
        }
    }

    #[test]
    fn wrong_password_is_not_authorized() {
        for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
            assert_eq!(
                run(mech, Some("s3cret"), "S3cret", "n,,n=alice,r=abc", "biws"),
                Err(SaslError::NotAuthorized)
            );
        }
    }

    #[test]
    fn unknown_user_gets_plausible_challenge_then_not_authorized() {
        let mut a = ScramServer::new(Mechanism::ScramSha256, "srv".into());
        a.client_first(b"n,,n=ghost,r=abc").expect("client-first");
        let sf_a = String::from_utf8(a.server_first(None)).expect("utf8");
        let mut b = ScramServer::new(Mechanism::ScramSha256, "srv".into());
        b.client_first(b"n,,n=ghost,r=abc").expect("client-first");
        let sf_b = String::from_utf8(b.server_first(None)).expect("utf8");
        // Stable for the same user, so repeated probes see the same salt.
        assert_eq!(sf_a, sf_b);
        let salt = sf_a
            .split(',')
            .find_map(|a| a.strip_prefix("s="))
            .expect("salt");
        assert_eq!(b64(salt).len(), 16);
        assert!(sf_a.ends_with(",i=4096"));
        // Different for another user.
        let mut c = ScramServer::new(Mechanism::ScramSha256, "srv".into());
        c.client_first(b"n,,n=ghost2,r=abc").expect("client-first");
        assert_ne!(String::from_utf8(c.server_first(None)).expect("utf8"), sf_a);
        // Whatever password the client tries, the exchange fails with not-authorized.
        for mech in [Mechanism::ScramSha1, Mechanism::ScramSha256] {
            for pw in ["", "pencil", "anything"] {
                assert_eq!(
                    run(mech, None, pw, "n,,n=ghost,r=abc", "biws"),
                    Err(SaslError::NotAuthorized)
                );
            }
        }
    }

    #[test]
    fn y_flag_and_authzid_are_echoed_in_channel_binding() {
        let v = run(
            Mechanism::ScramSha256,
            Some("pw"),
            "pw",
            "y,,n=alice,r=abc",
            "eSws",
        );
        assert!(v.is_ok());
        // Echoing "n,," after sending "y,," is a downgrade: refused.
        assert_eq!(
            run(
                Mechanism::ScramSha256,
                Some("pw"),
                "pw",
                "y,,n=alice,r=abc",
                "biws"
            ),
            Err(SaslError::NotAuthorized)
        );
        assert_eq!(
            run(
                Mechanism::ScramSha256,
                Some("pw"),
                "pw",
                "n,,n=alice,r=abc",
                "eSws"
            ),
            Err(SaslError::NotAuthorized)
        );
        let cf = "n,a=alice@example.org,n=alice,r=abc";
        let cb = STANDARD.encode("n,a=alice@example.org,");
        assert!(run(Mechanism::ScramSha1, Some("pw"), "pw", cf, &cb).is_ok());
        assert_eq!(
            run(Mechanism::ScramSha1, Some("pw"), "pw", cf, "biws"),
            Err(SaslError::NotAuthorized)
        );
        let mut server = ScramServer::new(Mechanism::ScramSha1, "x".into());
        assert_eq!(
            server.client_first(cf.as_bytes()),
            Ok(need_keys("alice", Some("alice@example.org")))
        );
        assert_eq!(server.authzid(), Some("alice@example.org"));
    }

    #[test]
    fn saslname_escapes_are_decoded() {
        let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
        assert_eq!(
            server.client_first(b"n,a=a=3Db=2Cc,n=us=2Cer=3D,r=abc"),
            Ok(need_keys("us,er=", Some("a=b,c")))
        );
        // The escaped name round-trips through a full exchange.
        assert!(run(
            Mechanism::ScramSha256,
            Some("pw"),
            "pw",
            "n,,n=us=2Cer=3D,r=abc",
            "biws"
        )
        .is_ok());
        for bad in [
            &b"n,,n=us=2Xer,r=abc"[..],
            b"n,,n=user=,r=abc",
            b"n,,n=us=er,r=abc",
            b"n,,n=u\0ser,r=abc",
            b"n,a=,n=user,r=abc",
            b"n,a=x=,n=user,r=abc",
        ] {
            let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
            assert!(
                matches!(
                    server.client_first(bad),
                    Err(SaslError::MalformedRequest(_))
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn malformed_client_first_is_rejected() {
        let huge = format!("n,,n=user,r={}", "a".repeat(MAX_SCRAM_MESSAGE));
        let cases: Vec<&[u8]> = vec![
            b"",
            b"n",
            b"n,",
            b"n,,",
            b"x,,n=user,r=abc",
            b"p=tls-unique,,n=user,r=abc",
            b"p=tls-exporter,,n=user,r=abc",
            b"n,,m=ext,n=user,r=abc",
            b"n,,r=abc",
            b"n,,n=user",
            b"n,,n=user,",
            b"n,,n=user,r=",
            b"n,,n=,r=abc",
            b"n,,n=user,x=abc",
            b"n,,n=user,r=ab c",
            b"n,,n=user,r=abc,",
            b"n,,n=user,r=abc,1=x",
            b"n,,n=user,r=abc,x",
            b"n,,n=user,r=abc,x=",
            b"n,b=x,n=user,r=abc",
            b"n,,n=us\xffer,r=abc",
            huge.as_bytes(),
        ];
        for case in cases {
            let mut server = ScramServer::new(Mechanism::ScramSha1, "x".into());
            assert!(
                matches!(
                    server.client_first(case),
                    Err(SaslError::MalformedRequest(_))
                ),
                "{:?}",
                String::from_utf8_lossy(case)
            );
            // The exchange is over.
            assert_eq!(server.server_first(None), Vec::<u8>::new());
            assert!(server.client_final(b"c=biws,r=x,p=AAAA").is_err());
        }
        // Extensions after the nonce are allowed and ignored.
        let mut server = ScramServer::new(Mechanism::ScramSha1, "x".into());
        assert!(server.client_first(b"n,,n=user,r=abc,e=xyz").is_ok());
    }

    /// A server that has sent server-first for user "user" with password "pencil".
    fn server_awaiting_final() -> (ScramServer, Vec<u8>) {
        let keys = OwnedKeys::new(Mechanism::ScramSha256, "pencil", b"saltsaltsaltsalt", 64);
        let mut server = ScramServer::new(Mechanism::ScramSha256, "SRV".into());
        server
            .client_first(b"n,,n=user,r=CLI")
            .expect("client-first");
        let sf = server.server_first(Some(keys.keys()));
        (server, sf)
    }

    #[test]
    fn malformed_client_final_is_rejected() {
        let huge = format!("c=biws,r=CLISRV,p={}", "A".repeat(MAX_SCRAM_MESSAGE));
        let cases: Vec<&[u8]> = vec![
            b"",
            b"c=biws,r=CLISRV",
            b"r=CLISRV,p=AAAA",
            b"c=biws,p=AAAA",
            b"c=biws,r=CLISRV,p=!!!!",
            b"c=b!ws,r=CLISRV,p=AAAA",
            b"c=biws,r=CLISRV,p=AAAA,x=y",
            b"c=biws,r=CLISRV,bad,p=AAAA",
            b"c=biws,r=CLI\xffSRV,p=AAAA",
            huge.as_bytes(),
        ];
        for case in cases {
            let (mut server, _) = server_awaiting_final();
            let got = server.client_final(case);
            assert!(
                matches!(got, Err(SaslError::MalformedRequest(_))),
                "{:?} -> {got:?}",
                String::from_utf8_lossy(case)
            );
            assert!(!server.is_complete());
        }
    }

    #[test]
    fn client_final_checks_nonce_and_proof() {
        let (mut server, sf) = server_awaiting_final();
        let good = client_final_for(
            Mechanism::ScramSha256,
            "pencil",
            "n=user,r=CLI",
            &sf,
            "biws",
        );
        // Wrong nonce (same proof computation, tampered nonce) is refused.
        let tampered = String::from_utf8(good.clone())
            .expect("utf8")
            .replace("r=CLISRV", "r=CLISRX");
        assert_eq!(
            server.client_final(tampered.as_bytes()),
            Err(SaslError::NotAuthorized)
        );
        // One failure ends the exchange: even the right proof is refused afterwards.
        assert!(server.client_final(&good).is_err());

        // Proofs of the wrong length (including empty).
        for msg in [&b"c=biws,r=CLISRV,p=AAAA"[..], b"c=biws,r=CLISRV,p="] {
            let (mut server, _) = server_awaiting_final();
            assert_eq!(server.client_final(msg), Err(SaslError::NotAuthorized));
        }

        // The good message works on a fresh exchange, exactly once.
        let (mut server, _) = server_awaiting_final();
        assert!(server.client_final(&good).is_ok());
        assert!(server.is_complete());
        assert!(matches!(
            server.client_final(&good),
            Err(SaslError::MalformedRequest(_))
        ));
    }

    #[test]
    fn calls_out_of_order_fail() {
        let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
        assert_eq!(server.server_first(None), Vec::<u8>::new());
        assert!(server.client_first(b"n,,n=user,r=abc").is_err());

        let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
        assert!(matches!(
            server.client_final(b"c=biws,r=abc,p=AAAA"),
            Err(SaslError::MalformedRequest(_))
        ));

        let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
        server
            .client_first(b"n,,n=user,r=abc")
            .expect("client-first");
        assert!(server.client_first(b"n,,n=user,r=abc").is_err());
        assert_eq!(server.username(), None);
    }

    #[test]
    fn plain_is_not_a_scram_mechanism() {
        let mut server = ScramServer::new(Mechanism::Plain, "x".into());
        assert_eq!(
            server.client_first(b"n,,n=user,r=abc"),
            Err(SaslError::InvalidMechanism)
        );
    }

    #[test]
    fn invalid_server_nonce_is_replaced() {
        for bad in ["", "a,b", "with space", "caf\u{e9}"] {
            let mut server = ScramServer::new(Mechanism::ScramSha1, bad.into());
            server
                .client_first(b"n,,n=user,r=abc")
                .expect("client-first");
            let sf = String::from_utf8(server.server_first(None)).expect("utf8");
            let nonce = sf.split(',').next().and_then(|r| r.strip_prefix("r=abc"));
            let nonce = nonce.expect("nonce");
            assert_eq!(nonce.len(), 32, "{sf}");
            assert!(is_valid_nonce(nonce));
        }
    }

    #[test]
    fn mechanism_names() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(
            Mechanism::from_name("SCRAM-SHA-1"),
            Some(Mechanism::ScramSha1)
        );
        assert_eq!(Mechanism::from_name("scram-sha-1"), None);
        assert_eq!(Mechanism::from_name("SCRAM-SHA-1-PLUS"), None);
        assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
        assert!(Mechanism::ScramSha1.is_scram());
        assert!(!Mechanism::Plain.is_scram());
    }

    #[test]
    fn error_conditions() {
        let cases = [
            (malformed("x"), "malformed-request"),
            (SaslError::NotAuthorized, "not-authorized"),
            (SaslError::InvalidMechanism, "invalid-mechanism"),
            (SaslError::EncryptionRequired, "encryption-required"),
            (SaslError::Aborted, "aborted"),
            (SaslError::InvalidAuthzid, "invalid-authzid"),
            (SaslError::IncorrectEncoding, "incorrect-encoding"),
        ];
        for (err, cond) in cases {
            assert_eq!(err.condition(), cond);
        }
    }

    #[test]
    fn plain_parsing() {
        assert_eq!(
            parse_plain(b"\0tim\0tanstaaftanstaaf"),
            Ok(PlainCredentials {
                authzid: None,
                authcid: "tim".into(),
                password: "tanstaaftanstaaf".into(),
            })
        );
        assert_eq!(
            parse_plain(b"Ursel\0Kurt\0xipj3plmq"),
            Ok(PlainCredentials {
                authzid: Some("Ursel".into()),
                authcid: "Kurt".into(),
                password: "xipj3plmq".into(),
            })
        );
        // Non-ASCII is kept as is.
        assert_eq!(
            parse_plain("\0j\u{f6}rg\0p\u{e4}ss".as_bytes()).map(|c| c.password),
            Ok("p\u{e4}ss".to_string())
        );
        let huge = format!("\0user\0{}", "p".repeat(MAX_PLAIN_MESSAGE));
        for bad in [
            &b""[..],
            b"user",
            b"\0user",
            b"user\0pass",
            b"\0\0pass",
            b"\0user\0",
            b"\0user\0pa\0ss",
            b"\0\0\0",
            b"\0us\xffer\0pass",
            huge.as_bytes(),
        ] {
            assert!(
                matches!(parse_plain(bad), Err(SaslError::MalformedRequest(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn plain_debug_hides_password() {
        let creds = parse_plain(b"\0tim\0hunter2").expect("plain");
        let shown = format!("{creds:?}");
        assert!(shown.contains("tim"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn payload_encoding() {
        assert_eq!(decode_payload(""), Ok(Vec::new()));
        assert_eq!(decode_payload("="), Ok(Vec::new()));
        assert_eq!(decode_payload(" \n"), Ok(Vec::new()));
        assert_eq!(decode_payload("biws"), Ok(b"n,,".to_vec()));
        assert_eq!(
            decode_payload(" AHRpbQB0aW0= \r\n"),
            Ok(b"\0tim\0tim".to_vec())
        );
        assert_eq!(decode_payload("AHRpbQB0aW0"), Ok(b"\0tim\0tim".to_vec()));
        assert_eq!(decode_payload("bi ws"), Err(SaslError::IncorrectEncoding));
        assert_eq!(decode_payload("!!!!"), Err(SaslError::IncorrectEncoding));
        assert_eq!(decode_payload("a"), Err(SaslError::IncorrectEncoding));
        assert!(matches!(
            decode_payload(&"A".repeat(MAX_PAYLOAD_TEXT + 4)),
            Err(SaslError::MalformedRequest(_))
        ));
        assert_eq!(encode_payload(b""), "=");
        assert_eq!(encode_payload(b"n,,"), "biws");
        let data = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";
        assert_eq!(decode_payload(&encode_payload(data)), Ok(data.to_vec()));
    }

    #[test]
    fn random_nonces() {
        let a = random_nonce();
        let b = random_nonce();
        assert_eq!(a.len(), 32);
        assert!(is_valid_nonce(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn debug_does_not_leak_keys() {
        let keys = OwnedKeys::new(Mechanism::ScramSha1, "pw", b"salt", 2);
        let shown = format!("{:?}", keys.keys());
        assert!(shown.contains("iterations"));
        let (server, _) = server_awaiting_final();
        assert!(format!("{server:?}").contains("await-client-final"));
    }

    proptest! {
        #[test]
        fn arbitrary_client_first_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut server = ScramServer::new(Mechanism::ScramSha256, "x".into());
            if server.client_first(&msg).is_ok() {
                let _ = server.server_first(None);
                let _ = server.client_final(&msg);
            }
        }

        #[test]
        fn structured_client_first_never_panics(msg in "[nyp]?(=[a-z-]*)?,(a=[^,]*)?,(m=|n=)[a-z=2CD\u{0}]*,(r=[!-~]*)?(,.*)?") {
            let mut server = ScramServer::new(Mechanism::ScramSha1, "x".into());
            let _ = server.client_first(msg.as_bytes());
        }

        #[test]
        fn arbitrary_client_final_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (mut server, _) = server_awaiting_final();
            let _ = server.client_final(&msg);
            let mut unknown = ScramServer::new(Mechanism::ScramSha1, "SRV".into());
            unknown.client_first(b"n,,n=ghost,r=CLI").expect("client-first");
            let _ = unknown.server_first(None);
            prop_assert!(unknown.client_final(&msg).is_err());
        }

        #[test]
        fn structured_client_final_never_panics(msg in "(c=[A-Za-z0-9+/=]*)?,(r=CLISRV|r=[!-~]*)?(,[a-z]=[^,]*)*,p=[A-Za-z0-9+/=]{0,60}") {
            let (mut server, _) = server_awaiting_final();
            prop_assert!(server.client_final(msg.as_bytes()).is_err());
        }

        #[test]
        fn arbitrary_plain_never_panics(msg in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(creds) = parse_plain(&msg) {
                prop_assert!(!creds.authcid.is_empty() && !creds.password.is_empty());
            }
        }

        #[test]
        fn arbitrary_payload_never_panics(text in ".{0,64}") {
            let _ = decode_payload(&text);
        }

        #[test]
        fn payload_round_trips(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            prop_assert_eq!(decode_payload(&encode_payload(&data)), Ok(data));
        }
    }
}
