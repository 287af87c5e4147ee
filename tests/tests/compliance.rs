//! The compliance archive with the real server: with `[compliance] enabled`, an XMPP client
//! joins a room and posts; `palaver compliance export --format jsonl` shows the join and the
//! message, and `palaver compliance verify` passes.

use palaver_e2e::{room_jid, ServerOptions, Store, TestServer};
use std::time::Duration;

#[tokio::test]
async fn join_and_message_are_archived() -> anyhow::Result<()> {
    let opts = ServerOptions {
        extra_toml: "[compliance]\nenabled = true\n".to_string(),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with_users(Store::Sqlite, opts, &["alice"]).await;
    let room = room_jid("audit");
    let mut alice = palaver_e2e::xmpp_available(&server, "alice").await?;
    alice.join(&room, "alice", None).await?.joined()?;
    alice
        .send_str(&format!(
            "<message to='{room}' type='groupchat' id='m1'><body>for the record, a &lt;b&gt;</body></message>"
        ))
        .await?;
    alice.wait_groupchat(&room, "for the record, a <b>").await?;

    // The drainer runs every 200 ms; the CLI also drains the outbox before exporting.
    let mut lines = Vec::new();
    for _ in 0..50 {
        let out = server
            .cli(&["compliance", "export", "--format", "jsonl"])
            .await?;
        anyhow::ensure!(out.success(), "export failed: {}", out.stderr);
        lines = out
            .stdout
            .lines()
            .map(serde_json::from_str::<serde_json::Value>)
            .collect::<Result<Vec<_>, _>>()?;
        if lines.iter().any(|l| l["kind"] == "message") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let join = lines
        .iter()
        .find(|l| l["kind"] == "join" && l["room"] == "audit")
        .ok_or_else(|| anyhow::anyhow!("no join in {lines:?}"))?;
    assert_eq!(join["actor"], "alice@localhost");
    assert_eq!(join["protocol"], "xmpp");
    let message = lines
        .iter()
        .find(|l| l["kind"] == "message")
        .ok_or_else(|| anyhow::anyhow!("no message in {lines:?}"))?;
    assert_eq!(message["detail"]["body"], "for the record, a <b>");
    assert_eq!(message["actor"], "alice@localhost");
    assert!(join["seq"].as_i64() < message["seq"].as_i64());

    let verify = server.cli(&["compliance", "verify"]).await?;
    anyhow::ensure!(verify.success(), "verify failed: {}", verify.stderr);
    assert!(verify.stdout.starts_with("ok: "), "{}", verify.stdout);

    let csv = server
        .cli(&["compliance", "export", "--format", "csv", "--room", "audit"])
        .await?;
    anyhow::ensure!(csv.success(), "csv export failed: {}", csv.stderr);
    assert!(csv.stdout.starts_with("seq,at,room,actor"));
    Ok(())
}
