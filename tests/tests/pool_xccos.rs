//! Lync group chat across a pool (docs/xccos.md "In a pool"): a three-node pool on one shared
//! PostgreSQL schema; alice's pidgin-sipe replay signs in to n1, bob (XMPP) is on n2 and carol
//! (SIP pager) on n3. alice `bjoin`s four rooms (the lobby and three more, homed wherever the
//! hash puts them: with three nodes most are on another node than hers) and in each the three
//! exchange messages; alice reads each room's history back with `bccontext` through n1. Then
//! her in-dialog requests arrive at n2 instead (as from a front end spreading them over the
//! pool): n2 relays them to n1, which holds the dialog, and answers with n1's response.

mod sip_common;

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::pool::{self, PoolCa, PoolSpec, SharedPool, THREE};
use palaver_e2e::xccos_client::{XccosClient, XccosEvent, LOOKUP_URI};
use palaver_e2e::{must, password_of, room_jid, SipClient, SipTransport, STEP_TIMEOUT};
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

    // A front end that sends alice's in-dialog requests to n2 (her dialog lives on n1):
    // n2 relays them over the pool link and n1's response comes back through n2.
    let mut dialog = alice.dialog().cloned().context("alice's dialog")?;
    let mut via_n2 = SipClient::connect_to(
        pool.node("n2")?,
        SipTransport::Tcp,
        "alice",
        &password_of("alice"),
    )
    .await?;
    let info = |inner: &str| {
        format!("<xccos ver=\"1\" envid=\"7\" xmlns=\"urn:parlano:xml:ns:xccos\">{inner}</xccos>")
    };
    let r = via_n2
        .info(
            &mut dialog,
            &[],
            "text/plain",
            info(r#"<cmd id="cmd:getserverinfo" seqid="1"><data/></cmd>"#).as_bytes(),
        )
        .await?;
    ensure!(r.code == 200, "INFO through n2: {}", r.code);
    alice
        .wait_for(
            "rpl:getserverinfo from n1",
            |e| matches!(e, XccosEvent::Reply(r) if r.id == "rpl:getserverinfo" && r.code == 200),
            STEP_TIMEOUT,
        )
        .await?;
    let post = info(
        r#"<grpchat id="grpchat" seqid="1" chanUri="ma-chan://localhost/lobby" author="sip:alice@localhost"><chat>posted through n2</chat></grpchat>"#,
    );
    let r = via_n2
        .info(&mut dialog, &[], "text/plain", post.as_bytes())
        .await?;
    ensure!(r.code == 200, "grpchat through n2: {}", r.code);
    bob.wait_groupchat(&room_jid("lobby"), "posted through n2")
        .await?;
    let r = via_n2.update(&mut dialog, &[]).await?;
    ensure!(
        r.code == 200 && r.header("Session-Expires").is_some(),
        "UPDATE through n2: {}",
        r.code
    );
    // A dialog no node holds: 481 from n2 after asking the pool.
    let mut stray = dialog.clone();
    stray.remote_tag = Some("nobody-has-this".into());
    let r = via_n2
        .info(&mut stray, &[], "text/plain", info("").as_bytes())
        .await?;
    ensure!(r.code == 481, "unknown dialog through n2: {}", r.code);

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
