//! Runs `palaver-conformance xmpp` (the XMPP conformance suite, issue 7) against the real
//! server, four cases at a time, and requires every case to PASS or be N-A, and the JSON
//! report to list them all.
//!
//! The tool is `palaver-conformance` next to the `palaver` binary under test; like that one it
//! is refused when older than its sources (`cargo build -p palaver-conformance`, or
//! `PALAVER_E2E_ALLOW_STALE=1`).

use anyhow::ensure;
use palaver_e2e::{conformance, must, ServerOptions, Store, TestServer, DOMAIN, MUC_DOMAIN};
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
            let listed = conformance::list_ids(conformance::is_xmpp_case).await?;
            ensure!(listed.len() >= 25, "only {} cases listed", listed.len());
            let mut cmd = conformance::command("xmpp", &["alice", "bob", "carol"], SKIP, &json)?;
            cmd.args(["--server", &server.starttls_addr().to_string()])
                .args(["--domain", DOMAIN, "--muc", MUC_DOMAIN])
                .args(["--tls-ca", &server.ca_path().display().to_string()])
                .args(["--jobs", "4"]);
            conformance::run(cmd, RUN_TIMEOUT, "the suite", "").await?;
            let report = conformance::check_report(&json, &listed, SKIP, "the suite")?;
            ensure!(report["failed"] == 0, "report: {report}");
            Ok(())
        }
        .await,
    );
}
