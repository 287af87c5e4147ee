//! [`TestServer`]: the real `palaver` binary, started as a user would (`palaver serve --config
//! FILE`) in a fresh temporary data directory, with SQLite or PostgreSQL, on loopback ports the
//! OS picks. The harness learns the ports from the lines the server prints, adds users with the
//! CLI, stops it with SIGTERM (and checks it exits 0), restarts it on the same data, and prints
//! the server's log when a test fails.
//!
//! Binary: `$PALAVER_BIN`, else `<target dir>/debug/palaver` (`$CARGO_TARGET_DIR` or
//! `<workspace>/target`). `scripts/test` builds it first; a binary older than the server's
//! sources is refused (set `PALAVER_E2E_ALLOW_STALE=1` to run it anyway) so a test never
//! silently runs old code.
//!
//! SIP: the configuration asks for one loopback UDP, TCP and TLS listener (`[sip]`, port 0) and
//! [`TestServer::sip_udp`], [`TestServer::sip_tcp`] and [`TestServer::sip_tls`] (or
//! [`TestServer::sip_addr`] for a [`SipTransport`]) return what the server announced
//! (`palaver: listening sip-udp ADDR` …); `ServerOptions::sip_extra` adds keys to that table.
//!
//! PostgreSQL: `$PALAVER_TEST_PG`, else `$DATABASE_URL`; each server gets its own schema
//! (`schema=t_<random>` in the store URL), dropped again (with `psql`, best effort) at the end.
//! A PostgreSQL test fails when neither variable is set: it never skips.

use crate::sip_client::SipTransport;
use anyhow::{anyhow, bail, Context as _, Result};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long `palaver serve` may take to print `palaver: ready`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop (SIGTERM → exit 0) may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one CLI command may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Which store backend the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// `sqlite://<data_dir>/palaver.db`.
    Sqlite,
    /// `$PALAVER_TEST_PG` / `$DATABASE_URL` with a schema of its own.
    Postgres,
}

/// Extra configuration for a test server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Lines appended to the `[xmpp]` table of palaver.toml (e.g. `outbound_queue = 32`).
    pub xmpp_extra: String,
    /// Lines appended to the `[sip]` table (e.g. `min_expires = 1`).
    pub sip_extra: String,
    /// Whole tables appended at the end of palaver.toml (e.g. a `[pool]` table).
    pub extra_toml: String,
    /// The loopback address the XMPP and SIP listeners bind (port 0); `None`: `127.0.0.1`.
    /// Pool tests give each node its own (`127.0.0.2`, …).
    pub bind_ip: Option<String>,
    /// A store URL to use instead of the one `store` implies (e.g. one PostgreSQL schema shared
    /// by the nodes of a pool, see [`SharedPgSchema`]). The caller owns that store: the server
    /// drops nothing at the end.
    pub store_url: Option<String>,
    /// The port of the STARTTLS c2s listener (on `bind_ip`); `None`: 0 (the OS picks). Pool
    /// tests reserve it up front so the `[pool]` members list can name it (`xmpp = …`).
    pub c2s_port: Option<u16>,
    /// Serve HTTPS (`/health`, `/ready`, `/metrics`) on `bind_ip`, port 0; off by default.
    pub https: bool,
}

/// A PostgreSQL schema created for one test server.
#[derive(Debug, Clone)]
struct PgSchema {
    base_url: String,
    schema: String,
}

impl PgSchema {
    /// A fresh name `t_<random>` on [`pg_base_url`] (the server creates the schema).
    fn new() -> Result<PgSchema> {
        Ok(PgSchema {
            base_url: pg_base_url()?,
            schema: format!("t_{}", crate::random_hex(16)),
        })
    }

    /// The store URL naming the schema (`…?schema=t_…`).
    fn url(&self) -> String {
        let sep = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}schema={}", self.base_url, self.schema)
    }
}

