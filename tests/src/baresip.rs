//! Driving the real third-party SIP softphone **baresip** (Debian's package `baresip`, which is
//! baresip 1.0.0 on libre 1.1.0 in Debian 12) as a SIP client in end-to-end tests.
//!
//! [`Baresip::start`] writes a private configuration directory (`config`, `accounts`,
//! `contacts`) into a temporary directory and runs `baresip -f DIR -s`:
//!
//! * **No audio or video.** No audio/video driver or codec module is loaded, and the audio
//!   devices are set to a driver that does not exist, so nothing ever touches a sound card.
//!   Only five modules are loaded: `stdio` (user interface), `menu` (prints events and incoming
//!   MESSAGEs, answers them), `contact` (the `/message` command), and the temporary `uuid` and
//!   `account` modules.
//! * **Commands go through stdin** (the `stdio` module reading a pipe). This version's
//!   `ctrl_tcp` module cannot be used instead: it does not report incoming MESSAGEs at all (they
//!   only reach UI modules), needs a fixed TCP port and takes one connection.
//! * **What happened is read from baresip's SIP trace** (`-s`, printed on stdout): every SIP
//!   message it sends or receives, with exact headers and body. An incoming MESSAGE counts as
//!   received once baresip answered it with a 2xx: its `menu` module prints the message
//!   (`sip:from: "body"` on stderr) *before* sending that 200, so a 2xx means the user saw it,
//!   while the trace gives the exact body (the printed form is cut at ~500 bytes).
//! * **Sending**: in 1.0.0 `/message TEXT` sends to the *current contact* only, so every URI
//!   a test wants to message must be listed in [`BaresipAccount::contacts`];
//!   [`Baresip::send_message`] switches the current contact with `/contact_next` /
//!   `/contact_prev` first.
//!
//! Requests go to the test server through the account's outbound proxy
//! (`;outbound="sip:ADDR;transport=T"`), so the AOR domain (`localhost`) is never resolved.
//!
//! Limits of this baresip version the server has to live with: digest authentication is
//! **MD5 only** (a 401/407 that carries *any* challenge with another `algorithm`, e.g. SHA-256
//! next to MD5, makes it give up with "Function not implemented"); it verifies **no** TLS
//! server certificate and sends no SNI; it sends `Content-Type: text/plain` without a charset
//! and accepts only `text/plain` (else 415); UDP responses go to the top Via's sent-by unless
//! that Via has `;rport`.
//!
//! Binary: `$PALAVER_BARESIP`, else `baresip` on PATH; modules: `$PALAVER_BARESIP_MODULES`,
//! else `/usr/lib/baresip/modules`.

use anyhow::{anyhow, bail, Context as _, Result};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::Instant;

/// How long baresip may take to send the MESSAGE after a `/message` command.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a 401/407 answer to a MESSAGE may stay without a retry before it counts as final.
const AUTH_RETRY_GRACE: Duration = Duration::from_millis(1500);

/// Bytes of output kept for [`Baresip::log`] (the oldest are dropped beyond this).
const LOG_LIMIT: usize = 1 << 20;

/// Parsed SIP messages and output lines kept; more is an error (a runaway client).
const EVENT_LIMIT: usize = 100_000;

/// How often the wait functions look at new output.
const POLL: Duration = Duration::from_millis(20);

/// The baresip binary: `$PALAVER_BARESIP`, else `baresip` on PATH.
pub fn baresip_bin() -> PathBuf {
    std::env::var_os("PALAVER_BARESIP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("baresip"))
}

/// The baresip module directory: `$PALAVER_BARESIP_MODULES`, else Debian's.
pub fn baresip_modules() -> PathBuf {
    std::env::var_os("PALAVER_BARESIP_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/baresip/modules"))
}

