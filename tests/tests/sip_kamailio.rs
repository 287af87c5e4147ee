//! palaver behind a real Kamailio (docs/sip-proxy.md; harness in `palaver_e2e::kamailio`): SIP
//! users reach palaver only through the proxy. REGISTERs get Kamailio's Path and palaver's
//! digest challenge passes back through it; the 200 echoes the Path with `Supported: path`.
//! Two SIP users (one on TCP, one on UDP towards Kamailio, which talks TCP to palaver) `#join`
//! the lobby where an XMPP user is, and the room's MESSAGEs reach them through Kamailio (the
//! top Via is Kamailio's, palaver's is under it): Path became palaver's Route. A conference
//! SUBSCRIBE through Kamailio is record-routed: the NOTIFYs come through Kamailio, and the
//! in-dialog refresh and unsubscribe follow the route set. A user that joins without
//! registering (its MESSAGE names a Contact) is answered through Kamailio as well, routed by
//! the MESSAGE's Record-Route. The same with Kamailio talking UDP
//! to palaver. Fails (never skips) without kamailio.

mod sip_common;

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::kamailio::{Forward, Kamailio};
use palaver_e2e::raw_client::RawClient;
use palaver_e2e::sip_client::{InboundRequest, Method};
use palaver_e2e::{room_jid, SipClient, SipTransport, Store, TestServer, STEP_TIMEOUT};
use sip_common::{
    password, presence, register_without_credentials, send_expect, start, text_from, xmpp,
};
use std::net::SocketAddr;

/// `user` connected to Kamailio (not palaver) over `transport` and registered through it.
async fn sip_via_proxy(
    server: &TestServer,
    kamailio: &Kamailio,
    transport: SipTransport,
    user: &str,
) -> Result<(SipClient, Vec<String>)> {
    let proxy = match transport {
        SipTransport::Udp => kamailio.udp_addr(),
        _ => kamailio.tcp_addr(),
    };
    let mut c = SipClient::connect(transport, proxy, user, &password(user), &server.ca_path())
        .await
        .with_context(|| format!("{user} connecting to Kamailio"))?;

    // palaver's challenge passes through the proxy untouched.
    let challenge = register_without_credentials(&mut c).await?;
    ensure!(
        challenge.code == 401,
        "REGISTER without credentials: {challenge}"
    );
    ensure!(
        challenge
            .message
            .header_values("WWW-Authenticate")
            .any(|v| v.contains("realm=\"localhost\"")),
        "401 without palaver's challenge:\n{}",
        String::from_utf8_lossy(&challenge.raw)
    );

    let ok = c.register_response(600).await?;
    ensure!(ok.code == 200, "REGISTER of {user} through Kamailio: {ok}");
    let path: Vec<&str> = ok.message.header_values("Path").collect();
    let port = format!(":{}", kamailio.tcp_addr().port());
    ensure!(
        !path.is_empty() && path.iter().all(|p| p.contains(&port) && p.contains(";lr")),
        "the 200 should echo Kamailio's Path; got {path:?}\n{}",
        String::from_utf8_lossy(&ok.raw)
    );
    ensure!(
        ok.message
            .header_values("Supported")
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("path"))),
        "the 200 should say Supported: path\n{}",
        String::from_utf8_lossy(&ok.raw)
    );
    let path = path.into_iter().map(str::to_string).collect();
    Ok((c, path))
}

/// Checks that a request palaver sent reached us through Kamailio: Kamailio's Via on top,
/// palaver's below it, the Route (our Path / Record-Route) consumed by Kamailio.
fn came_through(
    r: &InboundRequest,
    kamailio: &Kamailio,
    transport: SipTransport,
    palaver: SocketAddr,
) -> Result<()> {
    let vias = r.message.vias();
    let proxy = match transport {
        SipTransport::Udp => kamailio.udp_addr(),
        _ => kamailio.tcp_addr(),
    };
    let raw = String::from_utf8_lossy(&r.raw);
    ensure!(
        vias.len() >= 2 && vias.first().map(|v| v.sent_by()) == Some(proxy.to_string()),
        "{} should have Kamailio's Via ({proxy}) on top:\n{raw}",
        r.summary()
    );
    ensure!(
        vias.last().map(|v| v.sent_by()) == Some(palaver.to_string()),
        "{} should have palaver's Via ({palaver}) at the bottom:\n{raw}",
        r.summary()
    );
    ensure!(
        r.source == proxy,
        "{} came from {}, not from Kamailio ({proxy})",
        r.summary(),
        r.source
    );
    ensure!(
        r.message.header("Route").is_none(),
        "Kamailio should have consumed the Route:\n{raw}"
    );
    Ok(())
}

