//! Runs `palaver-conformance xccos` (the MS-XCCOSIP / Lync group chat cases) against the real
//! server over TCP and over TLS and requires exit 0, a summary line with no failure, and every
//! listed `xccos.*` case in the JSON report as PASS or N-A. A second public room (`annex`) is
//! created first so that `xccos.bjoin.two-rooms` has two rooms to join.
//!
//! The tool is `palaver-conformance` next to the `palaver` binary under test; like that one it
//! is refused when older than its sources (`cargo build -p palaver-conformance`, or
//! `PALAVER_E2E_ALLOW_STALE=1`).

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::{must, password_of, ServerOptions, Store, TestServer, DOMAIN};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Bound of one suite run.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// Cases excluded because palaver does not conform yet (each with the bug it shows).
const SKIP: &[&str] = &[];

#[tokio::test]
async fn every_xccos_case_passes_over_tcp_and_tls() {
    let server =
        TestServer::start_with_users(Store::Sqlite, ServerOptions::default(), &["alice", "bob"])
            .await;
    must(
        async {
            let made = server.cli(&["room", "create", "annex"]).await?;
            ensure!(made.success(), "room create annex: {}", made.stderr);
            let listed = list_ids().await?;
            ensure!(
                listed.len() >= 18,
                "only {} xccos cases listed",
                listed.len()
            );
            run(&server, "tcp", server.sip_tcp().to_string(), &listed).await?;
            run(&server, "tls", server.sip_tls().to_string(), &listed).await
        }
        .await,
    );
}

/// One run of the suite over `transport`; checks exit status, summary and report.
async fn run(server: &TestServer, transport: &str, addr: String, listed: &[String]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("report.json");
    let mut cmd = tokio::process::Command::new(tool()?);
    cmd.arg("xccos")
        .args([
            "--server",
            &addr,
            "--transport",
            transport,
            "--domain",
            DOMAIN,
        ])
        .args(["--chat-uri", &format!("sip:ocschat@{DOMAIN}")])
        .args(["--tls-ca", &server.ca_path().display().to_string()])
        .args([
            "--room",
            "lobby",
            "--json",
            &json.display().to_string(),
            "-v",
        ])
        .kill_on_drop(true);
    for user in ["alice", "bob"] {
        cmd.args(["--user", &format!("{user}@{DOMAIN}:{}", password_of(user))]);
    }
    for skip in SKIP {
        cmd.args(["--skip", skip]);
    }
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("the {transport} run did not finish in time"))??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("--- xccos over {transport}\n{stdout}");
    ensure!(
        out.status.success(),
        "suite over {transport} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .context("no summary line")?;
    ensure!(summary.contains(" 0 failed"), "summary: {summary}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json)?)
        .context("parsing the JSON report")?;
    let cases = report["cases"].as_array().context("no cases array")?;
    let ran: Vec<&str> = cases.iter().filter_map(|c| c["id"].as_str()).collect();
    for id in listed {
        ensure!(
            ran.contains(&id.as_str()) || SKIP.contains(&id.as_str()),
            "{id} missing from the {transport} report"
        );
    }
    for c in cases {
        ensure!(
            c["result"] == "PASS" || c["result"] == "N-A",
            "case not passing over {transport}: {c}"
        );
    }
    Ok(())
}

/// The `xccos.*` case ids `palaver-conformance list` prints.
async fn list_ids() -> Result<Vec<String>> {
    let out = tokio::process::Command::new(tool()?)
        .arg("list")
        .output()
        .await?;
    ensure!(out.status.success(), "list failed: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|id| id.starts_with("xccos."))
        .map(str::to_string)
        .collect())
}

/// The `palaver-conformance` binary (see `palaver_e2e::server::conformance_bin`).
fn tool() -> Result<PathBuf> {
    palaver_e2e::server::conformance_bin()
}
