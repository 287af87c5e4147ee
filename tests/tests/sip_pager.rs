//! SIP pager rooms end to end (docs/sip.md "Rooms"): on UDP, TCP and TLS a SIP user registers
//! (401, then 200), `#join`s the lobby where an XMPP user already is, and the two talk — the
//! XMPP side sees the SIP occupant's presence and posts (also in MAM), the SIP side gets XMPP
//! posts as MESSAGEs from the room; two SIP occupants hear each other but not their own
//! echo; `#leave` is seen by XMPP. The main scenario also runs on PostgreSQL. Then what
//! makes a SIP occupant leave (failed deliveries, un-REGISTER, a closed TCP connection) and
//! durability: the 200 to a post means it is stored, so it survives a restart.

mod sip_common;

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::{must, room_jid, SipClient, SipTransport, Store, TestServer, STEP_TIMEOUT};
use sip_common::{
    create_room, none_contains, presence, register_without_credentials, send_expect, sip, start,
    text_from, xmpp,
};

async fn lobby_scenario(server: &TestServer, transport: SipTransport) -> Result<()> {
    let lobby = room_jid("lobby");
    let mut alice = xmpp(server, "alice").await?;
    alice.join(&lobby, "alice", None).await?.joined()?;

    // Registration: 401 first, then 200 with the digest answer.
    let mut bob = SipClient::connect_to(server, transport, "bob", "bob-pw").await?;
    let challenge = register_without_credentials(&mut bob).await?;
    ensure!(challenge.code == 401, "first REGISTER: {challenge}");
    let offered: Vec<&str> = challenge
        .message
        .header_values("WWW-Authenticate")
        .collect();
    ensure!(
        offered.iter().any(|c| c.contains("SHA-256")) && offered.iter().any(|c| c.contains("MD5")),
        "challenges: {offered:?}"
    );
    ensure!(bob.register(600).await? == 200, "REGISTER with credentials");

    // #join: 200, then one welcome naming the XMPP occupant already there.
    send_expect(&mut bob, "lobby", "#join bobby", 200).await?;
    let welcome = text_from(&mut bob, "lobby", "as bobby").await?;
    ensure!(
        welcome.body.contains("Also here: alice"),
        "welcome: {}",
        welcome.body
    );
    presence(&mut alice, &lobby, "bobby", true).await?;

    // bob's post reaches XMPP from lobby/bobby, and is in the archive.
    send_expect(&mut bob, "lobby", "hello from SIP", 200).await?;
    let post = alice.wait_groupchat(&lobby, "hello from SIP").await?;
    ensure!(
        post.attr("from") == Some(format!("{lobby}/bobby").as_str()),
        "{post:?}"
    );
    let (items, _) = alice.mam_all(&lobby, 50).await?;
    ensure!(
        items
            .iter()
            .any(|i| i.from == format!("{lobby}/bobby")
                && i.body.as_deref() == Some("hello from SIP")),
        "MAM: {items:?}"
    );

    // An XMPP post reaches bob from the room URI, shown as alice, body `alice: text`.
    alice.say(&lobby, "hi bobby").await?;
    let got = text_from(&mut bob, "lobby", "alice: hi bobby").await?;
    ensure!(got.body == "alice: hi bobby", "{}", got.summary());
    ensure!(
        got.display_name.as_deref() == Some("alice"),
        "display name {:?}",
        got.display_name
    );

    // A second SIP occupant: both hear each other, neither gets its own post back.
    let mut dave = sip(server, transport, "dave").await?;
    send_expect(&mut dave, "lobby", "#join", 200).await?;
    let welcome = text_from(&mut dave, "lobby", "as dave").await?;
    ensure!(
        welcome.body.contains("alice") && welcome.body.contains("bobby"),
        "welcome: {}",
        welcome.body
    );
    text_from(&mut bob, "lobby", "*** dave has joined").await?;
    send_expect(&mut dave, "lobby", "hey bobby", 200).await?;
    let heard = text_from(&mut bob, "lobby", "dave: hey bobby").await?;
    ensure!(heard.display_name.as_deref() == Some("dave"));
    send_expect(&mut bob, "lobby", "hey dave", 200).await?;
    text_from(&mut dave, "lobby", "bobby: hey dave").await?;
    // Everything sent before alice's marker has been delivered when the marker arrives.
    alice.wait_groupchat(&lobby, "hey dave").await?;
    alice.say(&lobby, "marker").await?;
    text_from(&mut bob, "lobby", "alice: marker").await?;
    text_from(&mut dave, "lobby", "alice: marker").await?;
    none_contains(&mut bob, "bobby: hey dave").context("bob's own echo")?;
    none_contains(&mut dave, "dave: hey bobby").context("dave's own echo")?;

    // #leave: XMPP sees bobby go; an immediate #join brings him back.
    send_expect(&mut bob, "lobby", "#leave", 200).await?;
    send_expect(&mut bob, "lobby", "#join bobby", 200).await?;
    presence(&mut alice, &lobby, "bobby", false).await?;
    presence(&mut alice, &lobby, "bobby", true).await?;
    text_from(&mut dave, "lobby", "*** bobby has left").await?;
    send_expect(&mut bob, "lobby", "#leave", 200).await?;
    presence(&mut alice, &lobby, "bobby", false).await?;
    Ok(())
}