async fn scenario(server: &TestServer, kamailio: &Kamailio) -> Result<()> {
    let lobby = room_jid("lobby");
    let palaver = server.sip_tcp();
    let mut alice: RawClient = xmpp(server, "alice").await?;
    alice.join(&lobby, "alice", None).await?.joined()?;

    // bob on TCP, dave on UDP; both reach palaver only through Kamailio.
    let (mut bob, _) = sip_via_proxy(server, kamailio, SipTransport::Tcp, "bob").await?;
    let (mut dave, _) = sip_via_proxy(server, kamailio, SipTransport::Udp, "dave").await?;

    // #join through the proxy; the room's answer comes back through it.
    send_expect(&mut bob, "lobby", "#join bobby", 200).await?;
    let welcome = text_from(&mut bob, "lobby", "as bobby").await?;
    came_through(&welcome, kamailio, SipTransport::Tcp, palaver).context("bob's welcome")?;
    ensure!(welcome.body.contains("alice"), "welcome: {}", welcome.body);
    presence(&mut alice, &lobby, "bobby", true).await?;

    send_expect(&mut dave, "lobby", "#join", 200).await?;
    let welcome = text_from(&mut dave, "lobby", "as dave").await?;
    came_through(&welcome, kamailio, SipTransport::Udp, palaver).context("dave's welcome")?;
    text_from(&mut bob, "lobby", "*** dave has joined").await?;

    // A post from one proxied user reaches the other (and XMPP).
    send_expect(&mut dave, "lobby", "hello through kamailio", 200).await?;
    let heard = text_from(&mut bob, "lobby", "dave: hello through kamailio").await?;
    came_through(&heard, kamailio, SipTransport::Tcp, palaver).context("dave's post to bob")?;
    ensure!(heard.display_name.as_deref() == Some("dave"), "{heard:?}");
    alice
        .wait_groupchat(&lobby, "hello through kamailio")
        .await?;

    send_expect(&mut bob, "lobby", "and back over TCP", 200).await?;
    let heard = text_from(&mut dave, "lobby", "bobby: and back over TCP").await?;
    came_through(&heard, kamailio, SipTransport::Udp, palaver).context("bob's post to dave")?;

    alice.say(&lobby, "hi from XMPP").await?;
    for c in [&mut bob, &mut dave] {
        text_from(c, "lobby", "alice: hi from XMPP").await?;
    }

    // Conference events through the proxy: record-routed, NOTIFYs through Kamailio.
    let sub = bob.subscribe(&sip_common::room_uri("lobby"), 600).await?;
    ensure!(sub.is_success(), "SUBSCRIBE through Kamailio: {sub}");
    let rr: Vec<&str> = sub.message.header_values("Record-Route").collect();
    let port = format!(":{}", kamailio.tcp_addr().port());
    ensure!(
        !rr.is_empty() && rr.iter().all(|r| r.contains(&port)),
        "the 2xx should copy Kamailio's Record-Route; got {rr:?}\n{}",
        String::from_utf8_lossy(&sub.raw)
    );
    let full = bob.wait_notify(STEP_TIMEOUT).await?;
    came_through(&full, kamailio, SipTransport::Tcp, palaver).context("the first NOTIFY")?;
    ensure!(
        full.body.contains("bobby") && full.body.contains("dave") && full.body.contains("alice"),
        "full conference-info: {}",
        full.body
    );

    // dave leaves: the partial NOTIFY comes through Kamailio too.
    send_expect(&mut dave, "lobby", "#leave", 200).await?;
    let partial = bob.wait_notify(STEP_TIMEOUT).await?;
    came_through(&partial, kamailio, SipTransport::Tcp, palaver).context("dave leaving")?;
    ensure!(
        partial.body.contains("deleted") && partial.body.contains("dave"),
        "partial conference-info: {}",
        partial.body
    );
    presence(&mut alice, &lobby, "dave", false).await?;

    // The refresh and the unsubscribe follow the route set (Route: Kamailio).
    let refreshed = bob.resubscribe(&sip_common::room_uri("lobby"), 600).await?;
    ensure!(refreshed.is_success(), "in-dialog refresh: {refreshed}");
    let again = bob.wait_notify(STEP_TIMEOUT).await?;
    came_through(&again, kamailio, SipTransport::Tcp, palaver).context("NOTIFY after refresh")?;
    let ended = bob.unsubscribe(&sip_common::room_uri("lobby")).await?;
    ensure!(ended.is_success(), "unsubscribe: {ended}");
    let last = bob.wait_notify(STEP_TIMEOUT).await?;
    came_through(&last, kamailio, SipTransport::Tcp, palaver).context("the last NOTIFY")?;
    ensure!(
        last.header("Subscription-State")
            .is_some_and(|s| s.starts_with("terminated")),
        "last NOTIFY: {:?}",
        last.header("Subscription-State")
    );

    send_expect(&mut bob, "lobby", "#leave", 200).await?;
    presence(&mut alice, &lobby, "bobby", false).await?;

    // A user that joins without registering is answered back through the proxy too: to the
    // Contact of its MESSAGE (behind a proxy its From is no way back), routed by the
    // MESSAGE's Record-Route.
    let mut carol = SipClient::connect(
        SipTransport::Tcp,
        kamailio.tcp_addr(),
        "carol",
        &password("carol"),
        &server.ca_path(),
    )
    .await?;
    let contact = format!("<{}>", carol.contact());
    let joined = carol
        .request(
            Method::Message,
            &sip_common::room_uri("lobby"),
            &[("Contact", &contact)],
            Some("text/plain;charset=UTF-8"),
            b"#join",
        )
        .await?;
    ensure!(joined.code == 200, "carol's #join: {joined}");
    let welcome = text_from(&mut carol, "lobby", "as carol").await?;
    came_through(&welcome, kamailio, SipTransport::Tcp, palaver).context("carol's welcome")?;
    alice.say(&lobby, "hi carol").await?;
    let heard = text_from(&mut carol, "lobby", "alice: hi carol").await?;
    came_through(&heard, kamailio, SipTransport::Tcp, palaver).context("alice to carol")?;
    send_expect(&mut carol, "lobby", "#leave", 200).await?;
    presence(&mut alice, &lobby, "carol", false).await?;
    Ok(())
}