/// One PostgreSQL schema shared by several servers (the nodes of a pool): pass
/// [`SharedPgSchema::url`] as [`ServerOptions::store_url`] to each. The first server to open it
/// creates and migrates it; it is dropped (with `psql`, best effort, unless `PALAVER_E2E_KEEP`
/// is set) when this value is dropped, so drop the servers first. Fails (never skips) without
/// `$PALAVER_TEST_PG` / `$DATABASE_URL`.
#[derive(Debug)]
pub struct SharedPgSchema {
    pg: PgSchema,
    url: String,
}

impl SharedPgSchema {
    /// A new schema name `t_<random>` on `$PALAVER_TEST_PG` / `$DATABASE_URL`.
    pub fn new() -> Result<SharedPgSchema> {
        let pg = PgSchema::new()?;
        let url = pg.url();
        Ok(SharedPgSchema { pg, url })
    }

    /// The store URL (`…?schema=t_…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.pg.schema
    }
}

impl Drop for SharedPgSchema {
    fn drop(&mut self) {
        if std::env::var_os("PALAVER_E2E_KEEP").is_some() {
            eprintln!("palaver e2e: kept PostgreSQL schema {}", self.pg.schema);
        } else {
            drop_pg_schema(&self.pg);
        }
    }
}

/// Output of one CLI run.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Fails with everything printed unless the command exited 0.
    pub fn ok(self) -> Result<CliOutput> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(anyhow!(
                "command failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.status,
                self.stdout,
                self.stderr
            ))
        }
    }
}

/// One running (or stopped) palaver server with its own data directory.
pub struct TestServer {
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    config_path: PathBuf,
    stderr_path: PathBuf,
    store: Store,
    store_url: String,
    pg: Option<PgSchema>,
    child: Option<Child>,
    starttls: Option<SocketAddr>,
    direct_tls: Option<SocketAddr>,
    sip_udp: Option<SocketAddr>,
    sip_tcp: Option<SocketAddr>,
    sip_tls: Option<SocketAddr>,
    https: Option<SocketAddr>,
    stdout_lines: Arc<Mutex<Vec<String>>>,
    starts: u32,
    /// The test's own `[log]` table sets the filter (then `RUST_LOG` is not defaulted).
    own_log_filter: bool,
}

impl TestServer {
    /// Starts a server with the default test configuration.
    pub async fn start(store: Store) -> Result<TestServer> {
        TestServer::start_with(store, ServerOptions::default()).await
    }

    /// Starts a server with extra configuration.
    /// Starts a server with `opts` and adds `users` (`alice` → `alice@localhost`, password
    /// [`crate::password_of`]); panics with the server's diagnostics when that fails.
    pub async fn start_with_users(store: Store, opts: ServerOptions, users: &[&str]) -> TestServer {
        let server = match TestServer::start_with(store, opts).await {
            Ok(s) => s,
            Err(e) => panic!("the server does not start: {e:?}"),
        };
        for u in users {
            let jid = format!("{u}@{}", crate::DOMAIN);
            if let Err(e) = server.add_user(&jid, &crate::password_of(u)).await {
                panic!("adding {jid}: {e:?}\n{}", server.diagnostics());
            }
        }
        server
    }

    pub async fn start_with(store: Store, opts: ServerOptions) -> Result<TestServer> {
        let mut server = TestServer::prepare(store, opts)?;
        server.spawn().await?;
        Ok(server)
    }