#[tokio::test]
async fn sip_user_chats_with_xmpp_in_the_lobby_over_udp() {
    let server = start(Store::Sqlite, &["alice", "bob", "dave"]).await;
    must(lobby_scenario(&server, SipTransport::Udp).await);
}

#[tokio::test]
async fn sip_user_chats_with_xmpp_in_the_lobby_over_tcp() {
    let server = start(Store::Sqlite, &["alice", "bob", "dave"]).await;
    must(lobby_scenario(&server, SipTransport::Tcp).await);
}

#[tokio::test]
async fn sip_user_chats_with_xmpp_in_the_lobby_over_tls() {
    let server = start(Store::Sqlite, &["alice", "bob", "dave"]).await;
    must(lobby_scenario(&server, SipTransport::Tls).await);
}

#[tokio::test]
async fn sip_user_chats_with_xmpp_in_the_lobby_on_postgres() {
    let server = start(Store::Postgres, &["alice", "bob", "dave"]).await;
    must(lobby_scenario(&server, SipTransport::Udp).await);
}

/// The `<status/>` text of a presence.
fn status_text(p: &palaver_dialects::xmpp::element::Element) -> Option<String> {
    p.child_text("status", "jabber:client")
}

#[tokio::test]
async fn a_sip_occupant_whose_client_answers_481_leaves_after_three_deliveries() {
    let server = start(Store::Sqlite, &["alice", "bob", "dave"]).await;
    must(
        async {
            let lobby = room_jid("lobby");
            let mut alice = xmpp(&server, "alice").await?;
            alice.join(&lobby, "alice", None).await?.joined()?;
            let mut bob = sip(&server, SipTransport::Udp, "bob").await?;
            send_expect(&mut bob, "lobby", "#join", 200).await?;
            text_from(&mut bob, "lobby", "as bob").await?;
            presence(&mut alice, &lobby, "bob", true).await?;
            let mut dave = sip(&server, SipTransport::Tcp, "dave").await?;
            send_expect(&mut dave, "lobby", "#join", 200).await?;
            text_from(&mut dave, "lobby", "as dave").await?;
            text_from(&mut bob, "lobby", "*** dave has joined").await?;

            bob.set_auto_reply(481);
            for n in 1..=2 {
                alice.say(&lobby, &format!("post {n}")).await?;
                let got = text_from(&mut bob, "lobby", &format!("alice: post {n}")).await?;
                ensure!(got.answered == Some(481), "{}", got.summary());
            }
            // Two failures are not enough: bob is still listed.
            send_expect(&mut dave, "lobby", "#members", 200).await?;
            let members = text_from(&mut dave, "lobby", "members:").await?;
            ensure!(members.body.contains("\nbob (SIP)"), "{}", members.body);

            alice.say(&lobby, "post 3").await?;
            text_from(&mut bob, "lobby", "alice: post 3").await?;
            let gone = presence(&mut alice, &lobby, "bob", false).await?;
            ensure!(
                status_text(&gone).is_some_and(|s| s.contains("unreachable")),
                "{}",
                palaver_e2e::xml::show(&gone)
            );
            text_from(&mut dave, "lobby", "*** bob has left").await?;
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn un_register_and_a_closed_connection_make_sip_occupants_leave() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol", "dave"]).await;
    must(
        async {
            let lobby = room_jid("lobby");
            let mut alice = xmpp(&server, "alice").await?;
            alice.join(&lobby, "alice", None).await?.joined()?;
            let mut bob = sip(&server, SipTransport::Udp, "bob").await?;
            let mut carol = sip(&server, SipTransport::Tcp, "carol").await?;
            for (c, nick) in [(&mut bob, "bob"), (&mut carol, "carol")] {
                send_expect(c, "lobby", "#join", 200).await?;
                text_from(c, "lobby", &format!("as {nick}")).await?;
                presence(&mut alice, &lobby, nick, true).await?;
            }
            // Expires 0 removes bob's only contact: he leaves.
            ensure!(bob.unregister().await? == 200, "un-REGISTER");
            let gone = presence(&mut alice, &lobby, "bob", false).await?;
            ensure!(
                status_text(&gone).is_some_and(|s| s.contains("registration ended")),
                "{}",
                palaver_e2e::xml::show(&gone)
            );
            // Closing carol's connection drops her registration: she leaves too.
            carol.close().await?;
            presence(&mut alice, &lobby, "carol", false).await?;
            // dave never registers (each request answers a 407) and joins over TLS: closing
            // that connection makes him leave as well.
            let mut dave =
                SipClient::connect_to(&server, SipTransport::Tls, "dave", "dave-pw").await?;
            send_expect(&mut dave, "lobby", "#join", 200).await?;
            text_from(&mut dave, "lobby", "as dave").await?;
            presence(&mut alice, &lobby, "dave", true).await?;
            dave.close().await?;
            presence(&mut alice, &lobby, "dave", false).await?;
            Ok(())
        }
        .await,
    );
}

/// A registration that runs out (the client never refreshes it) makes the occupant leave, as
/// a client that went away without un-registering would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_registration_makes_the_sip_occupant_leave() {
    let opts = palaver_e2e::ServerOptions {
        sip_extra: "min_expires = 1\n".into(),
        ..palaver_e2e::ServerOptions::default()
    };
    let server = sip_common::start_with(Store::Sqlite, opts, &["alice", "bob"]).await;
    must(
        async {
            let lobby = room_jid("lobby");
            let mut alice = xmpp(&server, "alice").await?;
            alice.join(&lobby, "alice", None).await?.joined()?;
            let mut bob = SipClient::connect_to(
                &server,
                SipTransport::Udp,
                "bob",
                &sip_common::password("bob"),
            )
            .await?;
            ensure!(bob.register(2).await? == 200, "REGISTER for 2 s");
            send_expect(&mut bob, "lobby", "#join", 200).await?;
            text_from(&mut bob, "lobby", "as bob").await?;
            presence(&mut alice, &lobby, "bob", true).await?;
            // No refresh: the sweeper (every 5 s) ends the binding and bob leaves.
            let gone = presence(&mut alice, &lobby, "bob", false).await?;
            ensure!(
                status_text(&gone).is_some_and(|s| s.contains("registration ended")),
                "{}",
                palaver_e2e::xml::show(&gone)
            );
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn a_post_answered_200_is_stored_and_survives_a_crash() {
    let mut server = start(Store::Sqlite, &["alice", "bob"]).await;
    let result = async {
        let lobby = room_jid("lobby");
        let mut bob = sip(&server, SipTransport::Tcp, "bob").await?;
        send_expect(&mut bob, "lobby", "#join bobby", 200).await?;
        text_from(&mut bob, "lobby", "as bobby").await?;
        send_expect(&mut bob, "lobby", "kept across restarts", 200).await?;
        // SIGKILL right after the 200: nothing gets a chance to flush.
        server.kill().await?;
        drop(bob);
        server.start_again().await?;

        let mut alice = xmpp(&server, "alice").await?;
        let (items, _) = alice.mam_all(&lobby, 50).await?;
        ensure!(
            items.iter().any(|i| i.from == format!("{lobby}/bobby")
                && i.body.as_deref() == Some("kept across restarts")),
            "MAM after the restart: {items:?}"
        );
        let mut bob = sip(&server, SipTransport::Udp, "bob").await?;
        send_expect(&mut bob, "lobby", "#history 3", 200).await?;
        let history = text_from(&mut bob, "lobby", "bobby: kept across restarts").await?;
        ensure!(history.body.starts_with('['), "{}", history.body);
        Ok(())
    }
    .await;
    must(result);
}

#[tokio::test]
async fn a_join_is_one_welcome_and_every_post_is_a_message_of_its_own() {
    let server = start(Store::Sqlite, &["alice", "bob"]).await;
    must(
        async {
            let cafe = room_jid("cafe");
            let mut alice = xmpp(&server, "alice").await?;
            create_room(&mut alice, "alice", &cafe, &[]).await?;
            for n in 1..=2 {
                alice.say(&cafe, &format!("earlier {n}")).await?;
                alice.wait_groupchat(&cafe, &format!("earlier {n}")).await?;
            }
            alice
                .send_str(&format!(
                    "<message to='{cafe}' type='groupchat'><subject>Coffee talk</subject></message>"
                ))
                .await?;
            alice
                .wait_for(STEP_TIMEOUT, "the subject echo", |el| {
                    el.child_text("subject", "jabber:client").as_deref() == Some("Coffee talk")
                })
                .await?;

            // One MESSAGE: welcome, who is there, the history and the topic.
            let mut bob = sip(&server, SipTransport::Tcp, "bob").await?;
            send_expect(&mut bob, "cafe", "#join", 200).await?;
            let welcome = text_from(&mut bob, "cafe", "as bob").await?;
            for part in [
                "Also here: alice",
                "] alice: earlier 1",
                "] alice: earlier 2",
                "Topic: Coffee talk",
            ] {
                ensure!(
                    welcome.body.contains(part),
                    "{part:?} missing: {}",
                    welcome.body
                );
            }

            // A burst of posts: one MESSAGE per post, each shown as its author.
            let burst: String = (0..20)
                .map(|i| {
                    format!(
                        "<message to='{cafe}' type='groupchat'><body>burst {i}</body></message>"
                    )
                })
                .collect();
            alice.send_str(&burst).await?;
            for i in 0..20 {
                let want = format!("alice: burst {i}");
                let got = bob
                    .wait_message(|m| m.body == want, STEP_TIMEOUT)
                    .await
                    .with_context(|| format!("post {i} as a MESSAGE of its own"))?;
                ensure!(
                    got.display_name.as_deref() == Some("alice"),
                    "{}",
                    got.summary()
                );
            }
            Ok(())
        }
        .await,
    );
}
