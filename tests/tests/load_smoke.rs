//! Load smoke runs of `palaver-conformance load` against the real server, bounded in count and
//! time; they assert that every session got in and every post was delivered, never how fast.
//!
//! - idle: 20 users from a credentials file connect (STARTTLS, SASL, bind), join `lobby`,
//!   hold one second and ping the server; the report counts them all and gives the server's
//!   RSS.
//! - chat: 40 users (`chat1`…`chat40`, a TOML scenario plus overriding flags) spread over 4
//!   rooms the run creates, post 5 messages/s each for 2 s; every post must reach the 9 other
//!   occupants of its room, and the JSON report must carry the latency histogram.
//!
//! - sip: 20 users (`sipload1`…`sipload20`) register over UDP (digest), create and join 2
//!   pager rooms with `#create`/`#join`, post 5 MESSAGEs/s each for 2 s; every post must reach
//!   the 9 other occupants and be answered 200.
//!
//! The tool is `palaver-conformance` next to the `palaver` binary under test; like that one it
//! is refused when older than its sources (`cargo build -p palaver-conformance`, or
//! `PALAVER_E2E_ALLOW_STALE=1`).

use anyhow::{ensure, Context as _};
use palaver_e2e::load_tool::{run_load, run_load_xmpp};
use palaver_e2e::{must, ServerOptions, Store, TestServer};

/// Bound of one tool run (the runs themselves take a few seconds).

