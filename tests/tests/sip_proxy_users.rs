//! Requests to users (docs/sip.md "Requests to users"): palaver proxies out-of-dialog
//! MESSAGE/OPTIONS/INFO/NOTIFY addressed to `sip:user@localhost` to the user's registered
//! contacts and relays the final response. Over UDP and TCP: alice's MESSAGE reaches bob
//! (body, From, Call-ID intact, Request-URI = bob's contact, palaver's Via on top, Max-Forwards
//! down by one) and alice gets bob's 200 (his To tag); with bob answering 486 alice gets 486;
//! OPTIONS is relayed too; an unknown user gets 404, a user who is not registered 480; a sender
//! that is not registered on its flow answers a 407 first; a MESSAGE to a user registered on two
//! devices reaches both.

mod sip_common;

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::sip_client::{AutoReply, Method};
use palaver_e2e::{must, random_hex, SipClient, SipTransport, Store, TestServer, STEP_TIMEOUT};
use sip_common::{alice_to_bob, message, password, sip, start};

const BOB: &str = "sip:bob@localhost";

async fn scenario(server: &TestServer, transport: SipTransport) -> Result<()> {
    let mut alice = sip(server, transport, "alice").await?;
    let mut bob = sip(server, transport, "bob").await?;

    // alice → bob: delivered as sent, bob's 200 comes back.
    let text = format!("hello bob {}", random_hex(8));
    let what = format!("MESSAGE to bob over {transport}");
    let (r, got) = alice_to_bob(&mut alice, &mut bob, BOB, &text, &what).await?;
    ensure!(
        got.message.to().uri.to_string() == BOB,
        "To: {}",
        got.message.to().uri
    );
    let ruri = got.message.request_uri().map(ToString::to_string);
    ensure!(
        ruri.as_deref() == Some(bob.contact().as_str()),
        "Request-URI {ruri:?}, bob's contact {}",
        bob.contact()
    );
    ensure!(
        got.message.vias().len() == 2,
        "palaver's Via over alice's: {:?}",
        got.message.vias()
    );
    ensure!(
        got.message.max_forwards() == Some(69),
        "Max-Forwards: {:?}",
        got.message.max_forwards()
    );
    ensure!(
        got.message.header("Content-Type") == Some("text/plain;charset=UTF-8"),
        "Content-Type: {:?}",
        got.message.header("Content-Type")
    );
    ensure!(
        r.message.vias().len() == 1,
        "alice got a response with palaver's Via left: {:?}",
        r.message.vias()
    );
    ensure!(
        r.message.to().tag().is_some(),
        "bob's To tag is missing: {}",
        r.message.header("To").unwrap_or_default()
    );

    ensure!(
        got.message.header("Route").is_none(),
        "Route: {:?}",
        got.message.header("Route")
    );

    // A Route preloaded by the sender (its outbound proxy: palaver) is palaver's to remove.
    let preloaded = format!("<sip:{};lr>", alice.server_addr());
    let r = alice
        .request(
            Method::Message,
            BOB,
            &[("Route", &preloaded)],
            Some("text/plain"),
            b"routed",
        )
        .await?;
    ensure!(r.code == 200, "MESSAGE with a preloaded Route: {r}");
    let got = bob
        .wait_message(|m| m.body == "routed", STEP_TIMEOUT)
        .await?;
    ensure!(
        got.message.header("Route").is_none(),
        "our own Route was forwarded: {:?}",
        got.message.header("Route")
    );

    // A retransmission gets the same response and is not forwarded again.
    let request = alice
        .request_builder(Method::Message, BOB)
        .body("text/plain", b"once".to_vec())
        .build()?;
    alice.send_raw(&request.bytes).await?;
    let first = alice.recv_raw_response(STEP_TIMEOUT).await?;
    ensure!(first.code == 200, "raw MESSAGE: {first}");
    alice.send_raw(&request.bytes).await?;
    let again = alice.recv_raw_response(STEP_TIMEOUT).await?;
    ensure!(
        again.raw == first.raw,
        "the retransmission got another response: {again}"
    );
    bob.wait_message(|m| m.body == "once", STEP_TIMEOUT).await?;
    bob.expect_no_request(std::time::Duration::from_millis(500))
        .await
        .context("the retransmission was forwarded")?;

    // bob busy: his 486 reaches alice.
    bob.set_auto_reply(486);
    let r = message(&mut alice, BOB, "are you there?").await?;
    ensure!(r.code == 486, "MESSAGE to busy bob over {transport}: {r}");
    bob.wait_message(|m| m.body == "are you there?", STEP_TIMEOUT)
        .await?;
    bob.set_auto_reply(200);

    // OPTIONS to a user is relayed too.
    let r = alice.request(Method::Options, BOB, &[], None, b"").await?;
    ensure!(r.code == 200, "OPTIONS to bob over {transport}: {r}");
    bob.wait_request("the OPTIONS", |m| m.method == Method::Options, STEP_TIMEOUT)
        .await
        .context("bob waiting for the OPTIONS")?;

    // Unknown user: 404; known but not registered: 480.
    let r = message(&mut alice, "sip:nobody@localhost", "hi").await?;
    ensure!(
        r.code == 404,
        "MESSAGE to an unknown user over {transport}: {r}"
    );
    let r = message(&mut alice, "sip:carol@localhost", "hi").await?;
    ensure!(
        r.code == 480,
        "MESSAGE to offline carol over {transport}: {r}"
    );

    // A sender without a registration on its flow answers a 407 first.
    let mut unregistered =
        SipClient::connect_to(server, transport, "alice", &password("alice")).await?;
    let r = unregistered
        .request_raw(Method::Message, BOB, &[], Some("text/plain"), b"who?")
        .await?;
    ensure!(
        r.code == 407,
        "unauthenticated MESSAGE over {transport}: {r}"
    );
    let r = message(&mut unregistered, BOB, "it's me").await?;
    ensure!(r.code == 200, "authenticated MESSAGE over {transport}: {r}");
    bob.wait_message(|m| m.body == "it's me", STEP_TIMEOUT)
        .await?;

    bob.unregister().await?;
    alice.unregister().await?;
    Ok(())
}

