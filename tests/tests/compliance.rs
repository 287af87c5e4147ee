//! The compliance archive with the real server: with `[compliance] enabled`, an XMPP client
//! joins a room and posts; `palaver compliance export --format jsonl` shows the join and the
//! message, and `palaver compliance verify` passes. A file uploaded (XEP-0363 slot, curl PUT)
//! and downloaded shows as `file_upload` and `file_download`.

use palaver_e2e::curl::curl;
use palaver_e2e::python::{require_slixmpp, upload_py};
use palaver_e2e::{room_jid, ServerOptions, Store, TestServer};
use serde_json::Value;
use std::time::Duration;

/// The archive as JSON lines, once one of them satisfies `done` (the drainer runs every
/// 200 ms; the CLI also drains the outbox before exporting).
async fn export_until(
    server: &TestServer,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let mut lines = Vec::new();
    for _ in 0..50 {
        let out = server
            .cli(&["compliance", "export", "--format", "jsonl"])
            .await?;
        anyhow::ensure!(out.success(), "export failed: {}", out.stderr);
        lines = out
            .stdout
            .lines()
            .map(serde_json::from_str::<Value>)
            .collect::<Result<Vec<_>, _>>()?;
        if lines.iter().any(&done) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(lines)
}

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

    let lines = export_until(&server, |l| l["kind"] == "message").await?;
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

    // On a terminal (script(1) gives it one) the export draws a progress bar on stderr.
    let command = format!(
        "{} --config {} compliance export --format jsonl >/dev/null",
        palaver_e2e::server::palaver_bin()?.display(),
        server.config_path().display()
    );
    let tty = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .await?;
    let shown = String::from_utf8_lossy(&tty.stdout);
    anyhow::ensure!(tty.status.success(), "export on a terminal: {shown}");
    let total = lines.len();
    assert!(
        shown.contains(&format!("{total}/{total} events")) && shown.contains("exported"),
        "no progress bar: {shown:?}"
    );

    let csv = server
        .cli(&["compliance", "export", "--format", "csv", "--room", "audit"])
        .await?;
    anyhow::ensure!(csv.success(), "csv export failed: {}", csv.stderr);
    assert!(csv.stdout.starts_with("seq,at,room,actor"));
    Ok(())
}