    /// Writes the data directory and palaver.toml without starting the server (for CLI
    /// tests); [`TestServer::start_again`] starts it.
    pub fn prepare(store: Store, opts: ServerOptions) -> Result<TestServer> {
        palaver_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("palaver-e2e-")
            .tempdir()
            .context("creating the temporary data directory")?;
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir)?;
        let (store_url, pg) = match (&opts.store_url, store) {
            (Some(url), _) => (url.clone(), None),
            (None, Store::Sqlite) => (format!("sqlite://{}/palaver.db", data_dir.display()), None),
            (None, Store::Postgres) => {
                let pg = PgSchema::new()?;
                (pg.url(), Some(pg))
            }
        };
        let ip = opts.bind_ip.as_deref().unwrap_or("127.0.0.1");
        let c2s_port = opts.c2s_port.unwrap_or(0);
        let config_path = dir.path().join("palaver.toml");
        let mut config = format!(
            "domain = \"localhost\"\n\
             data_dir = {data}\n\
             \n\
             [store]\n\
             url = {url}\n\
             \n\
             [xmpp]\n\
             c2s = [\"{ip}:{c2s_port}\"]\n\
             c2s_direct_tls = [\"{ip}:0\"]\n\
             {extra}\n\
             \n\
             [http]\n\
             listen = [{https}]\n",
            data = toml_str(&data_dir.display().to_string()),
            url = toml_str(&store_url),
            extra = opts.xmpp_extra,
            https = if opts.https {
                format!("\"{ip}:0\"")
            } else {
                String::new()
            },
        );
        config.push_str(&SIP_SECTION.replace("127.0.0.1", ip));
        config.push_str(&opts.sip_extra);
        config.push('\n');
        config.push_str(&opts.extra_toml);
        config.push('\n');
        std::fs::write(&config_path, config).context("writing palaver.toml")?;
        let stderr_path = dir.path().join("server.stderr.log");
        Ok(TestServer {
            dir: Some(dir),
            data_dir,
            config_path,
            stderr_path,
            store,
            store_url,
            pg,
            child: None,
            starttls: None,
            direct_tls: None,
            sip_udp: None,
            sip_tcp: None,
            sip_tls: None,
            https: None,
            stdout_lines: Arc::new(Mutex::new(Vec::new())),
            starts: 0,
            own_log_filter: opts.extra_toml.contains("[log]"),
        })
    }

    /// Launches `palaver serve` and waits for `palaver: ready`.
    async fn spawn(&mut self) -> Result<()> {
        let bin = palaver_bin()?;
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .context("opening the server log")?;
        writeln!(log, "===== palaver serve (start #{}) =====", self.starts)?;
        let stderr = log.try_clone()?;
        let mut cmd = palaver_command(&bin);
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        if std::env::var_os("RUST_LOG").is_none() && !self.own_log_filter {
            cmd.env("RUST_LOG", "info");
        }
        // The log goes to a file: no colour codes.
        cmd.env("NO_COLOR", "1");
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} serve", bin.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let lines_store = self.stdout_lines.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut all) = lines_store.lock() {
                    all.push(line.clone());
                }
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        self.starttls = None;
        self.direct_tls = None;
        self.sip_udp = None;
        self.sip_tcp = None;
        self.sip_tls = None;
        self.https = None;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let line = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => {
                    let status = match self.child.as_mut() {
                        Some(c) => tokio::time::timeout(Duration::from_secs(5), c.wait())
                            .await
                            .ok()
                            .and_then(|r| r.ok()),
                        None => None,
                    };
                    bail!(
                        "palaver serve closed its stdout before `palaver: ready` (exit: {status:?})\n{}",
                        self.diagnostics()
                    );
                }
                Err(_) => bail!(
                    "palaver serve did not print `palaver: ready` within {START_TIMEOUT:?}\n{}",
                    self.diagnostics()
                ),
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["palaver:", "listening", kind, addr, ..] => {
                    let addr: Option<SocketAddr> = addr.parse().ok();
                    match *kind {
                        "xmpp-starttls" => self.starttls = self.starttls.or(addr),
                        "xmpp-tls" => self.direct_tls = self.direct_tls.or(addr),
                        "sip-udp" => self.sip_udp = self.sip_udp.or(addr),
                        "sip-tcp" => self.sip_tcp = self.sip_tcp.or(addr),
                        "sip-tls" => self.sip_tls = self.sip_tls.or(addr),
                        "https" => self.https = self.https.or(addr),
                        _ => {}
                    }
                }
                ["palaver:", "ready", ..] => break,
                _ => {}
            }
        }
        if self.starttls.is_none() || self.direct_tls.is_none() {
            bail!(
                "palaver serve said ready without printing both `palaver: listening xmpp-starttls ADDR` \
                 and `palaver: listening xmpp-tls ADDR`\n{}",
                self.diagnostics()
            );
        }
        Ok(())
    }

    /// The STARTTLS c2s address (the `5222` listener).
    pub fn starttls_addr(&self) -> SocketAddr {
        self.starttls.expect("the server is running")
    }

    /// The direct-TLS c2s address (the `5223` listener).
    pub fn direct_tls_addr(&self) -> SocketAddr {
        self.direct_tls.expect("the server is running")
    }

    /// The SIP UDP listener (`palaver: listening sip-udp ADDR`).
    ///
    /// Panics when the server announced none (a build without SIP, or not running).
    #[track_caller]
    pub fn sip_udp(&self) -> SocketAddr {
        self.sip_listener(self.sip_udp, "sip-udp")
    }

    /// The SIP TCP listener (`palaver: listening sip-tcp ADDR`); panics when none was announced.
    #[track_caller]
    pub fn sip_tcp(&self) -> SocketAddr {
        self.sip_listener(self.sip_tcp, "sip-tcp")
    }

    /// The SIP listener for `transport` ([`TestServer::sip_udp`], [`TestServer::sip_tcp`] or
    /// [`TestServer::sip_tls`]); panics when none was announced.
    #[track_caller]
    pub fn sip_addr(&self, transport: SipTransport) -> SocketAddr {
        match transport {
            SipTransport::Udp => self.sip_udp(),
            SipTransport::Tcp => self.sip_tcp(),
            SipTransport::Tls => self.sip_tls(),
        }
    }

    /// The HTTPS listener, when [`ServerOptions::https`] asked for one.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https
    }

    /// The SIP TLS listener (`palaver: listening sip-tls ADDR`, the dev CA's certificate);
    /// panics when none was announced.
    #[track_caller]
    pub fn sip_tls(&self) -> SocketAddr {
        self.sip_listener(self.sip_tls, "sip-tls")
    }

    #[track_caller]
    fn sip_listener(&self, addr: Option<SocketAddr>, kind: &str) -> SocketAddr {
        match addr {
            Some(addr) => addr,
            None if self.child.is_none() => panic!("the server is not running (wanted {kind})"),
            None => panic!(
                "the server did not print `palaver: listening {kind} ADDR` before `palaver: ready` \
                 (a build without SIP, or the `[sip]` listener failed); its stdout was:\n{}",
                self.stdout_lines().join("\n")
            ),
        }
    }

    /// The dev CA a client must trust.
    pub fn ca_path(&self) -> PathBuf {
        self.data_dir.join("certs").join("ca.pem")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn store(&self) -> Store {
        self.store
    }

    pub fn store_url(&self) -> &str {
        &self.store_url
    }

    /// The child's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Everything the server printed on stdout so far (all starts).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_lines
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// The server's stderr log so far (all starts).
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Stdout and the tail of stderr, for failure messages.
    pub fn diagnostics(&self) -> String {
        let stderr = self.stderr_log();
        let tail: Vec<&str> = stderr.lines().rev().take(200).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "--- palaver stdout ---\n{}\n--- palaver stderr (last 200 lines of {}) ---\n{}",
            self.stdout_lines().join("\n"),
            self.stderr_path.display(),
            tail.join("\n")
        )
    }

    /// Runs `palaver ARGS… --config FILE` and returns its output (any exit code).
    pub async fn cli(&self, args: &[&str]) -> Result<CliOutput> {
        run_cli(args, &self.config_path).await
    }

    /// `palaver user add JID --password PW`; fails unless it exits 0.
    pub async fn add_user(&self, jid: &str, password: &str) -> Result<()> {
        self.cli(&["user", "add", jid, "--password", password])
            .await?
            .ok()
            .with_context(|| format!("palaver user add {jid}"))?;
        Ok(())
    }

    /// Sends SIGTERM and waits (≤ 10 s) for the server to exit; fails unless it exits 0.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("the server is not running");
        };
        let Some(pid) = child.id() else {
            let status = child.wait().await?;
            bail!(
                "the server had already exited ({status})\n{}",
                self.diagnostics()
            );
        };
        send_sigterm(pid).await?;
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => bail!(
                "the server exited with {status} after SIGTERM (expected 0)\n{}",
                self.diagnostics()
            ),
            Ok(Err(e)) => Err(e).context("waiting for the server"),
            Err(_) => {
                let _ = child.kill().await;
                bail!(
                    "the server did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed it)\n{}",
                    self.diagnostics()
                )
            }
        }
    }

    /// Stops the server gracefully and starts it again on the same data (new ports).
    pub async fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.stop().await?;
        }
        self.spawn().await
    }

    /// Starts a prepared or stopped server (on the same data).
    pub async fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("the server is already running");
        }
        self.spawn().await
    }

    /// Kills the server without a graceful shutdown (SIGKILL).
    pub async fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            for _ in 0..100 {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let keep = std::env::var_os("PALAVER_E2E_KEEP").is_some();
        if std::thread::panicking() {
            eprintln!(
                "==== palaver server of the failed test (data dir {}; PALAVER_E2E_KEEP=1 keeps it) ====\n{}",
                self.data_dir.display(),
                self.diagnostics()
            );
        }
        if let Some(pg) = &self.pg {
            if !keep {
                drop_pg_schema(pg);
            }
        }
        if keep {
            if let Some(dir) = self.dir.take() {
                let path = dir.keep();
                eprintln!("palaver e2e: kept {}", path.display());
            }
        }
    }
}

