//! The real Lync-dialect client: finch (console Pidgin) with the pidgin-sipe plugin, both from
//! Debian, driven in tmux by `tests/clients/finch_sipe.py`, signs in to palaver over SIP/TCP
//! (REGISTER answered with a 407 digest challenge, as sipe needs; in-band provisioning turns
//! its group chat on), joins the lobby it has in its buddy list (XCCOS bjoin + bccontext),
//! and chats with bob on real slixmpp both ways. Fails (never skips) when finch, pidgin-sipe,
//! tmux or gcc are missing; scripts/test installs them.

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::python::{muc_peer, require_slixmpp, PyClient};
use palaver_e2e::{must, password_of, Store, TestServer};
use serde_json::json;

async fn scenario(server: &TestServer) -> Result<()> {
    let mut bob = muc_peer(server, "bob", "lobby").await?;
    bob.send(&json!({"cmd": "send", "body": "before finch came"}))
        .await?;
    bob.wait_event_where("groupchat", |e| e["body"] == "before finch came")
        .await?;

    let mut finch = PyClient::spawn_interactive(
        "finch_sipe.py",
        &[
            "--port".into(),
            server.sip_tcp().port().to_string(),
            "--host".into(),
            server.sip_tcp().ip().to_string(),
            "--password".into(),
            password_of("alice"),
            "--timeout".into(),
            "90".into(),
        ],
    )
    .await?;
    finch
        .wait_event("registered")
        .await
        .context("sipe registers")?;
    let joined = finch
        .wait_event("joined")
        .await
        .context("sipe joins the lobby")?;
    ensure!(
        joined["room"] == "ma-chan://localhost/lobby" && joined["name"] == "Lobby",
        "{joined}"
    );
    finch
        .wait_event_where("history", |e| e["body"] == "before finch came")
        .await
        .context("the lobby's history in finch")?;
    bob.wait_event_where("presence", |e| {
        e["nick"] == "alice" && e["type"] == "available"
    })
    .await
    .context("bob sees finch's alice enter")?;

    finch
        .send(&json!({"cmd": "send", "body": "hello from finch"}))
        .await?;
    bob.wait_event_where("groupchat", |e| {
        e["nick"] == "alice" && e["body"] == "hello from finch"
    })
    .await
    .context("bob gets what alice typed in finch")?;
    bob.send(&json!({"cmd": "send", "body": "ping from bob"}))
        .await?;
    finch
        .wait_event_where("groupchat", |e| e["body"] == "ping from bob")
        .await
        .context("finch shows bob's message")?;
    finch.send(&json!({"cmd": "quit"})).await?;
    finch.finish().await?.ok()?;
    bob.send(&json!({"cmd": "quit"})).await?;
    bob.finish().await?.ok()?;
    Ok(())
}

#[tokio::test]
async fn finch_with_pidgin_sipe_chats_with_slixmpp_in_the_lobby() {
    must(require_slixmpp().await);
    let server = TestServer::start_with_users(
        Store::Sqlite,
        palaver_e2e::ServerOptions::default(),
        &["alice", "bob"],
    )
    .await;
    let result = scenario(&server).await;
    must(result.with_context(|| server.diagnostics()));
}
