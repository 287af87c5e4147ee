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
#[path = "sasl_tests.rs"]
mod tests;