#[tokio::test]
async fn messages_to_users_are_proxied_over_udp() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol"]).await;
    must(scenario(&server, SipTransport::Udp).await);
}

#[tokio::test]
async fn messages_to_users_are_proxied_over_tcp() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol"]).await;
    must(scenario(&server, SipTransport::Tcp).await);
}

#[tokio::test]
async fn a_user_on_two_devices_gets_the_message_on_both() {
    let server = start(Store::Sqlite, &["alice", "bob"]).await;
    must(
        async {
            let mut alice = sip(&server, SipTransport::Tcp, "alice").await?;
            let mut phone = sip(&server, SipTransport::Udp, "bob").await?;
            let mut desk = sip(&server, SipTransport::Tcp, "bob").await?;
            // One device busy, the other accepts: the 2xx wins.
            phone.set_auto_reply(486);
            let text = format!("to both {}", random_hex(8));
            let r = message(&mut alice, BOB, &text).await?;
            ensure!(r.code == 200, "MESSAGE to bob's two devices: {r}");
            phone.wait_message(|m| m.body == text, STEP_TIMEOUT).await?;
            desk.wait_message(|m| m.body == text, STEP_TIMEOUT).await?;
            // Both refuse: a 6xx is preferred over a 4xx (RFC 3261 §16.7).
            desk.set_auto_reply(603);
            let r = message(&mut alice, BOB, "again").await?;
            ensure!(r.code == 603, "a 6xx is final over a 486: {r}");
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn an_unanswered_request_is_retransmitted_then_answered_408() {
    let server = start(Store::Sqlite, &["alice", "bob"]).await;
    must(
        async {
            let mut alice = sip(&server, SipTransport::Tcp, "alice").await?;
            let bob = sip(&server, SipTransport::Udp, "bob").await?;
            bob.set_auto_reply(AutoReply::Ignore);
            // Sent raw: the client's own timer F (32 s) would end the wait as palaver's does.
            let request = alice
                .request_builder(Method::Message, BOB)
                .body("text/plain", b"anyone there?".to_vec())
                .build()?;
            let started = std::time::Instant::now();
            alice.send_raw(&request.bytes).await?;
            let r = alice
                .recv_raw_response(std::time::Duration::from_secs(45))
                .await
                .context("waiting for the 408")?;
            ensure!(r.code == 408, "MESSAGE to a silent bob: {r}");
            ensure!(
                started.elapsed() >= std::time::Duration::from_secs(30),
                "408 after {:?}, before timer F",
                started.elapsed()
            );
            ensure!(
                bob.retransmits_seen() >= 3,
                "palaver retransmitted over UDP {} times",
                bob.retransmits_seen()
            );
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn a_contact_registered_with_a_path_gets_it_as_route() {
    let server = start(Store::Sqlite, &["alice", "bob"]).await;
    must(
        async {
            let mut alice = sip(&server, SipTransport::Tcp, "alice").await?;
            let mut bob =
                SipClient::connect_to(&server, SipTransport::Tcp, "bob", &password("bob")).await?;
            // As if through two proxies (RFC 3327): the Path values become the route set.
            let hops = "<sip:edge.invalid;lr>, <sip:core.invalid;lr>";
            let r = bob
                .request(
                    Method::Register,
                    BOB,
                    &[("Path", hops), ("Expires", "600")],
                    None,
                    b"",
                )
                .await?;
            ensure!(r.code == 200, "REGISTER with Path: {r}");
            let r = message(&mut alice, BOB, "through the proxies").await?;
            ensure!(r.code == 200, "MESSAGE to bob: {r}");
            let got = bob
                .wait_message(|m| m.body == "through the proxies", STEP_TIMEOUT)
                .await?;
            let route: Vec<&str> = got.message.header_values("Route").collect();
            ensure!(
                route == ["<sip:edge.invalid;lr>", "<sip:core.invalid;lr>"],
                "Route: {route:?}"
            );
            // A registration through proxies proves nothing about the flow: bob answers a 407.
            let r = bob
                .request_raw(
                    Method::Message,
                    "sip:alice@localhost",
                    &[],
                    Some("text/plain"),
                    b"hi",
                )
                .await?;
            ensure!(r.code == 407, "MESSAGE from bob's proxied flow: {r}");
            Ok(())
        }
        .await,
    );
}
