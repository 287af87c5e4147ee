//! Runs `palaver-conformance sip` (SIP pager-mode group chat and RFC 4575 conference events)
//! against the real server over UDP, TCP and TLS and requires exit 0, at least 20 `sip.*`
//! cases in the JSON report, every one PASS or N-A, and every `sip.*` case
//! `palaver-conformance list` prints among them (or in `SKIP`).
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

#[tokio::test]
async fn every_sip_case_passes_over_udp_tcp_and_tls() {
    let server =
        TestServer::start_with_users(Store::Sqlite, ServerOptions::default(), &["alice", "bob"])
            .await;
    must(
        async {
            let listed = conformance::list_ids(|id| id.starts_with("sip.")).await?;
            for (transport, addr) in [
                ("udp", server.sip_udp()),
                ("tcp", server.sip_tcp()),
                ("tls", server.sip_tls()),
            ] {
                run(&server, transport, addr, &listed).await?;
            }
            Ok(())
        }
        .await,
    );
}

/// One run of the suite over `transport`; checks exit status, summary and report.
async fn run(
    server: &TestServer,
    transport: &str,
    addr: SocketAddr,
    listed: &[String],
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("report.json");
    let mut cmd = conformance::command("sip", &["alice", "bob"], SKIP, &json)?;
    cmd.args(["--server", &addr.to_string(), "--transport", transport])
        .args(["--domain", DOMAIN, "--room-domain", MUC_DOMAIN])
        .args(["--tls-ca", &server.ca_path().display().to_string()]);
    let what = format!("the sip suite over {transport}");
    let heading = format!("--- sip over {transport}\n");
    conformance::run(cmd, RUN_TIMEOUT, &what, &heading).await?;
    let report = conformance::check_report(&json, listed, SKIP, &what)?;
    let cases = report["cases"].as_array().map_or(0, Vec::len);
    ensure!(cases >= 20, "{cases} sip cases in the report of {what}");
    Ok(())
}
