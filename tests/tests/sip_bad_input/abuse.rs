//! Abuse from one source address: wrong digest answers get 403 and, past
//! `sip.auth_failures_before_backoff`, even the right password is refused from that address
//! for a while; a UDP flood is rate-limited (`sip.rate_per_sec`, `sip.rate_burst`) without
//! starving other addresses, and a stream over the limit gets 503 with `Retry-After`. Other
//! addresses, registered flows and XMPP clients are unaffected.

use super::common::*;
use anyhow::{ensure, Context as _, Result};
use palaver_dialects::sip::request::new_tag;
use palaver_dialects::sip::RequestBuilder;
use palaver_e2e::sip_client::{show, Method, Response};
use palaver_e2e::{must, SipClient, SipTransport};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;

#[tokio::test]
async fn wrong_digests_get_403_and_then_back_off_that_address() {
    let server = server(
        &["alice", "xavier", "sally"],
        "auth_failures_before_backoff = 3\n",
    )
    .await;
    must(
        async {
            // sally registered from 127.0.0.1 before the abuse.
            let mut by = Bystanders::join(&server, SipTransport::Tcp, None).await?;
            let udp = server.sip_udp();
            let ca = server.ca_path();
            let mut mallory =
                SipClient::connect(SipTransport::Udp, udp, "alice", "not-her-password", &ca)
                    .await?;
            // No credentials: 401 (REGISTER) and 407 (MESSAGE); these are not failures.
            let register = register_request(&mallory, &call_id(), 1, &[]);
            expect_status(&mut mallory, &register, 401).await?;
            let r = mallory
                .request_raw(
                    Method::Message,
                    &lobby_uri(),
                    &[],
                    Some("text/plain"),
                    b"hi",
                )
                .await?;
            ensure!(r.code == 407, "MESSAGE without credentials got {r}");
            // Wrong answers: 403. Below the threshold (3) the address is still challenged.
            let r = mallory.register_response(600).await?;
            ensure!(r.code == 403, "wrong password (REGISTER): {r}");
            let r = mallory
                .request(
                    Method::Message,
                    &lobby_uri(),
                    &[],
                    Some("text/plain"),
                    b"hi",
                )
                .await?;
            ensure!(r.code == 403, "wrong password (MESSAGE): {r}");
            let register = register_request(&mallory, &call_id(), 1, &[]);
            expect_status(&mut mallory, &register, 401)
                .await
                .context("after two failures")?;
            // The third: from now on the address gets 403 without even a challenge…
            let r = mallory.register_response(600).await?;
            ensure!(r.code == 403, "wrong password (REGISTER): {r}");
            let register = register_request(&mallory, &call_id(), 1, &[]);
            expect_status(&mut mallory, &register, 403)
                .await
                .context("after three failures")?;
            // …and the right password is refused too, over any transport…
            let mut alice = sip(&server, SipTransport::Udp, "alice", None).await?;
            let r = alice.register_response(600).await?;
            ensure!(
                r.code == 403,
                "the right password during the back-off got {r}"
            );
            let mut alice_tcp = sip(&server, SipTransport::Tcp, "alice", None).await?;
            let r = alice_tcp.register_response(600).await?;
            ensure!(r.code == 403, "over TCP during the back-off: {r}");
            // …but not from another one.
            let mut elsewhere = sip_in_lobby(&server, SipTransport::Udp, "alice", Some(other_ip()))
                .await
                .context("alice from 127.0.0.2")?;
            let code = elsewhere
                .message(&lobby_uri(), "alice from elsewhere")
                .await?;
            ensure!(code == 200, "alice's post from 127.0.0.2 got {code}");
            by.xmpp
                .wait_groupchat(&lobby(), "alice from elsewhere")
                .await?;
            // sally's flow from the blocked address was registered before: it still works.
            by.still_work().await
        }
        .await,
    );
}

/// `count` OPTIONS (each its own transaction) from one socket on `from`, as fast as it can
/// send; then counts the answers until none arrives for a second. Returns (sent, answered).
async fn flood(server: SocketAddr, from: IpAddr, count: usize) -> Result<(usize, usize)> {
    let socket = UdpSocket::bind((from, 0)).await?;
    let local = socket.local_addr()?.to_string();
    let (mut sent, mut answered) = (0, 0);
    let mut buf = vec![0u8; 65536];
    let mut count_answers = |buf: &[u8], n: usize| {
        answered += usize::from(Response::parse(buf.get(..n).unwrap_or_default()).is_ok());
    };
    for _ in 0..count {
        let options = RequestBuilder::new(Method::Options, "sip:localhost")
            .from("sip:flood@localhost", None, &new_tag())
            .to("sip:localhost", None, None)
            .via("UDP", &local)
            .build()?;
        if socket.send_to(&options.bytes, server).await.is_ok() {
            sent += 1;
        }
        // Read what is already there, so our receive buffer never overflows.
        while let Ok((n, _)) = socket.try_recv_from(&mut buf) {
            count_answers(&buf, n);
        }
    }
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_secs(1), socket.recv_from(&mut buf)).await
    {
        count_answers(&buf, n);
    }
    Ok((sent, answered))
}