/// Fails with a clear message unless baresip runs and its modules are there; returns its
/// version line (`baresip v1.0.0 …`).
pub async fn require_baresip() -> Result<String> {
    let bin = baresip_bin();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(&bin)
            .arg("-h")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| anyhow!("{} -h timed out", bin.display()))?
    .with_context(|| {
        format!(
            "running {} (install the Debian package baresip: apt-get install -y baresip)",
            bin.display()
        )
    })?;
    // `baresip -h` prints the version on stdout and the usage on stderr, and exits non-zero.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let version = stdout
        .lines()
        .find(|l| l.starts_with("baresip v"))
        .map(|l| l.split(" Copyright").next().unwrap_or(l).trim().to_string())
        .ok_or_else(|| {
            anyhow!(
                "{} -h printed no version line:\n{stdout}\n{}",
                bin.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let modules = baresip_modules();
    for m in MODULES.iter().chain(TMP_MODULES).chain(APP_MODULES) {
        let path = modules.join(m);
        if !path.is_file() {
            bail!(
                "baresip module {} is missing (install the Debian package baresip-core, or set \
                 PALAVER_BARESIP_MODULES)",
                path.display()
            );
        }
    }
    Ok(version)
}

const MODULES: &[&str] = &["stdio.so"];
const TMP_MODULES: &[&str] = &["uuid.so", "account.so"];
const APP_MODULES: &[&str] = &["contact.so", "menu.so"];

/// The SIP transport baresip uses towards the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The `transport=` parameter value.
    pub fn param(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// The name baresip's SIP trace uses (`UDP`, `TCP`, `TLS`).
    pub fn trace_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// One SIP account for a baresip instance.
#[derive(Debug, Clone)]
pub struct BaresipAccount {
    /// User part of the AOR (`alice`).
    pub user: String,
    pub password: String,
    /// Host part of the AOR (`localhost`); never resolved, requests go to `server`.
    pub domain: String,
    /// The server's SIP listener, used as outbound proxy for every request.
    pub server: SocketAddr,
    pub transport: Transport,
    /// Written as `sip_cafile` for TLS. baresip 1.0.0 loads it but verifies no server
    /// certificate, so it does not make a test stricter.
    pub ca_file: Option<PathBuf>,
    /// The URIs [`Baresip::send_message`] may send to (baresip 1.0.0 only messages contacts
    /// from its `contacts` file). [`BaresipAccount::new`] puts the default room there.
    pub contacts: Vec<String>,
    /// Appended as is to the `accounts` line, e.g. `;sipnat=outbound` (RFC 5626 reg-id) or
    /// `;regint=60`. Must start with `;` when not empty.
    pub extra_params: String,
}

impl BaresipAccount {
    /// `user@localhost` with `password`, registering at `server` over `transport`, able to
    /// message `sip:lobby@conference.localhost`.
    pub fn new(user: &str, password: &str, server: SocketAddr, transport: Transport) -> Self {
        BaresipAccount {
            user: user.to_string(),
            password: password.to_string(),
            domain: crate::DOMAIN.to_string(),
            server,
            transport,
            ca_file: None,
            contacts: vec![format!("sip:{}", crate::room_jid("lobby"))],
            extra_params: String::new(),
        }
    }

    /// `sip:user@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    fn accounts_line(&self) -> Result<String> {
        check_token("user", &self.user)?;
        check_token("domain", &self.domain)?;
        check_token("password", &self.password)?;
        if !self.extra_params.is_empty() && !self.extra_params.starts_with(';') {
            bail!("extra_params must start with ';': {:?}", self.extra_params);
        }
        if self.extra_params.contains('\n') {
            bail!("extra_params must be one line: {:?}", self.extra_params);
        }
        let tp = self.transport.param();
        Ok(format!(
            "<sip:{user}@{domain};transport={tp}>;auth_pass={pass};\
             outbound=\"sip:{server};transport={tp}\";regint=600;mwi=no;pubint=0;\
             answermode=manual{extra}\n",
            user = self.user,
            domain = self.domain,
            pass = self.password,
            server = self.server,
            extra = self.extra_params,
        ))
    }
}

/// baresip's account parser splits on `;`, `<`, `>`, `"` and whitespace and has no escaping.
fn check_token(what: &str, value: &str) -> Result<()> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || ";<>\"\\,@".contains(c))
    {
        bail!("baresip cannot take this {what} in its accounts file: {value:?}");
    }
    Ok(())
}

/// One SIP message from baresip's trace (`-s`).
#[derive(Debug, Clone)]
pub struct SipTrace {
    /// `UDP`, `TCP` or `TLS`.
    pub transport: String,
    pub src: String,
    pub dst: String,
    /// Sent by baresip (else received).
    pub outgoing: bool,
    /// `MESSAGE sip:… SIP/2.0` or `SIP/2.0 200 OK`.
    pub start_line: String,
    /// In order, names as written.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SipTrace {
    pub fn is_request(&self) -> bool {
        !self.start_line.starts_with("SIP/")
    }

