//! The "real components" scenario: baresip (a SIP softphone no one here wrote) and
//! slixmpp (a real XMPP library) in the same persistent room, in both directions, on SQLite
//! and PostgreSQL and over UDP, TCP and TLS. baresip registers with digest auth, `#join`s the
//! lobby, posts; the slixmpp occupant sees it arrive (presence), receives the post and finds
//! it in MAM; what slixmpp posts reaches baresip as a MESSAGE from the room; `#leave` shows
//! baresip leaving on the XMPP side.

use anyhow::{bail, Context as _, Result};
use palaver_e2e::baresip::{require_baresip, Baresip, BaresipAccount, Transport};
use palaver_e2e::python::{require_slixmpp, PyClient};
use palaver_e2e::{must, Store, TestServer, STEP_TIMEOUT};
use serde_json::{json, Value};

const LOBBY: &str = "sip:lobby@conference.localhost";

/// Reads the peer's events until one named `name` satisfies `pred`.
async fn wait_py(peer: &mut PyClient, name: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
    loop {
        let event = peer.wait_event(name).await?;
        if pred(&event) {
            return Ok(event);
        }
    }
}

async fn scenario(store: Store, transport: Transport) -> Result<()> {
    require_baresip().await?;
    require_slixmpp().await?;
    let server = TestServer::start(store).await?;
    server.add_user("alice@localhost", "alice-pw").await?;
    server.add_user("bob@localhost", "bob-pw").await?;

    let mut bob = PyClient::spawn_interactive(
        "muc_peer.py",
        &[
            "--port".into(),
            server.starttls_addr().port().to_string(),
            "--ca".into(),
            server.ca_path().display().to_string(),
            "--user".into(),
            "bob".into(),
            "--password".into(),
            "bob-pw".into(),
            "--room".into(),
            "lobby".into(),
            "--nick".into(),
            "bob".into(),
        ],
    )
    .await?;
    bob.wait_event("joined").await?;

    let sip_addr = match transport {
        Transport::Udp => server.sip_udp(),
        Transport::Tcp => server.sip_tcp(),
        Transport::Tls => server.sip_tls(),
    };
    let mut account = BaresipAccount::new("alice", "alice-pw", sip_addr, transport);
    if transport == Transport::Tls {
        account.ca_file = Some(server.ca_path());
    }
    let mut phone = Baresip::start(account).await?;
    phone.wait_registered(STEP_TIMEOUT).await?;

    // #join: 200, a welcome naming bob, and bob sees alice arrive.
    let sent = phone.send_message(LOBBY, "#join alice").await?;
    let status = phone.wait_message_response(&sent, STEP_TIMEOUT).await?;
    if status.code != 200 {
        bail!(
            "#join answered {} {}\n{}",
            status.code,
            status.reason,
            phone.log()
        );
    }
    let welcome = phone
        .wait_for_message(
            |m| m.body.contains("You have joined lobby as alice"),
            STEP_TIMEOUT,
        )
        .await?;
    anyhow::ensure!(
        welcome.from.contains("lobby@conference.localhost"),
        "welcome from {}",
        welcome.from
    );
    anyhow::ensure!(
        welcome.body.contains("bob"),
        "welcome does not name bob: {:?}",
        welcome.body
    );
    wait_py(&mut bob, "presence", |e| {
        e["nick"] == "alice" && e["type"] == "available"
    })
    .await?;

    // baresip → room → slixmpp.
    let text = format!("hello from baresip over {transport:?}");
    let sent = phone.send_message(LOBBY, &text).await?;
    let status = phone.wait_message_response(&sent, STEP_TIMEOUT).await?;
    anyhow::ensure!(
        status.code == 200,
        "post answered {} {}",
        status.code,
        status.reason
    );
    wait_py(&mut bob, "groupchat", |e| {
        e["nick"] == "alice" && e["body"] == text.as_str()
    })
    .await?;

    // slixmpp → room → baresip.
    bob.send(&json!({"cmd": "send", "body": "hello from slixmpp"}))
        .await?;
    let got = phone
        .wait_for_body("bob: hello from slixmpp", STEP_TIMEOUT)
        .await
        .context("baresip did not get bob's post")?;
    anyhow::ensure!(
        got.from.contains("lobby@conference.localhost"),
        "post from {}",
        got.from
    );

    // The SIP post is archived like any other.
    bob.send(&json!({"cmd": "mam", "max": 10})).await?;
    let archive = bob.wait_event("archive").await?;
    let bodies: Vec<&str> = archive["bodies"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    anyhow::ensure!(
        bodies.contains(&text.as_str()),
        "MAM lacks the SIP post: {bodies:?}"
    );
    anyhow::ensure!(
        bodies.contains(&"hello from slixmpp"),
        "MAM lacks bob's post: {bodies:?}"
    );

    // #leave: bob sees alice go.
    let sent = phone.send_message(LOBBY, "#leave").await?;
    let status = phone.wait_message_response(&sent, STEP_TIMEOUT).await?;
    anyhow::ensure!(status.code == 200, "#leave answered {}", status.code);
    wait_py(&mut bob, "presence", |e| {
        e["nick"] == "alice" && e["type"] == "unavailable"
    })
    .await?;

    bob.send(&json!({"cmd": "quit"})).await?;
    let run = bob.finish().await?;
    run.ok()?;
    phone.quit(STEP_TIMEOUT).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_and_slixmpp_share_a_room_over_udp_on_sqlite() {
    must(scenario(Store::Sqlite, Transport::Udp).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_and_slixmpp_share_a_room_over_tcp_on_postgres() {
    must(scenario(Store::Postgres, Transport::Tcp).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_and_slixmpp_share_a_room_over_tls_on_sqlite() {
    must(scenario(Store::Sqlite, Transport::Tls).await);
}
