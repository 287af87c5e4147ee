//! Runs `palaver-conformance xmpp` (the XMPP conformance suite, issue 7) against the real
//! server and requires every case to PASS or be N-A, and the JSON report to list them all.
//!
//! The tool is `palaver-conformance` next to the `palaver` binary under test; like that one it
//! is refused when older than its sources (`cargo build -p palaver-conformance`, or
//! `PALAVER_E2E_ALLOW_STALE=1`).

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::{must, password_of, ServerOptions, Store, TestServer, DOMAIN, MUC_DOMAIN};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Bound of the whole suite run.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// Cases excluded because palaver does not conform yet (each with the bug it shows).
const SKIP: &[&str] = &[];

#[tokio::test]
async fn every_xmpp_case_passes_or_is_not_applicable() {
    let server = TestServer::start_with_users(
        Store::Sqlite,
        ServerOptions::default(),
        &["alice", "bob", "carol"],
    )
    .await;
    must(
        async {
            let dir = tempfile::tempdir()?;
            let json = dir.path().join("report.json");
            let listed = list_ids().await?;
            ensure!(listed.len() >= 25, "only {} cases listed", listed.len());
            let mut cmd = tokio::process::Command::new(tool()?);
            cmd.arg("xmpp")
                .args(["--server", &server.starttls_addr().to_string()])
                .args(["--domain", DOMAIN, "--muc", MUC_DOMAIN])
                .args(["--tls-ca", &server.ca_path().display().to_string()])
                .args(["--json", &json.display().to_string(), "-v"])
                .kill_on_drop(true);
            for user in ["alice", "bob", "carol"] {
                cmd.args(["--user", &format!("{user}@{DOMAIN}:{}", password_of(user))]);
            }
            for skip in SKIP {
                cmd.args(["--skip", skip]);
            }
            let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
                .await
                .context("the suite did not finish in time")??;
            let stdout = String::from_utf8_lossy(&out.stdout);
            println!("{stdout}");
            ensure!(
                out.status.success(),
                "suite failed: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let report: Value = serde_json::from_str(&std::fs::read_to_string(&json)?)
                .context("parsing the JSON report")?;
            let cases = report["cases"].as_array().context("no cases array")?;
            let ran: Vec<&str> = cases.iter().filter_map(|c| c["id"].as_str()).collect();
            for id in &listed {
                ensure!(
                    ran.contains(&id.as_str()) || SKIP.contains(&id.as_str()),
                    "{id} missing from the report"
                );
            }
            for c in cases {
                ensure!(
                    c["result"] == "PASS" || c["result"] == "N-A",
                    "case not passing: {c}"
                );
            }
            ensure!(report["failed"] == 0, "report: {report}");
            Ok(())
        }
        .await,
    );
}

/// The XMPP case ids `palaver-conformance list` prints (the `xccos.*` cases are another
/// suite, see conformance_xccos.rs).
async fn list_ids() -> Result<Vec<String>> {
    let out = tokio::process::Command::new(tool()?)
        .arg("list")
        .output()
        .await?;
    ensure!(out.status.success(), "list failed: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|id| !id.starts_with("xccos."))
        .map(str::to_string)
        .collect())
}

/// The `palaver-conformance` binary (see `palaver_e2e::server::conformance_bin`).
fn tool() -> Result<PathBuf> {
    palaver_e2e::server::conformance_bin()
}