/// Runs `palaver ARGS… --config FILE`.
pub async fn run_cli(args: &[&str], config: &Path) -> Result<CliOutput> {
    let bin = palaver_bin()?;
    let mut cmd = palaver_command(&bin);
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    run_command(cmd, &format!("palaver {}", args.join(" "))).await
}

/// Runs `palaver ARGS…` exactly as given (no `--config` added) in `cwd`, with extra
/// environment variables.
pub async fn run_cli_raw(args: &[&str], cwd: &Path, env: &[(&str, &Path)]) -> Result<CliOutput> {
    let bin = palaver_bin()?;
    let mut cmd = palaver_command(&bin);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(cmd, &format!("palaver {}", args.join(" "))).await
}

/// A `palaver` command without the `PALAVER_*` overrides of the caller's environment, so
/// only the test's own configuration applies.
fn palaver_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for var in PALAVER_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// The environment variables that would override a test's configuration.
const PALAVER_ENV: [&str; 4] = [
    "PALAVER_CONFIG",
    "PALAVER_DATA_DIR",
    "PALAVER_STORE_URL",
    "PALAVER_DOMAIN",
];

async fn run_command(mut cmd: Command, what: &str) -> Result<CliOutput> {
    let out = tokio::time::timeout(CLI_TIMEOUT, cmd.output())
        .await
        .map_err(|_| anyhow!("`{what}` did not finish within {CLI_TIMEOUT:?}"))?
        .with_context(|| format!("running `{what}`"))?;
    Ok(CliOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// SIGTERM through the shell's `kill` builtin: `/bin/sh` is on every Debian system (procps's
/// `/usr/bin/kill` may not be), and the workspace forbids `unsafe`, so no `libc::kill`; this
/// avoids a `nix` dependency for one call.
async fn send_sigterm(pid: u32) -> Result<()> {
    let status = Command::new("/bin/sh")
        .args(["-c", "kill -TERM \"$1\"", "sh", &pid.to_string()])
        .status()
        .await
        .context("running /bin/sh -c kill")?;
    if !status.success() {
        bail!("kill -TERM {pid} failed ({status})");
    }
    Ok(())
}

/// The `palaver` binary under test.
pub fn palaver_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PALAVER_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("PALAVER_BIN={} is not a file", p.display());
        }
        return Ok(p);
    }
    let workspace = workspace_dir();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => {
            let t = PathBuf::from(t);
            if t.is_absolute() {
                t
            } else {
                workspace.join(t)
            }
        }
        None => workspace.join("target"),
    };
    let bin = target.join("debug").join("palaver");
    if !bin.is_file() {
        bail!(
            "the palaver binary is missing: {} (build it with `cargo build -p palaver-gateway`, \
             or run scripts/test, or set PALAVER_BIN)",
            bin.display()
        );
    }
    if std::env::var_os("PALAVER_E2E_ALLOW_STALE").is_none() {
        // Checked once per test process, so one run uses one binary throughout even if
        // someone edits the sources meanwhile.
        static FRESH: std::sync::OnceLock<std::result::Result<(), String>> =
            std::sync::OnceLock::new();
        FRESH
            .get_or_init(|| check_fresh(&bin, &workspace).map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| anyhow!(e))?;
    }
    Ok(bin)
}

