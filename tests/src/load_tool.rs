//! Running the load generator (`palaver-conformance load`) against a test server: the tool
//! gets the server's pid, a JSON report file and `--fail-on-error`; the run must end with the
//! exit status the test expects, and its parsed report comes back.

use crate::server::{conformance_bin, TestServer};
use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Longest a load run in a test may take.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `palaver-conformance load ARGS` with the report written into `dir`; fails unless the
/// tool exits with `expected_status` (0: a clean run; 2: a run with problems).
pub async fn run_load(
    server: &TestServer,
    dir: &Path,
    args: &[&str],
    expected_status: i32,
) -> Result<Value> {
    let json = dir.join("report.json");
    let _ = std::fs::remove_file(&json);
    let mut cmd = tokio::process::Command::new(conformance_bin()?);
    cmd.arg("load")
        .args(args)
        .args(["--json", &json.display().to_string()])
        .arg("--fail-on-error")
        .kill_on_drop(true);
    if let Some(pid) = server.pid() {
        cmd.args(["--pid", &pid.to_string()]);
    }
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .context("the load run did not finish in time")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    ensure!(
        out.status.code() == Some(expected_status),
        "load run ended with {} (expected {expected_status}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).with_context(|| format!("{}", json.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the JSON report:\n{text}"))
}

/// [`run_load`] against `server`'s STARTTLS port, trusting its CA.
pub async fn run_load_xmpp(
    server: &TestServer,
    dir: &Path,
    args: &[&str],
    expected_status: i32,
) -> Result<Value> {
    let addr = server.starttls_addr().to_string();
    let ca = server.ca_path().display().to_string();
    let mut all = args.to_vec();
    all.extend(["--server", &addr, "--ca", &ca]);
    run_load(server, dir, &all, expected_status).await
}
