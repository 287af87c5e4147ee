//! Real clients on three nodes of a pool: slixmpp occupants (`tests/clients/muc_peer.py`) log
//! in to n2 and to n3 of a three-node pool on one shared PostgreSQL schema and baresip (a SIP
//! softphone) registers with n1; all three are in `lobby` (homed on whichever node the hash
//! picks), see each other arrive, exchange messages every way, and the slixmpp occupants read
//! everything back with MAM through their own nodes.

use anyhow::{Context as _, Result};
use palaver_e2e::baresip::{require_baresip, Baresip, BaresipAccount, Transport};
use palaver_e2e::pool::{self, PoolCa, PoolSpec, SharedPool, THREE};
use palaver_e2e::python::{muc_peer, require_slixmpp, PyClient};
use palaver_e2e::{must, password_of, STEP_TIMEOUT};
use serde_json::json;
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(20);
const LOBBY: &str = "sip:lobby@conference.localhost";

/// A slixmpp occupant `user` of `lobby` logged in to node `id`.
async fn peer_on(pool: &SharedPool, id: &str, user: &str) -> Result<PyClient> {
    muc_peer(pool.node(id)?, user, "lobby")
        .await
        .with_context(|| format!("{user} through {id}"))
}

#[tokio::test]
async fn slixmpp_and_baresip_on_three_nodes_share_a_room() {
    must(require_slixmpp().await);
    must(require_baresip().await);
    let ca = must(PoolCa::new());
    let spec = must(PoolSpec::three_active());
    let pool = must(pool::start_shared_pg_pool(&spec, &ca, &THREE).await);
    must(pool.wait_all_up(CONVERGE).await);
    must(pool.add_users(&["alice", "bob", "dave"]).await);
    let result = async {
        let mut bob = peer_on(&pool, "n2", "bob").await?;
        let mut dave = peer_on(&pool, "n3", "dave").await?;
        bob.wait_event_where("presence", |e| {
            e["nick"] == "dave" && e["type"] == "available"
        })
        .await
        .context("bob (n2) sees dave (n3) arrive")?;

        bob.send(&json!({"cmd": "send", "body": "from bob on n2"}))
            .await?;
        dave.wait_event_where("groupchat", |e| {
            e["nick"] == "bob" && e["body"] == "from bob on n2"
        })
        .await
        .context("dave (n3) gets bob's message")?;
        dave.send(&json!({"cmd": "send", "body": "from dave on n3"}))
            .await?;
        bob.wait_event_where("groupchat", |e| {
            e["nick"] == "dave" && e["body"] == "from dave on n3"
        })
        .await
        .context("bob (n2) gets dave's message")?;

        // baresip on n1: #join, post, and get what slixmpp posts.
        let account = BaresipAccount::new(
            "alice",
            &password_of("alice"),
            pool.node("n1")?.sip_udp(),
            Transport::Udp,
        );
        let mut phone = Baresip::start(account).await?;
        phone.wait_registered(STEP_TIMEOUT).await?;
        let sent = phone.send_message(LOBBY, "#join alice").await?;
        let status = phone.wait_message_response(&sent, STEP_TIMEOUT).await?;
        anyhow::ensure!(
            status.code == 200,
            "#join: {} {}",
            status.code,
            status.reason
        );
        dave.wait_event_where("presence", |e| {
            e["nick"] == "alice" && e["type"] == "available"
        })
        .await
        .context("dave (n3) sees alice (SIP on n1) arrive")?;
        let sent = phone.send_message(LOBBY, "from alice on n1").await?;
        let status = phone.wait_message_response(&sent, STEP_TIMEOUT).await?;
        anyhow::ensure!(
            status.code == 200,
            "post: {} {}",
            status.code,
            status.reason
        );
        for (who, peer) in [("bob", &mut bob), ("dave", &mut dave)] {
            peer.wait_event_where("groupchat", |e| {
                e["nick"] == "alice" && e["body"] == "from alice on n1"
            })
            .await
            .with_context(|| format!("{who} gets alice's SIP message"))?;
        }
        bob.send(&json!({"cmd": "send", "body": "to the phone"}))
            .await?;
        phone
            .wait_for_message(|m| m.body.contains("to the phone"), STEP_TIMEOUT)
            .await
            .context("baresip (n1) gets bob's (n2) message")?;

        for (who, peer) in [("bob", &mut bob), ("dave", &mut dave)] {
            peer.send(&json!({"cmd": "mam", "max": 10})).await?;
            let archive = peer
                .wait_event("archive")
                .await
                .with_context(|| format!("{who}'s MAM query"))?;
            anyhow::ensure!(
                archive["bodies"]
                    == json!([
                        "from bob on n2",
                        "from dave on n3",
                        "from alice on n1",
                        "to the phone"
                    ]),
                "{who} reads the archive through its node: {archive}"
            );
        }
        for peer in [&mut bob, &mut dave] {
            peer.send(&json!({"cmd": "quit"})).await?;
        }
        bob.finish().await?.ok()?;
        dave.finish().await?.ok()?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", pool.diagnostics());
    }
}