/// The workspace root (this crate's parent directory).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Fails if a source file of a crate linked into the binary is newer than the binary.
fn check_fresh(bin: &Path, workspace: &Path) -> Result<()> {
    check_fresh_against(
        bin,
        workspace,
        &["gateway", "core", "dialects", "certs"],
        "palaver-gateway",
    )
}

/// Fails if a source file under one of `crates` is newer than `bin` (`package` is what to
/// rebuild).
fn check_fresh_against(bin: &Path, workspace: &Path, crates: &[&str], package: &str) -> Result<()> {
    let built = std::fs::metadata(bin)?.modified()?;
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for krate in crates {
        newest_source(&workspace.join(krate), &mut newest);
    }
    if let Some((time, path)) = newest {
        if time > built {
            bail!(
                "the binary {} is older than {} — rebuild it (`cargo build -p {package}`; \
                 scripts/test does it), or set PALAVER_E2E_ALLOW_STALE=1",
                bin.display(),
                path.display()
            );
        }
    }
    Ok(())
}

/// The `palaver-conformance` binary beside `palaver` (load generator and conformance suite),
/// refused when older than its sources unless `PALAVER_E2E_ALLOW_STALE` is set.
pub fn conformance_bin() -> Result<PathBuf> {
    let tool = palaver_bin()?.with_file_name("palaver-conformance");
    if !tool.is_file() {
        bail!(
            "missing {} (cargo build -p palaver-conformance; scripts/test does it)",
            tool.display()
        );
    }
    if std::env::var_os("PALAVER_E2E_ALLOW_STALE").is_none() {
        check_fresh_against(
            &tool,
            &workspace_dir(),
            &["conformance", "dialects"],
            "palaver-conformance",
        )?;
    }
    Ok(tool)
}

