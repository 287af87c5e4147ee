//! What crossing the pool costs: the same chat load from `palaver-conformance load` against one
//! standalone node on PostgreSQL and against a three-node pool on one shared PostgreSQL schema
//! with the users spread over the nodes in turn (`--server n1,n2,n3`), so every room has
//! occupants on all three nodes and two thirds of the posts and deliveries cross 8011 twice
//! (sender's node → home → receiver's node).
//!
//! Asserts what a user sees — every post reaches every other occupant exactly once and is
//! reflected to its sender — and prints the latency of both runs (p50/p99 and the difference).
//! Sizes: `PALAVER_POOL_LATENCY_USERS` (default 60, a multiple of 30),
//! `PALAVER_POOL_LATENCY_SECS` (default 3); the rate is 2 posts/s per user.

use anyhow::{ensure, Context as _};
use palaver_e2e::load_tool::run_load;
use palaver_e2e::pool::{self, PoolCa, PoolSpec};
use palaver_e2e::{must, Store, TestServer};
use serde_json::Value;
use std::path::Path;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs the chat load against `servers` (host:port list), trusting `ca`, and checks that
/// every post was delivered once to everyone else in its room.
async fn chat(
    pid_of: &TestServer,
    dir: &Path,
    servers: &str,
    ca: &Path,
    users: u64,
    secs: u64,
    rooms_prefix: &str,
) -> anyhow::Result<Value> {
    let rooms = users / 10;
    let report = run_load(
        pid_of,
        dir,
        &[
            "--server",
            servers,
            "--ca",
            &ca.display().to_string(),
            "--user-prefix",
            "lat",
            "--password",
            "lat-pw",
            "--count",
            &users.to_string(),
            "--rooms",
            &rooms.to_string(),
            "--room-prefix",
            rooms_prefix,
            "--rate",
            "2",
            "--duration",
            &secs.to_string(),
            "--drain",
            "10",
            "--ramp",
            "0",
        ],
        0,
    )
    .await?;
    let c = &report["connections"];
    ensure!(
        c["joined"] == users && c["failed"] == 0,
        "every user in: {report}"
    );
    let m = &report["messages"];
    let sent = m["sent"].as_u64().context("messages.sent")?;
    ensure!(sent > 0, "nothing sent: {report}");
    ensure!(
        m["expected_deliveries"] == sent * 9,
        "expected = sent × 9: {report}"
    );
    ensure!(
        m["deliveries"] == m["expected_deliveries"] && m["missing"] == 0,
        "every post delivered: {report}"
    );
    ensure!(m["duplicates"] == 0, "nothing twice: {report}");
    ensure!(m["echoes"] == sent, "every post reflected: {report}");
    ensure!(report["errors_total"] == 0, "errors: {report}");
    Ok(report)
}

fn quantiles(report: &Value) -> (f64, f64) {
    let l = &report["latency_ms"];
    (
        l["p50"].as_f64().unwrap_or(f64::NAN),
        l["p99"].as_f64().unwrap_or(f64::NAN),
    )
}

#[tokio::test]
async fn deliveries_across_three_nodes_arrive_once_and_the_added_latency_is_printed() {
    let users = env_or("PALAVER_POOL_LATENCY_USERS", 60).max(30) / 30 * 30;
    let secs = env_or("PALAVER_POOL_LATENCY_SECS", 3).max(1);
    must(
        async {
            let dir = tempfile::tempdir()?;

            // One node alone.
            let single = TestServer::start(Store::Postgres).await?;
            for i in 1..=users {
                single.add_user(&format!("lat{i}@localhost"), "lat-pw").await?;
            }
            let alone = chat(
                &single,
                dir.path(),
                &single.starttls_addr().to_string(),
                &single.ca_path(),
                users,
                secs,
                "alone",
            )
            .await?;
            drop(single);

            // Three nodes, users spread over them.
            let ca = PoolCa::new()?;
            let spec = PoolSpec::three_active()?;
            let ids = ["n1", "n2", "n3"];
            let pool = pool::start_shared_pg_pool(&spec, &ca, &ids).await?;
            pool.wait_all_up(std::time::Duration::from_secs(20)).await?;
            let first = pool.node("n1")?;
            for i in 1..=users {
                first.add_user(&format!("lat{i}@localhost"), "lat-pw").await?;
            }
            let mut servers = Vec::new();
            let mut cas = String::new();
            for id in ids {
                let node = pool.node(id)?;
                servers.push(node.starttls_addr().to_string());
                cas.push_str(&std::fs::read_to_string(node.ca_path())?);
            }
            let bundle = dir.path().join("pool-cas.pem");
            std::fs::write(&bundle, cas)?;
            let spread = chat(
                first,
                dir.path(),
                &servers.join(","),
                &bundle,
                users,
                secs,
                "spread",
            )
            .await?;
            let status = pool::status(first).await?;
            for id in ids {
                if let Some(m) = pool::member(&status, id) {
                    println!("{id}: {} users, home of {} rooms", m["users"], m["rooms"]);
                }
            }

            let (a50, a99) = quantiles(&alone);
            let (s50, s99) = quantiles(&spread);
            println!(
                "pool latency: {users} users, {secs} s at 2 posts/s each — one node: p50 {a50:.2} ms, \
                 p99 {a99:.2} ms; three nodes: p50 {s50:.2} ms, p99 {s99:.2} ms; added: p50 \
                 {:+.2} ms, p99 {:+.2} ms",
                s50 - a50,
                s99 - a99
            );
            Ok(())
        }
        .await,
    );
}
