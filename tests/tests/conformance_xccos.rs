//! Runs `palaver-conformance xccos` (the MS-XCCOSIP / Lync group chat cases) against the real
//! server over TCP and over TLS and requires exit 0, a summary line with no failure, and every
//! listed `xccos.*` case in the JSON report as PASS or N-A. A second public room (`annex`) is
//! created first so that `xccos.bjoin.two-rooms` has two rooms to join.
//!
//! The tool is `palaver-conformance` next to the `palaver` binary under test; like that one it
//! is refused when older than its sources (`cargo build -p palaver-conformance`, or
//! `PALAVER_E2E_ALLOW_STALE=1`).

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::{conformance, must, ServerOptions, Store, TestServer, DOMAIN};
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
            let listed = conformance::list_ids(|id| id.starts_with("xccos.")).await?;
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
    let mut cmd = conformance::command("xccos", &["alice", "bob"], SKIP, &json)?;
    cmd.args([
        "--server",
        &addr,
        "--transport",
        transport,
        "--domain",
        DOMAIN,
    ])
    .args(["--chat-uri", &format!("sip:ocschat@{DOMAIN}")])
    .args(["--tls-ca", &server.ca_path().display().to_string()])
    .args(["--room", "lobby"]);
    let what = format!("the suite over {transport}");
    let heading = format!("--- xccos over {transport}\n");
    let stdout = conformance::run(cmd, RUN_TIMEOUT, &what, &heading).await?;
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .context("no summary line")?;
    ensure!(summary.contains(" 0 failed"), "summary: {summary}");
    conformance::check_report(&json, listed, SKIP, &what)?;
    Ok(())
}
