//! Lync group chat across a pool (docs/xccos.md "In a pool"): a three-node pool on one shared
//! PostgreSQL schema; alice's pidgin-sipe replay signs in to n1, bob (XMPP) is on n2 and carol
//! (SIP pager) on n3. alice `bjoin`s four rooms (the lobby and three more, homed wherever the
//! hash puts them: with three nodes most are on another node than hers) and in each the three
//! exchange messages; alice reads each room's history back with `bccontext` through n1.

mod sip_common;

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::pool::{self, PoolCa, PoolSpec, SharedPool, THREE};
use palaver_e2e::xccos_client::{XccosClient, LOOKUP_URI};
use palaver_e2e::{must, password_of, room_jid, SipTransport, STEP_TIMEOUT};
use sip_common::{send_expect, sip, text_from, xmpp};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(20);
const ROOMS: [&str; 4] = ["lobby", "ops", "dev", "sales"];

async fn scenario(pool: &SharedPool) -> Result<()> {
    let n1 = pool.node("n1")?;
    for room in &ROOMS[1..] {
        n1.cli(&["room", "create", room]).await?.ok()?;
    }
    let mut bob = xmpp(pool.node("n2")?, "bob").await?;
    let mut carol = sip(pool.node("n3")?, SipTransport::Udp, "carol").await?;
    for room in ROOMS {
        bob.join(&room_jid(room), "bob", None).await?.joined()?;
        send_expect(&mut carol, room, "#join carol", 200).await?;
    }

    let mut alice =
        XccosClient::connect_to(n1, SipTransport::Tcp, "alice", &password_of("alice")).await?;
    for room in ROOMS {
        alice.queue_join(&format!("ma-chan://localhost/{room}"));
    }
    let joined = alice
        .start(LOOKUP_URI)
        .await
        .context("sign-in and bjoin on n1")?;
    ensure!(joined.len() == ROOMS.len(), "bjoin answered {joined:?}");
    for room in &joined {
        ensure!(
            room.members.len() == 3,
            "{}: members {:?}",
            room.uri,
            room.members
        );
    }

    for room in ROOMS {
        let chan = format!("ma-chan://localhost/{room}");
        let jid = room_jid(room);
        let text = format!("alice in {room}");
        ensure!(alice.send(&chan, &text).await? == 200, "post to {room}");
        bob.wait_groupchat(&jid, &text).await?;
        text_from(&mut carol, room, &format!("alice: {text}")).await?;
        let reply = format!("bob in {room}");
        bob.say(&jid, &reply).await?;
        alice
            .wait_grpchat(|m| m.room == chan && m.text == reply, STEP_TIMEOUT)
            .await
            .with_context(|| format!("alice gets bob's post in {room}"))?;
        let history = alice.history(&chan).await?;
        let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
        ensure!(
            texts.ends_with(&[text.as_str(), reply.as_str()]),
            "{room} history: {texts:?}"
        );
    }
    ensure!(alice.bye().await? == 200, "BYE");
    Ok(())
}

#[tokio::test]
async fn sipe_on_one_node_chats_in_rooms_homed_across_the_pool() {
    let ca = must(PoolCa::new());
    let spec = must(PoolSpec::three_active());
    let pool = must(pool::start_shared_pg_pool(&spec, &ca, &THREE).await);
    must(pool.wait_all_up(CONVERGE).await);
    must(pool.add_users(&["alice", "bob", "carol"]).await);
    if let Err(e) = scenario(&pool).await {
        panic!("{e:#}\n{}", pool.diagnostics());
    }
}
