//! Running the real third-party client: Python scripts in `tests/clients/` that drive
//! slixmpp (Debian's `python3-slixmpp`, so always `/usr/bin/python3`, never a python3 that
//! happens to be first on PATH; `$PALAVER_PYTHON` overrides). A script prints one JSON object
//! per line (`{"event": NAME, …}`) for what its users saw and exits non-zero on failure; the
//! Rust test reads the events as they come (to act between steps, e.g. restart the server)
//! and asserts on them. Every run has a hard time limit after which the script is killed.
//! [`muc_peer`] starts the interactive room occupant `muc_peer.py` of the cross-protocol tests.

use crate::server::TestServer;
use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Hard limit for one script run.
pub const PYTHON_TIMEOUT: Duration = Duration::from_secs(120);

/// The interpreter that has Debian's python3-slixmpp.
pub fn python() -> PathBuf {
    std::env::var_os("PALAVER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/python3"))
}

/// The interpreter with the PyPI packages scripts/test installs (moto): `python3` on PATH.
pub fn pip_python() -> PathBuf {
    std::env::var_os("PALAVER_PIP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// `tests/clients/`.
pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Fails with a clear message unless slixmpp imports under [`python`]; returns its version.
pub async fn require_slixmpp() -> Result<String> {
    let py = python();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(&py)
            .args(["-c", "import slixmpp; print(slixmpp.__version__)"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .map_err(|_| anyhow!("{} -c 'import slixmpp' timed out", py.display()))?
    .with_context(|| {
        format!(
            "running {} (install python3 / python3-slixmpp)",
            py.display()
        )
    })?;
    if !out.status.success() {
        bail!(
            "slixmpp is not importable with {}: install the Debian package python3-slixmpp \
             (scripts/test does it when run as root)\n{}",
            py.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

enum Line {
    Event(Value),
    Other(String),
}

/// A running client script.
pub struct PyClient {
    name: String,
    child: Child,
    rx: mpsc::UnboundedReceiver<Line>,
    events: Vec<Value>,
    other: Vec<String>,
    stderr: Arc<Mutex<String>>,
    deadline: Instant,
    /// The script's standard input, for interactive scripts.
    stdin: Option<tokio::process::ChildStdin>,
}

/// A finished client script.
#[derive(Debug)]
pub struct PyRun {
    pub name: String,
    pub status: ExitStatus,
    pub events: Vec<Value>,
    /// Non-JSON stdout lines.
    pub other: Vec<String>,
    pub stderr: String,
}

impl PyClient {
    /// Starts `tests/clients/<script>` with `args` (standard input closed).
    pub async fn spawn(script: &str, args: &[String]) -> Result<PyClient> {
        Self::start(&python(), script, args, false).await
    }

    /// Starts an interactive script: [`PyClient::send`] writes JSON lines to its stdin.
    pub async fn spawn_interactive(script: &str, args: &[String]) -> Result<PyClient> {
        Self::start(&python(), script, args, true).await
    }

    /// Starts an interactive script under [`pip_python`] (for PyPI packages).
    pub async fn spawn_pip_interactive(script: &str, args: &[String]) -> Result<PyClient> {
        Self::start(&pip_python(), script, args, true).await
    }

    /// Writes `command` as one JSON line to the script's standard input.
    pub async fn send(&mut self, command: &Value) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let stdin = self
            .stdin
            .as_mut()
            .context("the script was not started interactive")?;
        let mut line = serde_json::to_vec(command)?;
        line.push(b'\n');
        stdin
            .write_all(&line)
            .await
            .with_context(|| format!("writing to {}", self.name))?;
        stdin.flush().await?;
        Ok(())
    }

    /// Closes the script's standard input (interactive scripts then finish).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    async fn start(
        interpreter: &Path,
        script: &str,
        args: &[String],
        interactive: bool,
    ) -> Result<PyClient> {
        let path = clients_dir().join(script);
        if !path.is_file() {
            bail!("client script {} is missing", path.display());
        }
        let mut child = Command::new(interpreter)
            .arg(&path)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(if interactive {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} {}", interpreter.display(), path.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("script stdout")?;
        let mut stderr_pipe = child.stderr.take().context("script stderr")?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let parsed = if line.trim_start().starts_with('{') {
                    serde_json::from_str::<Value>(&line).ok()
                } else {
                    None
                };
                let item = match parsed {
                    Some(v) => Line::Event(v),
                    None => Line::Other(line),
                };
                if tx.send(item).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = stderr_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Ok(PyClient {
            name: format!("{script} {}", args.first().cloned().unwrap_or_default()),
            child,
            rx,
            events: Vec::new(),
            other: Vec::new(),
            stderr,
            deadline: Instant::now() + PYTHON_TIMEOUT,
            stdin,
        })
    }

    /// The next JSON event, `None` when the script closed its stdout.
    pub async fn next_event(&mut self) -> Result<Option<Value>> {
        loop {
            match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
                Err(_) => {
                    let _ = self.child.start_kill();
                    bail!(
                        "{} exceeded its {PYTHON_TIMEOUT:?} limit and was killed\n{}",
                        self.name,
                        self.describe()
                    );
                }
                Ok(None) => return Ok(None),
                Ok(Some(Line::Other(l))) => self.other.push(l),
                Ok(Some(Line::Event(v))) => {
                    self.events.push(v.clone());
                    return Ok(Some(v));
                }
            }
        }
    }

    /// Reads events until one named `name` (returned); fails if the script ends first or
    /// reports a failure.
    pub async fn wait_event(&mut self, name: &str) -> Result<Value> {
        loop {
            match self.next_event().await? {
                Some(v) if v["event"] == name => return Ok(v),
                Some(v) if v["event"] == "fail" => bail!(
                    "{} failed before `{name}`: {v}\n{}",
                    self.name,
                    self.describe()
                ),
                Some(_) => {}
                None => bail!(
                    "{} ended before printing `{name}`\n{}",
                    self.name,
                    self.describe()
                ),
            }
        }
    }

    /// Reads events until one named `name` for which `pred` holds (returned), skipping the
    /// others; fails as [`PyClient::wait_event`] does.
    pub async fn wait_event_where(
        &mut self,
        name: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        loop {
            let event = self.wait_event(name).await?;
            if pred(&event) {
                return Ok(event);
            }
        }
    }

    /// Reads the remaining events and waits for the script to exit.
    pub async fn finish(mut self) -> Result<PyRun> {
        self.stdin = None;
        while self.next_event().await?.is_some() {}
        let status = match tokio::time::timeout_at(self.deadline, self.child.wait()).await {
            Ok(s) => s.context("waiting for the script")?,
            Err(_) => {
                let _ = self.child.start_kill();
                bail!("{} did not exit in time\n{}", self.name, self.describe());
            }
        };
        // Let the stderr reader catch up with the last bytes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        Ok(PyRun {
            name: self.name,
            status,
            events: self.events,
            other: self.other,
            stderr,
        })
    }

    fn describe(&self) -> String {
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        describe(&self.events, &self.other, &stderr)
    }
}

/// A slixmpp occupant (`tests/clients/muc_peer.py`, interactive) of `room` (its local part on
/// the MUC domain) as `user` with nick `user`: logged in to `server` over STARTTLS with the
/// password [`crate::password_of`], and seen to have joined.
pub async fn muc_peer(server: &TestServer, user: &str, room: &str) -> Result<PyClient> {
    let addr = server.starttls_addr();
    let mut peer = PyClient::spawn_interactive(
        "muc_peer.py",
        &[
            "--host".into(),
            addr.ip().to_string(),
            "--port".into(),
            addr.port().to_string(),
            "--ca".into(),
            server.ca_path().display().to_string(),
            "--user".into(),
            user.into(),
            "--password".into(),
            crate::password_of(user),
            "--room".into(),
            room.into(),
            "--nick".into(),
            user.into(),
        ],
    )
    .await?;
    peer.wait_event("joined")
        .await
        .with_context(|| format!("{user} (slixmpp) joining {room}"))?;
    Ok(peer)
}

fn describe(events: &[Value], other: &[String], stderr: &str) -> String {
    let events: Vec<String> = events
        .iter()
        .map(|e| crate::xml::cut(&e.to_string(), 400))
        .collect();
    let stderr_tail: Vec<&str> = stderr.lines().rev().take(80).collect();
    let stderr_tail: Vec<&str> = stderr_tail.into_iter().rev().collect();
    format!(
        "--- client events ---\n{}\n--- other client stdout ---\n{}\n--- client stderr (tail) ---\n{}",
        events.join("\n"),
        other.iter().rev().take(20).rev().cloned().collect::<Vec<_>>().join("\n"),
        stderr_tail.join("\n")
    )
}

impl PyRun {
    /// All events named `name`.
    pub fn all(&self, name: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == name).collect()
    }

    /// The first event named `name`, or an error showing the run.
    pub fn event(&self, name: &str) -> Result<&Value> {
        self.events
            .iter()
            .find(|e| e["event"] == name)
            .ok_or_else(|| {
                anyhow!(
                    "{} printed no `{name}` event\n{}",
                    self.name,
                    self.describe()
                )
            })
    }

    /// Fails unless the script exited 0 and printed `done`.
    pub fn ok(&self) -> Result<()> {
        if !self.status.success() || self.all("done").is_empty() {
            bail!(
                "{} failed ({})\n{}",
                self.name,
                self.status,
                self.describe()
            );
        }
        Ok(())
    }

    /// Events, other output and stderr, for failure messages.
    pub fn describe(&self) -> String {
        describe(&self.events, &self.other, &self.stderr)
    }
}

/// Runs tests/clients/upload.py (slixmpp's XEP-0363 plugin) as `user` of `server` for `file`
/// (`slot_only`: only ask for a slot of that size) and returns its events.
pub async fn upload_py(
    server: &TestServer,
    user: &str,
    file: &std::path::Path,
    slot_only: Option<u64>,
) -> Result<Vec<Value>> {
    let mut args = vec![
        "--port".to_string(),
        server.starttls_addr().port().to_string(),
        "--ca".into(),
        server.ca_path().display().to_string(),
        "--user".into(),
        user.into(),
        "--password".into(),
        crate::password_of(user),
        "--file".into(),
        file.display().to_string(),
    ];
    if let Some(size) = slot_only {
        args.extend(["--slot-only".to_string(), size.to_string()]);
    }
    let run = PyClient::spawn("upload.py", &args).await?.finish().await?;
    run.ok()?;
    Ok(run.events.clone())
}
