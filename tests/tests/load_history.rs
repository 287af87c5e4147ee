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

use anyhow::{ensure, Context as _};
use palaver_e2e::load_tool::run_load_xmpp;
use palaver_e2e::{must, Store, TestServer};

/// Bound of one tool run (the runs themselves take a few seconds).

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
            let report = run_load_xmpp(&server, dir.path(), &fill, 0).await?;
            let sent = report["messages"]["sent"]
                .as_u64()
                .context("messages.sent")?;
            ensure!(sent >= 250, "the fill run posted {sent}: {report}");

            let mut query = users.to_vec();
            query.extend(["--mode", "history", "--duration", "2"]);
            let report = run_load_xmpp(&server, dir.path(), &query, 0).await?;
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
            let report = run_load_xmpp(&server, dir.path(), &none, 2).await?;
            ensure!(report["connections"]["joined"] == 0, "report: {report}");
            ensure!(report["errors"]["join"] == USERS, "report: {report}");
            Ok(())
        }
        .await,
    );
}