fn newest_source(dir: &Path, newest: &mut Option<(SystemTime, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" || name == "tests" || name == "benches" {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            newest_source(&path, newest);
        } else if name.ends_with(".rs") || name.ends_with(".sql") || name == "Cargo.toml" {
            if let Ok(t) = meta.modified() {
                if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                    *newest = Some((t, path));
                }
            }
        }
    }
}

/// `$PALAVER_TEST_PG`, else `$DATABASE_URL`; an error (never a skip) when neither is set.
pub fn pg_base_url() -> Result<String> {
    for var in ["PALAVER_TEST_PG", "DATABASE_URL"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return Ok(v.trim().to_string());
            }
        }
    }
    bail!(
        "PostgreSQL tests need PALAVER_TEST_PG or DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test); \
         scripts/test sets it, starting a throwaway cluster when no server is reachable"
    )
}

/// Best-effort `DROP SCHEMA … CASCADE` with psql, if it is installed.
fn drop_pg_schema(pg: &PgSchema) {
    let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", pg.schema);
    let _ = std::process::Command::new("psql")
        .args([
            "-q",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &pg.base_url,
            "-c",
            &sql,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The `[sip]` table of every test configuration: one loopback listener per transport, on
/// ports the OS picks.
const SIP_SECTION: &str = "\n\
     [sip]\n\
     udp = [\"127.0.0.1:0\"]\n\
     tcp = [\"127.0.0.1:0\"]\n\
     tls = [\"127.0.0.1:0\"]\n";

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
