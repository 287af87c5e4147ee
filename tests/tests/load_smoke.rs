//! Load smoke run: `palaver-conformance load` connects 50 clients one after another (STARTTLS,
//! PLAIN, bind, join lobby), holds them, and reports timing and the server's memory as JSON.
//! Bounded in count and time; it asserts that every client got in, never how fast.

use palaver_e2e::server::palaver_bin;
use palaver_e2e::{must, Store, TestServer};
use std::time::Duration;

const CLIENTS: u32 = 50;

#[tokio::test]
async fn fifty_clients_connect_join_and_idle() {
    let server = TestServer::start(Store::Sqlite)
        .await
        .expect("server starts");
    must(
        async {
            for i in 1..=CLIENTS {
                server
                    .add_user(&format!("load{i}@localhost"), "load-pw")
                    .await?;
            }
            let tool = palaver_bin()?.with_file_name("palaver-conformance");
            anyhow::ensure!(
                tool.is_file(),
                "missing {} (cargo build --workspace)",
                tool.display()
            );
            let mut cmd = tokio::process::Command::new(&tool);
            cmd.arg("load")
                .args(["--server", &server.starttls_addr().to_string()])
                .args(["--ca", &server.ca_path().display().to_string()])
                .args(["--user-prefix", "load", "--password", "load-pw"])
                .args([
                    "--count",
                    &CLIENTS.to_string(),
                    "--hold-secs",
                    "1",
                    "--json",
                ])
                .kill_on_drop(true);
            if let Some(pid) = server.pid() {
                cmd.args(["--pid", &pid.to_string()]);
            }
            let out = tokio::time::timeout(Duration::from_secs(120), cmd.output()).await??;
            let stdout = String::from_utf8_lossy(&out.stdout);
            anyhow::ensure!(
                out.status.success(),
                "load failed: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value = serde_json::from_str(stdout.trim())?;
            println!("load report: {report}");
            anyhow::ensure!(report["clients"] == CLIENTS, "report: {report}");
            anyhow::ensure!(
                report["rss_after_kib"].as_u64().is_some(),
                "no RSS in {report}"
            );
            Ok(())
        }
        .await,
    );
}
