//! Neutrality of the XMPP conformance suite (issue 7): `palaver-conformance xmpp` against real
//! Prosody and ejabberd servers (Debian's packages, each started on a free loopback port with
//! its own configuration by tests/clients/server_peer.py). Every case must PASS,
//! be N-A, or FAIL as one of that server's deviations documented in
//! conformance/KNOWN-DEVIATIONS.md; a listed deviation that no longer fails is reported by the
//! tool (`note:`) and fails the test, so the file stays true.

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::python::PyClient;
use palaver_e2e::{conformance, must, password_of};
use serde_json::Value;
use std::time::Duration;

/// Bound of the whole suite run.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test]
async fn xmpp_cases_against_prosody_fail_only_as_documented() {
    let accounts: Vec<String> = ["alice", "bob", "carol"]
        .iter()
        .map(|u| format!("{u}:{}", password_of(u)))
        .collect();
    must(against("prosody", &accounts).await);
}

#[tokio::test]
async fn xmpp_cases_against_ejabberd_fail_only_as_documented() {
    must(against("ejabberd", &[]).await);
}

/// Starts `implementation` with tests/clients/server_peer.py (and `accounts` to create, as
/// `user:password`), runs the suite against it, stops the server.
async fn against(implementation: &str, accounts: &[String]) -> Result<()> {
    let mut args = vec![implementation.to_string()];
    args.extend(accounts.iter().cloned());
    let mut peer = PyClient::spawn_interactive("server_peer.py", &args).await?;
    let ready = peer.wait_event("ready").await.with_context(|| {
        format!("{implementation} did not start (scripts/test installs it from Debian)")
    })?;
    let result = suite(implementation, &ready).await;
    peer.close_stdin();
    let _ = peer.finish().await;
    result
}

async fn suite(implementation: &str, ready: &Value) -> Result<()> {
    let port = ready["port"].as_u64().context("port")?;
    let ca = ready["ca"].as_str().context("ca")?;
    let users: Vec<&str> = ready["accounts"]
        .as_array()
        .context("accounts")?
        .iter()
        .filter_map(|u| u.as_str())
        .collect();
    let what = format!("the suite against {}", ready["version"]);
    println!("{what}");
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("report.json");
    let listed = conformance::list_ids(conformance::is_xmpp_case).await?;
    let mut cmd = tokio::process::Command::new(palaver_e2e::server::conformance_bin()?);
    cmd.arg("xmpp")
        .args(["--server", &format!("127.0.0.1:{port}")])
        .args(["--domain", "localhost", "--muc", "conference.localhost"])
        .args(["--tls-ca", ca, "--jobs", "4", "-v"])
        .args(["--json", &json.display().to_string()])
        .arg("--known-deviations")
        .arg(conformance::known_deviations_file())
        .args(["--implementation", implementation])
        .kill_on_drop(true);
    for u in &users {
        cmd.args(["--user", u]);
    }
    let out = conformance::run(cmd, RUN_TIMEOUT, &what, "").await?;
    conformance::check_report(&json, &listed, &[], &what)?;
    ensure!(
        !out.lines().any(|l| l.starts_with("note:")),
        "a documented deviation of {implementation} no longer fails: update \
         conformance/KNOWN-DEVIATIONS.md"
    );
    Ok(())
}