#[tokio::test]
async fn a_udp_flood_is_rate_limited_without_starving_others() {
    let server = server(
        &["alice", "xavier", "sally"],
        "rate_per_sec = 20\nrate_burst = 20\n",
    )
    .await;
    must(
        async {
            let udp = server.sip_udp();
            let loopback: IpAddr = [127, 0, 0, 1].into();
            let xavier = xmpp_in_lobby(&server, "xavier").await?;
            // While 127.0.0.1 floods, sally (127.0.0.2) registers, joins and posts.
            let flooding = tokio::spawn(flood(udp, loopback, 2000));
            let sally = sip_in_lobby(&server, SipTransport::Udp, "sally", Some(other_ip()))
                .await
                .context("sally from 127.0.0.2 during the flood")?;
            let mut by = Bystanders::new(xavier, sally);
            by.still_work().await.context("during the flood")?;
            let (sent, answered) = flooding.await??;
            eprintln!("flood: {sent} OPTIONS sent, {answered} answered");
            ensure!(sent == 2000, "only {sent} of 2000 datagrams could be sent");
            ensure!(answered > 0, "nothing of the flood was answered");
            ensure!(
                answered < sent / 4,
                "{answered} of {sent} flooded OPTIONS were answered: no rate limit"
            );

            // The limit is a rate, not a ban: 127.0.0.1 is answered again (the client
            // retransmits until a token is free).
            let mut later = sip(&server, SipTransport::Udp, "alice", None).await?;
            let r = later
                .request(Method::Options, "sip:localhost", &[], None, b"")
                .await
                .context("OPTIONS from 127.0.0.1 after the flood")?;
            ensure!(r.code == 200, "OPTIONS after the flood got {r}");

            // A stream over the limit is answered 503 with Retry-After, not dropped.
            let mut burst = sip(
                &server,
                SipTransport::Tcp,
                "alice",
                Some([127, 0, 0, 3].into()),
            )
            .await?;
            let mut pipelined = Vec::new();
            for _ in 0..100 {
                let text = request_text(&burst, Method::Options, "sip:localhost", None);
                pipelined.extend_from_slice(text.as_bytes());
            }
            burst.send_raw(&pipelined).await?;
            let (mut ok, mut busy) = (0, 0);
            for _ in 0..100 {
                let r = burst.recv_raw_response(WAIT).await?;
                match r.code {
                    200 => ok += 1,
                    503 if r.header("Retry-After").is_some() => busy += 1,
                    _ => anyhow::bail!("a pipelined OPTIONS got {}", show(&r.raw)),
                }
            }
            ensure!(
                ok >= 20 && busy > 0,
                "pipelined 100 OPTIONS: {ok} × 200, {busy} × 503"
            );
            by.still_work().await.context("after the flood")
        }
        .await,
    );
}

#[tokio::test]
async fn answers_to_a_busy_room_are_not_rate_limited() {
    // A client answers every MESSAGE the room sends; those answers are not requests and must
    // not use up its request budget (else a busy room would make it miss messages and leave).
    let server = server(&["xavier", "sally"], "rate_per_sec = 20\nrate_burst = 20\n").await;
    must(
        async {
            let mut by = Bystanders::join(&server, SipTransport::Tcp, None).await?;
            // One at a time, so each is a MESSAGE of its own that sally answers: far more
            // answers than the request budget allows in the time this takes.
            for i in 0..80 {
                let post = format!("busy post {i}");
                by.xmpp.say(&lobby(), &post).await?;
                let want = format!("xavier: {post}");
                by.sip
                    .wait_message(|m| m.body == want, WAIT)
                    .await
                    .with_context(|| format!("post {i} of 80"))?;
            }
            by.still_work().await
        }
        .await,
    );
}

/// `sip.max_connections_per_ip`: a TCP connection over the cap is closed before a byte is
/// read; another address still connects, and a freed slot is usable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_over_the_per_address_cap_are_closed() {
    let server = server(&["alice"], "max_connections_per_ip = 2\n").await;
    must(
        async {
            let mut held = Vec::new();
            for _ in 0..2 {
                let mut c =
                    SipClient::connect_to(&server, SipTransport::Tcp, "alice", &password("alice"))
                        .await?;
                let r = options(&mut c).await?;
                ensure!(r.code == 200, "OPTIONS on an admitted connection: {r}");
                held.push(c);
            }
            let extra = tokio::net::TcpStream::connect(server.sip_tcp()).await?;
            palaver_e2e::expect_closed_silently(extra).await?;
            let mut elsewhere = sip(&server, SipTransport::Tcp, "alice", Some(other_ip())).await?;
            ensure!(options(&mut elsewhere).await?.code == 200, "other address");
            held.pop().context("a held client")?.close().await?;
            let mut reusable = false;
            for _ in 0..50 {
                let attempt = async {
                    let mut c = SipClient::connect_to(
                        &server,
                        SipTransport::Tcp,
                        "alice",
                        &password("alice"),
                    )
                    .await?;
                    options(&mut c).await
                };
                if attempt.await.is_ok_and(|r| r.code == 200) {
                    reusable = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ensure!(reusable, "the freed slot was never reusable");
            Ok(())
        }
        .await,
    );
}

/// OPTIONS to the server over `c` (needs no credentials).
async fn options(c: &mut SipClient) -> Result<Response> {
    c.request(Method::Options, "sip:localhost", &[], None, b"")
        .await
}
