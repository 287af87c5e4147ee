//! History-mode smoke run of `palaver-conformance load` against the real server: a persistent
//! room `hist` (made with `palaver room create`) is filled with 300 posts by a chat-mode run
//! (5 users × 30 posts/s × 2 s), then 5 users join it and query its archive (XEP-0313 MAM) for
//! 2 s, closed loop, alternating the 50 newest messages and 50 from the middle of the archive.
//! The report must show answered queries of both kinds, exactly 50 results per query and no
//! error; it never asserts how fast.
//!
//! The tool is `palaver-conformance` next to the `palaver` binary under test; like that one it
//! is refused when older than its sources (`cargo build -p palaver-conformance`, or
//! `PALAVER_E2E_ALLOW_STALE=1`).

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::{must, Store, TestServer};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Bound of one tool run (the runs themselves take a few seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn history_run_pages_the_archive_of_a_filled_room() {
    let server = TestServer::start(Store::Sqlite)
        .await
        .expect("server starts");
    must(
        async {
            const USERS: u64 = 5;
            for i in 1..=USERS {
                server
                    .add_user(&format!("hist{i}@localhost"), "hist-pw")
                    .await?;
            }
            // Persistent, so that it keeps its archive when the chat run leaves it empty.
            server.cli(&["room", "create", "hist"]).await?.ok()?;
            let dir = tempfile::tempdir()?;
            let users = [
                "--user-prefix",
                "hist",
                "--password",
                "hist-pw",
                "--count",
                "5",
                "--room",
                "hist",
            ];
            let mut fill = users.to_vec();
            fill.extend(["--rate", "30", "--duration", "2", "--ramp", "0"]);
            let report = run_tool(&server, dir.path(), &fill).await?;
            let sent = report["messages"]["sent"]
                .as_u64()
                .context("messages.sent")?;
            ensure!(sent >= 250, "the fill run posted {sent}: {report}");

            let mut query = users.to_vec();
            query.extend(["--mode", "history", "--duration", "2"]);
            let report = run_tool(&server, dir.path(), &query).await?;
            let c = &report["connections"];
            ensure!(c["joined"] == USERS && c["failed"] == 0, "report: {report}");
            let h = &report["history"];
            let queries = h["queries"].as_u64().context("history.queries")?;
            ensure!(queries > 0, "no query answered: {report}");
            ensure!(h["queries_per_s"].as_f64() > Some(0.0), "report: {report}");
            ensure!(h["results_per_query"] == 50.0, "page size: {report}");
            let (latest, middle) = (&h["latest_ms"], &h["middle_ms"]);
            ensure!(latest["count"].as_u64() > Some(0), "latest: {report}");
            ensure!(middle["count"].as_u64() > Some(0), "middle: {report}");
            let kinds =
                latest["count"].as_u64().unwrap_or(0) + middle["count"].as_u64().unwrap_or(0);
            ensure!(
                kinds == queries,
                "both kinds add up to the queries: {report}"
            );
            ensure!(latest["p99"].as_f64() > Some(0.0), "latency: {report}");
            ensure!(h["archive_count"].as_u64() == Some(sent), "count: {report}");
            ensure!(h["middle"].as_str().is_some(), "middle stamp: {report}");
            ensure!(report["errors_total"] == 0, "errors: {report}");
            ensure!(report["errors"]["history_short"] == 0, "report: {report}");
            ensure!(report["config"]["mode"] == "history", "config: {report}");

            // A room that does not exist has no history: the join creates it and is refused.
            let mut none = users[..6].to_vec();
            none.extend([
                "--room",
                "nosuchroom",
                "--mode",
                "history",
                "--duration",
                "1",
            ]);
            let report = run_load(&server, dir.path(), &none, false).await?;
            ensure!(report["connections"]["joined"] == 0, "report: {report}");
            ensure!(report["errors"]["join"] == USERS, "report: {report}");
            Ok(())
        }
        .await,
    );
}

/// Runs `palaver-conformance load` against `server`'s XMPP port with `args` (plus the CA, pid,
/// `--fail-on-error` and a JSON file in `dir`); returns the parsed JSON report.
async fn run_tool(server: &TestServer, dir: &Path, args: &[&str]) -> Result<Value> {
    run_load(server, dir, args, true).await
}

/// Runs the tool; with `clean` the run must succeed under `--fail-on-error`, else it must end
/// with its problems exit status (2).
async fn run_load(server: &TestServer, dir: &Path, args: &[&str], clean: bool) -> Result<Value> {
    let json = dir.join("report.json");
    let _ = std::fs::remove_file(&json);
    let addr = server.starttls_addr().to_string();
    let ca = server.ca_path().display().to_string();
    let mut cmd = tokio::process::Command::new(palaver_e2e::server::conformance_bin()?);
    cmd.arg("load")
        .args(args)
        .args(["--server", &addr, "--ca", &ca])
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
    let expected = if clean { Some(0) } else { Some(2) };
    ensure!(
        out.status.code() == expected,
        "load run ended with {}:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).with_context(|| format!("{}", json.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the JSON report:\n{text}"))
}