    /// The request method, `None` for a response.
    pub fn method(&self) -> Option<&str> {
        if self.is_request() {
            self.start_line.split(' ').next()
        } else {
            None
        }
    }

    /// The Request-URI, `None` for a response.
    pub fn request_uri(&self) -> Option<&str> {
        if self.is_request() {
            self.start_line.split(' ').nth(1)
        } else {
            None
        }
    }

    /// The status code, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        if self.is_request() {
            None
        } else {
            self.start_line.split(' ').nth(1)?.parse().ok()
        }
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> &str {
        if self.is_request() {
            return "";
        }
        self.start_line.splitn(3, ' ').nth(2).unwrap_or("")
    }

    /// The first header named `name` (case-insensitive, compact forms understood).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every header named `name`.
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let want = long_header_name(name);
        self.headers
            .iter()
            .filter(move |(k, _)| long_header_name(k) == want)
            .map(|(_, v)| v.as_str())
    }

    pub fn call_id(&self) -> Option<&str> {
        self.header("call-id")
    }

    /// `(number, method)` of the CSeq header.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let v = self.header("cseq")?;
        let mut it = v.split_whitespace();
        let n = it.next()?.parse().ok()?;
        Some((n, it.next()?))
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn long_header_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let long = match lower.as_str() {
        "i" => "call-id",
        "f" => "from",
        "t" => "to",
        "m" => "contact",
        "v" => "via",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "e" => "content-encoding",
        _ => return lower,
    };
    long.to_string()
}

/// The URI of a name-addr or addr-spec header value (`"Lobby" <sip:x@y>;tag=1` → `sip:x@y`).
pub fn header_uri(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim().to_string(),
        _ => value.split(';').next().unwrap_or(value).trim().to_string(),
    }
}

/// A MESSAGE baresip received and accepted (answered 2xx, after printing it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The From URI, as baresip prints it (`sip:lobby@conference.localhost`).
    pub from: String,
    pub body: String,
    /// The Content-Type the server sent.
    pub content_type: Option<String>,
    pub call_id: String,
}

/// A MESSAGE baresip sent after [`Baresip::send_message`].
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub uri: String,
    pub call_id: String,
    /// Position of the request in the event list (responses come after it).
    event: usize,
}

/// The final answer baresip got for a MESSAGE it sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatus {
    pub code: u16,
    pub reason: String,
}

#[derive(Debug, Clone)]
enum Event {
    Sip(SipTrace),
    /// A line of stdout outside the trace.
    Out(String),
    /// A line of stderr (the user interface), as a terminal would show it.
    Err(String),
}

#[derive(Default)]
struct Shared {
    log: String,
    log_dropped: usize,
    events: Vec<Event>,
    overflow: bool,
    /// Local addresses baresip sent REGISTERs from (its side of each flow).
    local_addrs: HashSet<String>,
}

impl Shared {
    fn log_line(&mut self, prefix: &str, line: &str) {
        self.log.push_str(prefix);
        self.log.push_str(line);
        self.log.push('\n');
        if self.log.len() > LOG_LIMIT {
            let mut cut = self.log.len() - LOG_LIMIT / 2;
            while !self.log.is_char_boundary(cut) {
                cut += 1;
            }
            self.log_dropped += cut;
            self.log.drain(..cut);
        }
    }