#[tokio::test]
async fn sip_users_chat_and_subscribe_through_kamailio() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol", "dave"]).await;
    let kamailio = match Kamailio::start(server.sip_tcp()).await {
        Ok(k) => k,
        Err(e) => panic!("Kamailio does not start: {e:?}"),
    };
    if let Err(e) = scenario(&server, &kamailio).await {
        panic!(
            "{e:?}\n----- Kamailio log -----\n{}\n----- end of Kamailio log -----",
            kamailio.log()
        );
    }
}

/// Kamailio talking UDP to palaver (a TCP client behind it): the Path names Kamailio's UDP
/// socket, palaver's MESSAGEs go to it over UDP, and Kamailio relays them over the client's
/// TCP connection.
async fn udp_scenario(server: &TestServer, kamailio: &Kamailio) -> Result<()> {
    let (mut bob, path) = sip_via_proxy(server, kamailio, SipTransport::Tcp, "bob").await?;
    ensure!(
        path.iter().all(|p| !p.contains("transport=tcp")),
        "the Path towards palaver should name Kamailio's UDP socket: {path:?}"
    );
    send_expect(&mut bob, "lobby", "#join bobby", 200).await?;
    let welcome = text_from(&mut bob, "lobby", "as bobby").await?;
    came_through(&welcome, kamailio, SipTransport::Tcp, server.sip_udp())
        .context("bob's welcome")?;
    send_expect(&mut bob, "lobby", "#who", 200).await?;
    text_from(&mut bob, "lobby", "bobby").await?;
    send_expect(&mut bob, "lobby", "#leave", 200).await?;
    Ok(())
}

#[tokio::test]
async fn kamailio_can_forward_to_palaver_over_udp() {
    let server = start(Store::Sqlite, &["bob"]).await;
    let kamailio = match Kamailio::start_with(server.sip_udp(), Forward::Udp).await {
        Ok(k) => k,
        Err(e) => panic!("Kamailio does not start: {e:?}"),
    };
    if let Err(e) = udp_scenario(&server, &kamailio).await {
        panic!(
            "{e:?}\n----- Kamailio log -----\n{}\n----- end of Kamailio log -----",
            kamailio.log()
        );
    }
}