#[tokio::test]
async fn file_uploads_and_downloads_are_archived() -> anyhow::Result<()> {
    require_slixmpp().await?;
    let opts = ServerOptions {
        https: true,
        extra_toml: "[compliance]\nenabled = true\n".to_string(),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with_users(Store::Sqlite, opts, &["alice"]).await;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("minutes.txt");
    std::fs::write(&file, b"minutes of the meeting")?;
    let events = upload_py(&server, "alice", &file, Some(22)).await?;
    let slot = events
        .iter()
        .find(|e| e["event"] == "slot")
        .ok_or_else(|| anyhow::anyhow!("no slot in {events:?}"))?;
    let (put, get) = (
        slot["put"].as_str().unwrap_or_default(),
        slot["get"].as_str().unwrap_or_default(),
    );
    let body = format!("@{}", file.display());
    let ca = server.ca_path();
    let stored = curl(&ca, put, &["-X", "PUT", "--data-binary", &body]).await?;
    anyhow::ensure!(stored.status == 201, "PUT: {}", stored.status);
    anyhow::ensure!(curl(&ca, get, &[]).await?.status == 200, "GET failed");

    let lines = export_until(&server, |l| l["kind"] == "file_download").await?;
    let upload = lines
        .iter()
        .find(|l| l["kind"] == "file_upload")
        .ok_or_else(|| anyhow::anyhow!("no file_upload in {lines:?}"))?;
    assert_eq!(upload["actor"], "alice@localhost");
    assert_eq!(upload["protocol"], "http");
    assert_eq!(upload["detail"]["name"], "minutes.txt");
    assert_eq!(upload["detail"]["size"], 22);
    let download = lines
        .iter()
        .find(|l| l["kind"] == "file_download")
        .ok_or_else(|| anyhow::anyhow!("no file_download in {lines:?}"))?;
    assert_eq!(download["detail"]["id"], upload["detail"]["id"]);
    let verify = server.cli(&["compliance", "verify"]).await?;
    anyhow::ensure!(verify.success(), "verify failed: {}", verify.stderr);
    Ok(())
}

/// Private messages, presence changes and nick changes are archived under their own kinds; a
/// message reflected to its sender is in the archive even when the server is killed (SIGKILL)
/// right after, because its compliance event commits with it.
#[tokio::test]
async fn private_presence_nick_and_kill9() -> anyhow::Result<()> {
    let opts = ServerOptions {
        extra_toml: "[compliance]\nenabled = true\n".to_string(),
        ..ServerOptions::default()
    };
    let mut server = TestServer::start_with_users(Store::Sqlite, opts, &["alice", "bob"]).await;
    let room = room_jid("records");
    let mut alice = palaver_e2e::xmpp_available(&server, "alice").await?;
    alice.join(&room, "alice", None).await?.joined()?;
    let id = alice.new_id();
    alice
        .iq_ok(&format!(
            "<iq type='set' to='{room}' id='{id}'>{}</iq>",
            palaver_e2e::xml::roomconfig_submit(&[])
        ))
        .await?;
    let mut bob = palaver_e2e::xmpp_available(&server, "bob").await?;
    bob.join(&room, "bob", None).await?.joined()?;

    alice
        .send_str(&format!(
            "<message to='{room}/bob' type='chat' id='p1'><body>just between us</body>\
             <x xmlns='http://jabber.org/protocol/muc#user'/></message>"
        ))
        .await?;
    bob.wait_for(Duration::from_secs(10), "the private message", |el| {
        el.name == "message" && palaver_e2e::xml::body(el).as_deref() == Some("just between us")
    })
    .await?;
    alice
        .send_str(&format!(
            "<presence to='{room}/alice'><show>away</show><status>lunch</status></presence>"
        ))
        .await?;
    bob.wait_for(Duration::from_secs(10), "alice away", |el| {
        el.name == "presence" && el.children().any(|c| c.name == "show")
    })
    .await?;
    alice
        .send_str(&format!("<presence to='{room}/alicia'/>"))
        .await?;
    bob.wait_for(Duration::from_secs(10), "alicia", |el| {
        el.name == "presence" && el.attr("from") == Some(&format!("{room}/alicia"))
    })
    .await?;

    for i in 0..20 {
        alice
            .send_str(&format!(
                "<message to='{room}' type='groupchat' id='k{i}'><body>durable {i}</body></message>"
            ))
            .await?;
    }
    // The reflection means committed; kill at once.
    alice.wait_groupchat(&room, "durable 19").await?;
    server.kill().await?;

    // The CLI drains the outbox of the killed server's store before it exports.
    let lines = export_until(&server, |l| l["detail"]["body"] == "durable 19").await?;
    let kinds = |k: &str| lines.iter().filter(|l| l["kind"] == k).collect::<Vec<_>>();
    let private = kinds("private");
    assert_eq!(private.len(), 1, "{lines:?}");
    assert_eq!(private[0]["actor"], "alice@localhost");
    assert_eq!(private[0]["detail"]["to"], "bob@localhost");
    assert_eq!(private[0]["detail"]["body"], "just between us");
    assert!(
        kinds("presence")
            .iter()
            .any(|l| l["actor"] == "alice@localhost"),
        "{lines:?}"
    );
    let nick = kinds("nick");
    assert_eq!(nick.len(), 1, "{lines:?}");
    assert_eq!(nick[0]["detail"]["new_nick"], "alicia");
    assert_eq!(
        kinds("join").len(),
        2,
        "only the two entries are joins: {lines:?}"
    );
    for i in 0..20 {
        let body = format!("durable {i}");
        assert_eq!(
            lines
                .iter()
                .filter(|l| l["detail"]["body"] == body.as_str())
                .count(),
            1,
            "{body} archived once: {lines:?}"
        );
    }
    let verify = server.cli(&["compliance", "verify"]).await?;
    anyhow::ensure!(verify.success(), "verify failed: {}", verify.stderr);
    Ok(())
}