    fn push(&mut self, event: Event) {
        if self.events.len() >= EVENT_LIMIT {
            self.overflow = true;
            return;
        }
        self.events.push(event);
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes ANSI escape sequences (`ESC [ … final`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn clean_line(raw: &[u8]) -> String {
    let s = strip_ansi(&String::from_utf8_lossy(raw));
    s.trim_end_matches(['\r', '\n']).to_string()
}

enum TraceState {
    Idle,
    /// Saw `#`; the next line is `TP src -> dst`.
    Header,
    Msg(PartialMsg),
}

struct PartialMsg {
    transport: String,
    src: String,
    dst: String,
    lines: Vec<String>,
    /// Set once the blank line after the headers was seen.
    content_length: Option<usize>,
    body: Vec<u8>,
}

fn parse_trace_header(line: &str) -> Option<(String, String, String)> {
    let mut it = line.split_whitespace();
    let tp = it.next()?;
    let src = it.next()?;
    let arrow = it.next()?;
    let dst = it.next()?;
    if arrow != "->" || it.next().is_some() || !matches!(tp, "UDP" | "TCP" | "TLS") {
        return None;
    }
    Some((tp.to_string(), src.to_string(), dst.to_string()))
}

fn finish_msg(shared: &Mutex<Shared>, server: &str, m: PartialMsg) {
    let mut lines = m.lines.into_iter();
    let start_line = lines.next().unwrap_or_default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in lines {
        if l.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(l.trim());
            }
            continue;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut st = lock(shared);
    let is_register = start_line.starts_with("REGISTER ");
    if is_register {
        st.local_addrs.insert(m.src.clone());
    }
    let outgoing = is_register || st.local_addrs.contains(&m.src) || m.dst == server;
    st.push(Event::Sip(SipTrace {
        transport: m.transport,
        src: m.src,
        dst: m.dst,
        outgoing,
        start_line,
        headers,
        body: m.body,
    }));
}

/// Reads baresip's stdout: the SIP trace (`#`, `TP src -> dst`, the message) and log lines.
async fn read_stdout(
    mut reader: impl AsyncBufRead + Unpin,
    shared: Arc<Mutex<Shared>>,
    server: String,
) {
    let mut state = TraceState::Idle;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = clean_line(&raw);
        lock(&shared).log_line("out| ", &line);
        state = match state {
            TraceState::Idle | TraceState::Header if line == "#" => TraceState::Header,
            TraceState::Idle => {
                if !line.trim().is_empty() {
                    lock(&shared).push(Event::Out(line));
                }
                TraceState::Idle
            }
            TraceState::Header => match parse_trace_header(&line) {
                Some((transport, src, dst)) => TraceState::Msg(PartialMsg {
                    transport,
                    src,
                    dst,
                    lines: Vec::new(),
                    content_length: None,
                    body: Vec::new(),
                }),
                None => {
                    if !line.trim().is_empty() {
                        lock(&shared).push(Event::Out(line));
                    }
                    TraceState::Idle
                }
            },
            TraceState::Msg(mut m) => match m.content_length {
                None if line.is_empty() => {
                    let clen = m
                        .lines
                        .iter()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .find(|(k, _)| long_header_name(k) == "content-length")
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if clen == 0 {
                        finish_msg(&shared, &server, m);
                        TraceState::Idle
                    } else {
                        m.content_length = Some(clen);
                        TraceState::Msg(m)
                    }
                }
                None => {
                    m.lines.push(line);
                    TraceState::Msg(m)
                }
                Some(clen) => {
                    m.body.extend_from_slice(&raw);
                    if m.body.len() >= clen {
                        m.body.truncate(clen);
                        finish_msg(&shared, &server, m);
                        TraceState::Idle
                    } else {
                        TraceState::Msg(m)
                    }
                }
            },
        };
    }
    let mut st = lock(&shared);
    st.log_line("out| ", "<end of stdout>");
}

/// Reads baresip's stderr, where the `stdio` UI prints. It redraws the command being typed
/// with `\r`, so each line is shown as a terminal would: its last `\r`-separated part.
async fn read_stderr(mut reader: impl AsyncBufRead + Unpin, shared: Arc<Mutex<Shared>>) {
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = clean_line(&raw);
        let shown = line
            .rsplit('\r')
            .find(|p| !p.trim().is_empty())
            .unwrap_or("")
            .to_string();
        if shown.trim().is_empty() {
            continue;
        }
        let mut st = lock(&shared);
        st.log_line("err| ", &shown);
        st.push(Event::Err(shown));
    }
}

/// A running baresip with its own configuration directory.
pub struct Baresip {
    account: BaresipAccount,
    child: Child,
    stdin: ChildStdin,
    shared: Arc<Mutex<Shared>>,
    /// Index into `contacts` of baresip's current contact.
    current_contact: usize,
    /// `(Call-ID, CSeq)` of MESSAGEs already returned by `wait_for_message`.
    consumed: HashSet<(String, u32)>,
    /// Events before this were looked at by `wait_registered`.
    reg_cursor: usize,
    // Dropped last: baresip is killed (kill_on_drop) before its directory goes.
    dir: tempfile::TempDir,
}

impl Baresip {
    /// Writes the configuration and starts baresip; it registers on its own right away.
    pub async fn start(account: BaresipAccount) -> Result<Baresip> {
        if account.contacts.is_empty() {
            bail!("BaresipAccount.contacts is empty: baresip 1.0.0 can only message contacts");
        }
        for c in &account.contacts {
            if !c.starts_with("sip:")
                || c.chars()
                    .any(|ch| ch.is_whitespace() || "<>\"".contains(ch))
            {
                bail!("contact {c:?} must be a plain sip: URI");
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("palaver-baresip-")
            .tempdir()
            .context("creating baresip's temporary configuration directory")?;
        let write = |name: &str, text: &str| -> Result<()> {
            let path = dir.path().join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        write("config", &config_text(&account))?;
        write("accounts", &account.accounts_line()?)?;
        let contacts: String = account
            .contacts
            .iter()
            .map(|c| format!("<{c}>\n"))
            .collect();
        write("contacts", &contacts)?;

        let bin = baresip_bin();
        let mut child = Command::new(&bin)
            .arg("-f")
            .arg(dir.path())
            .arg("-s")
            .env("HOME", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} -f {} (install the Debian package baresip)",
                    bin.display(),
                    dir.path().display()
                )
            })?;
        let stdin = child.stdin.take().context("baresip stdin")?;
        let stdout = child.stdout.take().context("baresip stdout")?;
        let stderr = child.stderr.take().context("baresip stderr")?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        tokio::spawn(read_stdout(
            BufReader::new(stdout),
            shared.clone(),
            account.server.to_string(),
        ));
        tokio::spawn(read_stderr(BufReader::new(stderr), shared.clone()));
        Ok(Baresip {
            account,
            child,
            stdin,
            shared,
            current_contact: 0,
            consumed: HashSet::new(),
            reg_cursor: 0,
            dir,
        })
    }

