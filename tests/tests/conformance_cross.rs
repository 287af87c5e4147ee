//! Runs `palaver-conformance cross` (the cross-protocol cases: one room, XMPP occupants over
//! STARTTLS and a SIP pager-mode occupant) against the real server with SIP over TCP and over
//! UDP, and requires exit 0, no failure in the JSON report and every listed `cross.*` case
//! in the JSON report as PASS or N-A.
//!
//! The tool is `palaver-conformance` next to the `palaver` binary under test; like that one it
//! is refused when older than its sources (`cargo build -p palaver-conformance`, or
//! `PALAVER_E2E_ALLOW_STALE=1`).

use anyhow::{ensure, Result};
use palaver_e2e::{conformance, must, ServerOptions, Store, TestServer, DOMAIN, MUC_DOMAIN};
use std::net::SocketAddr;
use std::time::Duration;

/// Bound of one suite run.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// Cases excluded because palaver does not conform yet (each with the bug it shows).
const SKIP: &[&str] = &[];

/// The accounts: XMPP owner, SIP occupant, second XMPP occupant.
const USERS: [&str; 3] = ["alice", "bob", "carol"];

#[tokio::test]
async fn every_cross_case_passes_over_tcp_and_udp() {
    let opts = ServerOptions::default();
    let server = TestServer::start_with_users(Store::Sqlite, opts, &USERS).await;
    must(both_transports(&server).await);
}

/// Lists the `cross.*` cases, then runs them with SIP over TCP and over UDP.
async fn both_transports(server: &TestServer) -> Result<()> {
    let listed = conformance::list_ids(|id| id.starts_with("cross.")).await?;
    ensure!(listed.len() >= 10, "{} cross cases listed", listed.len());
    for (transport, sip) in [("tcp", server.sip_tcp()), ("udp", server.sip_udp())] {
        run(server, transport, sip, &listed).await?;
    }
    Ok(())
}

/// One run of the suite with SIP over `transport`; checks exit status, summary and report.
async fn run(
    server: &TestServer,
    transport: &str,
    sip: SocketAddr,
    listed: &[String],
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("report.json");
    let mut cmd = conformance::command("cross", &USERS, SKIP, &json)?;
    cmd.args(["--xmpp-server", &server.starttls_addr().to_string()])
        .args(["--sip-server", &sip.to_string(), "--transport", transport])
        .args(["--domain", DOMAIN, "--muc", MUC_DOMAIN])
        .args(["--tls-ca", &server.ca_path().display().to_string()]);
    let what = format!("the cross suite over {transport}");
    let heading = format!("--- cross over {transport}\n");
    conformance::run(cmd, RUN_TIMEOUT, &what, &heading).await?;
    let report = conformance::check_report(&json, listed, SKIP, &what)?;
    ensure!(report["failed"] == 0, "report of {what}: {report}");
    Ok(())
}
