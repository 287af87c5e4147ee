//! Running the `palaver-conformance` tool ([`crate::server::conformance_bin`]) against a test
//! server and checking what it reports: the case ids it lists, a run's exit status and output,
//! and its JSON report.

use crate::{password_of, DOMAIN};
use anyhow::{ensure, Context as _, Result};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::process::Command;

/// Whether `id` is one of the `xmpp` suite's cases (the others are `xccos.*`, `sip.*` and
/// `cross.*`).
pub fn is_xmpp_case(id: &str) -> bool {
    !["xccos.", "sip.", "cross."]
        .iter()
        .any(|p| id.starts_with(p))
}

/// The case ids `palaver-conformance list` prints that `keep` accepts.
pub async fn list_ids(keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let out = Command::new(crate::server::conformance_bin()?)
        .arg("list")
        .output()
        .await?;
    ensure!(out.status.success(), "list failed: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|id| keep(id))
        .map(str::to_string)
        .collect())
}

/// `palaver-conformance <subcommand>` with `--user user@DOMAIN:password` for each of `users`
/// (in order), `--skip` for each of `skip`, the JSON report written to `json` and `-v`; killed
/// when dropped. The caller adds the subcommand's server options.
pub fn command(subcommand: &str, users: &[&str], skip: &[&str], json: &Path) -> Result<Command> {
    let mut cmd = Command::new(crate::server::conformance_bin()?);
    cmd.arg(subcommand)
        .args(["--json", &json.display().to_string(), "-v"])
        .kill_on_drop(true);
    for user in users {
        cmd.args(["--user", &format!("{user}@{DOMAIN}:{}", password_of(user))]);
    }
    for id in skip {
        cmd.args(["--skip", id]);
    }
    Ok(cmd)
}

/// Runs `cmd` bounded by `timeout`, prints its output under `heading` and requires exit 0;
/// returns the output. `what` names the run in errors.
pub async fn run(mut cmd: Command, timeout: Duration, what: &str, heading: &str) -> Result<String> {
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .with_context(|| format!("{what} did not finish in time"))??;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{heading}{stdout}");
    ensure!(
        out.status.success(),
        "{what} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// Reads the JSON report at `json` and requires every `listed` id in it (or in `skip`) and
/// every case in it PASS, N-A or a FAIL the run was told is a known deviation
/// (`--known-deviations`; palaver's own runs never pass that option); returns the report.
/// `what` names the run in errors.
pub fn check_report(json: &Path, listed: &[String], skip: &[&str], what: &str) -> Result<Value> {
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(json)?).context("parsing the JSON report")?;
    let cases = report["cases"].as_array().context("no cases array")?;
    let ran: Vec<&str> = cases.iter().filter_map(|c| c["id"].as_str()).collect();
    for id in listed {
        ensure!(
            ran.contains(&id.as_str()) || skip.contains(&id.as_str()),
            "{id} missing from the report of {what}"
        );
    }
    for c in cases {
        let known = c["result"] == "FAIL" && c["known"].is_string();
        ensure!(
            c["result"] == "PASS" || c["result"] == "N-A" || known,
            "case not passing in {what}: {c}"
        );
    }
    Ok(report)
}

/// The repository's `conformance/KNOWN-DEVIATIONS.md`.
pub fn known_deviations_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("conformance")
        .join("KNOWN-DEVIATIONS.md")
}