    pub fn account(&self) -> &BaresipAccount {
        &self.account
    }

    /// The configuration directory (`config`, `accounts`, `contacts`).
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits for the outcome of the next registration attempt: `Ok` once the server answered a
    /// REGISTER with 2xx, an error when baresip reports a failure (`reg: …`: a final error
    /// status, an authentication it cannot do, a transport error) or exits. Each call consumes
    /// the outcome it returns, so calling it again waits for the next one (e.g. a refresh).
    pub async fn wait_registered(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let st = lock(&self.shared);
                for (i, ev) in st.events.iter().enumerate().skip(self.reg_cursor) {
                    match ev {
                        Event::Sip(t)
                            if !t.outgoing
                                && t.cseq().map(|c| c.1) == Some("REGISTER")
                                && t.status().is_some_and(|s| (200..300).contains(&s)) =>
                        {
                            self.reg_cursor = i + 1;
                            return Ok(());
                        }
                        Event::Out(l) if l.starts_with("reg: ") => {
                            self.reg_cursor = i + 1;
                            let l = l.clone();
                            drop(st);
                            bail!("baresip registration failed: {l}\n{}", self.describe());
                        }
                        _ => {}
                    }
                }
            }
            self.check_alive("waiting for the registration")?;
            if Instant::now() >= deadline {
                bail!(
                    "baresip did not report a registration within {timeout:?}\n{}",
                    self.describe()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types a long command (`/NAME ARGS`) into baresip's console.
    pub async fn command(&mut self, command: &str) -> Result<()> {
        check_typed("command", command)?;
        let line = format!("/{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .with_context(|| format!("writing {line:?} to baresip's stdin"))?;
        self.stdin
            .flush()
            .await
            .context("flushing baresip's stdin")?;
        Ok(())
    }

    /// Sends a SIP MESSAGE with `text` to `uri` (one of [`BaresipAccount::contacts`]) with
    /// baresip's `/message` command; returns once baresip put the request on the wire.
    /// `text` must be one line without tabs or control characters (the console would edit
    /// them) and must not start with a space (the command parser drops leading spaces).
    pub async fn send_message(&mut self, uri: &str, text: &str) -> Result<SentMessage> {
        check_typed("message text", text)?;
        if text.is_empty() || text.starts_with(' ') {
            bail!("baresip cannot send an empty text or one starting with a space: {text:?}");
        }
        let idx = self
            .account
            .contacts
            .iter()
            .position(|c| c == uri)
            .ok_or_else(|| {
                anyhow!(
                    "{uri} is not in BaresipAccount.contacts {:?}: baresip 1.0.0 only messages \
                     its contacts",
                    self.account.contacts
                )
            })?;
        while self.current_contact < idx {
            self.command("contact_next").await?;
            self.current_contact += 1;
        }
        while self.current_contact > idx {
            self.command("contact_prev").await?;
            self.current_contact -= 1;
        }
        let mark = lock(&self.shared).events.len();
        self.command(&format!("message {text}")).await?;
        let deadline = Instant::now() + SEND_TIMEOUT;
        loop {
            {
                let st = lock(&self.shared);
                for (i, ev) in st.events.iter().enumerate().skip(mark) {
                    match ev {
                        Event::Sip(t)
                            if t.outgoing
                                && t.method() == Some("MESSAGE")
                                && t.request_uri().is_some_and(|u| u.starts_with(uri)) =>
                        {
                            let call_id = t
                                .call_id()
                                .ok_or_else(|| anyhow!("baresip sent a MESSAGE without Call-ID"))?
                                .to_string();
                            return Ok(SentMessage {
                                uri: uri.to_string(),
                                call_id,
                                event: i,
                            });
                        }
                        Event::Err(l)
                            if l.contains("message_send(")
                                || l.contains("current contact not set")
                                || l.starts_with("command not found") =>
                        {
                            let l = l.clone();
                            drop(st);
                            bail!("baresip refused /message: {l}\n{}", self.describe());
                        }
                        _ => {}
                    }
                }
            }
            self.check_alive("sending a MESSAGE")?;
            if Instant::now() >= deadline {
                bail!(
                    "baresip did not send the MESSAGE to {uri} within {SEND_TIMEOUT:?}\n{}",
                    self.describe()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The final status baresip got for `sent`. A 401/407 that baresip answered with
    /// credentials is not final: the status of the retried request is returned instead.
    pub async fn wait_message_response(
        &mut self,
        sent: &SentMessage,
        timeout: Duration,
    ) -> Result<MessageStatus> {
        let deadline = Instant::now() + timeout;
        // (status, when first seen) of an auth challenge waiting for a retry.
        let mut challenge: Option<(u32, Instant)> = None;
        loop {
            {
                let st = lock(&self.shared);
                let ours = |t: &SipTrace| t.call_id() == Some(sent.call_id.as_str());
                let last_cseq = st.events[sent.event..]
                    .iter()
                    .filter_map(|e| match e {
                        Event::Sip(t) if t.outgoing && t.is_request() && ours(t) => {
                            t.cseq().map(|c| c.0)
                        }
                        _ => None,
                    })
                    .max();
                let answer = st.events[sent.event..].iter().find_map(|e| match e {
                    Event::Sip(t)
                        if !t.outgoing
                            && ours(t)
                            && t.cseq().map(|c| c.0) == last_cseq
                            && t.status().is_some_and(|s| s >= 200) =>
                    {
                        Some(MessageStatus {
                            code: t.status().unwrap_or(0),
                            reason: t.reason().to_string(),
                        })
                    }
                    _ => None,
                });
                if let (Some(answer), Some(cseq)) = (answer, last_cseq) {
                    if answer.code != 401 && answer.code != 407 {
                        return Ok(answer);
                    }
                    match challenge {
                        Some((c, since)) if c == cseq => {
                            if since.elapsed() >= AUTH_RETRY_GRACE {
                                return Ok(answer);
                            }
                        }
                        _ => challenge = Some((cseq, Instant::now())),
                    }
                }
            }
            self.check_alive("waiting for the answer to a MESSAGE")?;
            if Instant::now() >= deadline {
                bail!(
                    "no final answer to baresip's MESSAGE {} (to {}) within {timeout:?}\n{}",
                    sent.call_id,
                    sent.uri,
                    self.describe()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for the first MESSAGE baresip received and accepted (answered 2xx) that matches
    /// `pred` and was not returned before.
    pub async fn wait_for_message(
        &mut self,
        pred: impl Fn(&ReceivedMessage) -> bool,
        timeout: Duration,
    ) -> Result<ReceivedMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = {
                let st = lock(&self.shared);
                received(&st.events)
                    .into_iter()
                    .find(|(key, m)| !self.consumed.contains(key) && pred(m))
            };
            if let Some((key, m)) = found {
                self.consumed.insert(key);
                return Ok(m);
            }
            self.check_alive("waiting for a MESSAGE")?;
            if Instant::now() >= deadline {
                bail!(
                    "baresip received no matching MESSAGE within {timeout:?}; accepted so far: \
                     {:?}\n{}",
                    self.received_messages(),
                    self.describe()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// [`Baresip::wait_for_message`] for a body equal to `body`.
    pub async fn wait_for_body(
        &mut self,
        body: &str,
        timeout: Duration,
    ) -> Result<ReceivedMessage> {
        self.wait_for_message(|m| m.body == body, timeout).await
    }

    /// Every MESSAGE accepted so far (consumed or not), in order.
    pub fn received_messages(&self) -> Vec<ReceivedMessage> {
        received(&lock(&self.shared).events)
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    /// Every SIP message in baresip's trace so far.
    pub fn sip_trace(&self) -> Vec<SipTrace> {
        lock(&self.shared)
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Sip(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// Lines baresip printed outside the SIP trace (stdout log and the stderr console).
    pub fn output_lines(&self) -> Vec<String> {
        lock(&self.shared)
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Out(l) | Event::Err(l) => Some(l.clone()),
                Event::Sip(_) => None,
            })
            .collect()
    }

    /// Quits with `/quit` (baresip un-REGISTERs first) and waits for it to exit.
    pub async fn quit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.command("quit").await?;
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.context("waiting for baresip to exit"),
            Err(_) => {
                let _ = self.child.start_kill();
                bail!(
                    "baresip did not exit within {timeout:?} after /quit\n{}",
                    self.describe()
                )
            }
        }
    }

    /// Everything baresip printed (bounded: the oldest output is dropped first): stdout lines
    /// as `out| …` (including the SIP trace), console lines as `err| …`.
    pub fn log(&self) -> String {
        let st = lock(&self.shared);
        let mut out = String::new();
        if st.log_dropped > 0 {
            let _ = writeln!(
                out,
                "[… {} bytes of earlier output dropped …]",
                st.log_dropped
            );
        }
        out.push_str(&st.log);
        out
    }

    fn describe(&self) -> String {
        format!(
            "--- baresip {} ({} via {}) config {} ---\n{}",
            self.account.aor(),
            self.account.transport.param(),
            self.account.server,
            self.dir.path().display(),
            self.log()
        )
    }

    fn check_alive(&mut self, doing: &str) -> Result<()> {
        if lock(&self.shared).overflow {
            bail!("baresip printed more than {EVENT_LIMIT} messages/lines while {doing}");
        }
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(anyhow!(
                "baresip exited ({status}) while {doing}\n{}",
                self.describe()
            )),
            Err(e) => Err(anyhow!(e).context(format!("checking on baresip while {doing}"))),
        }
    }
}

/// MESSAGEs received and answered 2xx by baresip, keyed by `(Call-ID, CSeq)`.
fn received(events: &[Event]) -> Vec<((String, u32), ReceivedMessage)> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let Event::Sip(req) = e else { continue };
        if req.outgoing || req.method() != Some("MESSAGE") {
            continue;
        }
        let (Some(call_id), Some((cseq, _))) = (req.call_id(), req.cseq()) else {
            continue;
        };
        let accepted = events[i + 1..].iter().any(|r| match r {
            Event::Sip(t) => {
                t.outgoing
                    && t.call_id() == Some(call_id)
                    && t.cseq() == Some((cseq, "MESSAGE"))
                    && t.status().is_some_and(|s| (200..300).contains(&s))
            }
            _ => false,
        });
        if !accepted {
            continue;
        }
        out.push((
            (call_id.to_string(), cseq),
            ReceivedMessage {
                from: req.header("from").map(header_uri).unwrap_or_default(),
                body: req.body_text(),
                content_type: req.header("content-type").map(str::to_string),
                call_id: call_id.to_string(),
            },
        ));
    }
    out
}

/// Text typed into the `stdio` console: it reads key by key, so `\n` ends the command, `\t`
/// completes, ESC cancels, backspace/DEL edit and 0x04 is its key-release code.
fn check_typed(what: &str, text: &str) -> Result<()> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        bail!("baresip's console cannot take control character {c:?} in the {what} {text:?}");
    }
    Ok(())
}

fn config_text(account: &BaresipAccount) -> String {
    let (listen, net) = if account.server.is_ipv6() {
        ("[::1]:0", "::1")
    } else {
        ("127.0.0.1:0", "127.0.0.1")
    };
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# written by palaver's e2e harness (tests/src/baresip.rs)"
    );
    let _ = writeln!(c, "poll_method\t\tepoll");
    let _ = writeln!(c, "sip_listen\t\t{listen}");
    let _ = writeln!(c, "net_interface\t\t{net}");
    if let Some(ca) = &account.ca_file {
        let _ = writeln!(c, "sip_cafile\t\t{}", ca.display());
    }
    let _ = writeln!(c, "call_local_timeout\t120");
    let _ = writeln!(c, "call_max_calls\t\t1");
    // No audio driver module is loaded; these names only make sure nothing is opened.
    let _ = writeln!(c, "audio_player\t\tnone,none");
    let _ = writeln!(c, "audio_source\t\tnone,none");
    let _ = writeln!(c, "audio_alert\t\tnone,none");
    let _ = writeln!(c, "menu_bell\t\tno");
    let _ = writeln!(c, "module_path\t\t{}", baresip_modules().display());
    for m in MODULES {
        let _ = writeln!(c, "module\t\t\t{m}");
    }
    for m in TMP_MODULES {
        let _ = writeln!(c, "module_tmp\t\t{m}");
    }
    for m in APP_MODULES {
        let _ = writeln!(c, "module_app\t\t{m}");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ansi() {
        assert_eq!(strip_ansi("\x1b[36;1m#"), "#");
        assert_eq!(strip_ansi("a\x1b[;mb"), "ab");
        assert_eq!(clean_line(b"\x1b[31mx\x1b[;m\r\n"), "x");
    }

    #[test]
    fn trace_header() {
        assert_eq!(
            parse_trace_header("TCP 127.0.0.1:1 -> 127.0.0.1:2"),
            Some(("TCP".into(), "127.0.0.1:1".into(), "127.0.0.1:2".into()))
        );
        assert_eq!(
            parse_trace_header("alice@localhost: {0/TCP/v4} 200 OK"),
            None
        );
    }

    #[test]
    fn uri_of_header() {
        assert_eq!(
            header_uri("\"Lobby\" <sip:lobby@conference.localhost>;tag=1"),
            "sip:lobby@conference.localhost"
        );
        assert_eq!(header_uri("sip:a@b;tag=1"), "sip:a@b");
    }

    #[tokio::test]
    async fn parses_a_trace() -> Result<()> {
        let out: &[u8] = b"baresip is ready.\n\x1b[36;1m#\nUDP 127.0.0.1:5 -> 127.0.0.1:9\n\
MESSAGE sip:lobby@conference.localhost SIP/2.0\r\nCall-ID: x\r\nCSeq: 3 MESSAGE\r\n\
Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nab\ncd\x1b[;m\n\x1b[36;1m#\n\
UDP 127.0.0.1:9 -> 127.0.0.1:5\nSIP/2.0 200 OK\r\ni: x\r\nCSeq: 3 MESSAGE\r\nl: 0\r\n\r\n\
\x1b[;m\nalice@localhost: {0/UDP/v4} 200 OK\n";
        let shared = Arc::new(Mutex::new(Shared::default()));
        read_stdout(BufReader::new(out), shared.clone(), "127.0.0.1:9".into()).await;
        let st = lock(&shared);
        let sips: Vec<&SipTrace> = st
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Sip(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(sips.len(), 2);
        assert!(sips[0].outgoing);
        assert_eq!(sips[0].body, b"ab\ncd");
        assert_eq!(
            sips[0].request_uri(),
            Some("sip:lobby@conference.localhost")
        );
        assert!(!sips[1].outgoing);
        assert_eq!(sips[1].status(), Some(200));
        assert_eq!(sips[1].call_id(), Some("x"));
        assert_eq!(sips[1].cseq(), Some((3, "MESSAGE")));
        assert!(st
            .events
            .iter()
            .any(|e| matches!(e, Event::Out(l) if l.starts_with("alice@localhost"))));
        Ok(())
    }

    #[test]
    fn accounts_line() -> Result<()> {
        let server: SocketAddr = "127.0.0.1:5070".parse()?;
        let a = BaresipAccount::new("alice", "secret", server, Transport::Tcp);
        assert_eq!(
            a.accounts_line()?,
            "<sip:alice@localhost;transport=tcp>;auth_pass=secret;\
             outbound=\"sip:127.0.0.1:5070;transport=tcp\";regint=600;mwi=no;pubint=0;\
             answermode=manual\n"
        );
        let bad = BaresipAccount::new("alice", "a;b", server, Transport::Tcp);
        assert!(bad.accounts_line().is_err());
        Ok(())
    }
}