#[tokio::test]
async fn idle_sessions_connect_join_hold_and_ping() {
    let server = TestServer::start(Store::Sqlite)
        .await
        .expect("server starts");
    must(
        async {
            const USERS: u64 = 20;
            let dir = tempfile::tempdir()?;
            let mut credentials = String::from("# user:password\n");
            for i in 1..=USERS {
                server
                    .add_user(&format!("idle{i}@localhost"), "idle-pw")
                    .await?;
                credentials.push_str(&format!("idle{i}@localhost:idle-pw\n"));
            }
            let creds = dir.path().join("users.txt");
            std::fs::write(&creds, credentials)?;
            let report = run_load_xmpp(
                &server,
                dir.path(),
                &[
                    "--mode",
                    "idle",
                    "--credentials",
                    &creds.display().to_string(),
                    "--room",
                    "lobby",
                    "--hold-secs",
                    "1",
                ],
                0,
            )
            .await?;
            let c = &report["connections"];
            ensure!(c["established"] == USERS, "report: {report}");
            ensure!(c["joined"] == USERS && c["failed"] == 0, "report: {report}");
            ensure!(c["peak_concurrent"] == USERS, "report: {report}");
            ensure!(report["idle"]["pinged"] == USERS, "report: {report}");
            ensure!(report["errors_total"] == 0, "report: {report}");
            if server.pid().is_some() {
                ensure!(
                    report["target"]["rss_peak_kib"]
                        .as_u64()
                        .is_some_and(|v| v > 0),
                    "no server RSS in {report}"
                );
            }
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn chat_run_delivers_every_post_and_measures_latency() {
    let server = TestServer::start(Store::Sqlite)
        .await
        .expect("server starts");
    must(
        async {
            const USERS: u64 = 40;
            const ROOMS: u64 = 4;
            for i in 1..=USERS {
                server
                    .add_user(&format!("chat{i}@localhost"), "chat-pw")
                    .await?;
            }
            let dir = tempfile::tempdir()?;
            let scenario = dir.path().join("chat.toml");
            std::fs::write(
                &scenario,
                format!(
                    "mode = 'chat'\nuser_prefix = 'chat'\npassword = 'chat-pw'\n\
                     count = {USERS}\nrooms = {ROOMS}\nroom_prefix = 'smoke'\n\
                     rate = 5\nduration = 2\ndrain = 10\nsize = 120\nramp = 0\n"
                ),
            )?;
            // --size overrides the scenario's 120.
            let report = run_load_xmpp(
                &server,
                dir.path(),
                &[
                    "--scenario",
                    &scenario.display().to_string(),
                    "--size",
                    "200",
                ],
                0,
            )
            .await?;
            let c = &report["connections"];
            ensure!(c["established"] == USERS, "report: {report}");
            ensure!(c["joined"] == USERS && c["failed"] == 0, "report: {report}");
            let m = &report["messages"];
            let sent = m["sent"].as_u64().context("messages.sent")?;
            let occupants = USERS / ROOMS;
            ensure!(sent > 0, "nothing sent: {report}");
            ensure!(
                m["expected_deliveries"] == sent * (occupants - 1),
                "expected = sent × (occupants − 1): {report}"
            );
            ensure!(
                m["deliveries"] == m["expected_deliveries"] && m["missing"] == 0,
                "deliveries: {report}"
            );
            ensure!(m["echoes"] == sent, "every post reflected: {report}");
            let latency = &report["latency_ms"];
            ensure!(latency["count"] == m["deliveries"], "histogram: {report}");
            for key in ["p50", "p90", "p99", "p99_9", "max"] {
                ensure!(
                    latency[key].as_f64().is_some(),
                    "latency_ms.{key}: {report}"
                );
            }
            ensure!(latency["max"].as_f64() > Some(0.0), "latency: {report}");
            ensure!(report["errors_total"] == 0, "errors: {report}");
            ensure!(report["config"]["size"] == 200, "flag override: {report}");
            ensure!(report["config"]["rate"] == 5.0, "scenario rate: {report}");
            ensure!(report["config"]["rooms"][0] == "smoke1@conference.localhost");
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn sip_chat_run_registers_joins_and_delivers_every_post() {
    // All users come from 127.0.0.1: lift the per-address SIP rate limit.
    let opts = ServerOptions {
        sip_extra: "rate_per_sec = 100000\nrate_burst = 100000\n".into(),
        ..Default::default()
    };
    let server = TestServer::start_with(Store::Sqlite, opts)
        .await
        .expect("server starts");
    must(
        async {
            const USERS: u64 = 20;
            const ROOMS: u64 = 2;
            for i in 1..=USERS {
                server
                    .add_user(&format!("sipload{i}@localhost"), "sip-pw")
                    .await?;
            }
            let dir = tempfile::tempdir()?;
            let addr = server.sip_udp().to_string();
            let report = run_load(
                &server,
                dir.path(),
                &[
                    "--protocol",
                    "sip",
                    "--sip-transport",
                    "udp",
                    "--server",
                    &addr,
                    "--user-prefix",
                    "sipload",
                    "--password",
                    "sip-pw",
                    "--count",
                    &USERS.to_string(),
                    "--rooms",
                    &ROOMS.to_string(),
                    "--room-prefix",
                    "sipsmoke",
                    "--rate",
                    "5",
                    "--duration",
                    "2",
                    "--drain",
                    "10",
                    "--ramp",
                    "0",
                ],
                0,
            )
            .await?;
            let c = &report["connections"];
            ensure!(c["established"] == USERS, "all registered: {report}");
            ensure!(c["joined"] == USERS && c["failed"] == 0, "report: {report}");
            let m = &report["messages"];
            let sent = m["sent"].as_u64().context("messages.sent")?;
            ensure!(sent > 0, "nothing sent: {report}");
            ensure!(
                m["expected_deliveries"] == sent * (USERS / ROOMS - 1),
                "expected = sent × (occupants − 1): {report}"
            );
            ensure!(
                m["deliveries"] == m["expected_deliveries"] && m["missing"] == 0,
                "deliveries: {report}"
            );
            ensure!(m["echoes"] == sent, "every post answered 200: {report}");
            ensure!(
                report["latency_ms"]["count"] == m["deliveries"],
                "histogram: {report}"
            );
            ensure!(report["errors_total"] == 0, "errors: {report}");
            ensure!(report["config"]["protocol"] == "sip", "config: {report}");
            Ok(())
        }
        .await,
    );
}
