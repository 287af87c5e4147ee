//! Cross-protocol delivery, measured: a SIP user (the test UA over UDP) and an XMPP user in one
//! room exchange `PALAVER_SIP_LATENCY_MESSAGES` messages each way (default 200), one at a
//! time. Every message must arrive, in order, with the right author; the time from send to
//! delivery (SIP→room→XMPP includes the store commit, as the 200 OK waits for it) is printed
//! as p50/p90/p99/max. Nothing is asserted about speed — the numbers are for the record
//! (`cargo test --release -p palaver-e2e --test sip_latency -- --nocapture` with
//! `PALAVER_SIP_LATENCY_MESSAGES=1000`).

use anyhow::Result;
use palaver_e2e::raw_client::RawClient;
use palaver_e2e::sip_client::{SipClient, SipTransport};
use palaver_e2e::{must, room_jid, ServerOptions, Store, TestServer, STEP_TIMEOUT};
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(what: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "{what}: n={} p50={:?} p90={:?} p99={:?} max={:?}",
        samples.len(),
        percentile(&samples, 50.0),
        percentile(&samples, 90.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or_default()
    )
}

async fn run(count: usize) -> Result<()> {
    // One user sending as fast as the server answers exceeds the default per-IP rate (50/s).
    let opts = ServerOptions {
        sip_extra: "rate_per_sec = 100000\nrate_burst = 100000\n".into(),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(Store::Sqlite, opts).await?;
    server.add_user("alice@localhost", "alice-pw").await?;
    server.add_user("bob@localhost", "bob-pw").await?;
    let room = room_jid("lobby");
    let room_uri = format!("sip:{room}");

    let mut bob = RawClient::login(
        server.starttls_addr(),
        &server.ca_path(),
        "bob",
        "bob-pw",
        "lat",
    )
    .await?;
    bob.join(&room, "bob", None).await?.joined()?;
    let mut alice = SipClient::connect_to(&server, SipTransport::Udp, "alice", "alice-pw").await?;
    anyhow::ensure!(alice.register(600).await? == 200, "REGISTER failed");
    anyhow::ensure!(
        alice.message(&room_uri, "#join alice").await? == 200,
        "#join failed"
    );
    alice
        .wait_message(|m| m.body.contains("You have joined"), STEP_TIMEOUT)
        .await?;

    let mut sip_to_xmpp = Vec::with_capacity(count);
    for i in 0..count {
        let body = format!("sip→xmpp {i}");
        let start = Instant::now();
        let code = alice.message(&room_uri, &body).await?;
        anyhow::ensure!(code == 200, "post {i} answered {code}");
        let got = bob.wait_groupchat(&room, &body).await?;
        sip_to_xmpp.push(start.elapsed());
        anyhow::ensure!(
            got.attr("from") == Some(format!("{room}/alice").as_str()),
            "post {i} came from {:?}",
            got.attr("from")
        );
    }

    let mut xmpp_to_sip = Vec::with_capacity(count);
    for i in 0..count {
        let body = format!("xmpp→sip {i}");
        let want = format!("bob: {body}");
        let start = Instant::now();
        bob.say(&room, &body).await?;
        let got = alice.wait_message(|m| m.body == want, STEP_TIMEOUT).await?;
        xmpp_to_sip.push(start.elapsed());
        anyhow::ensure!(
            got.display_name.as_deref() == Some("bob"),
            "from {:?}",
            got.display_name
        );
    }
    // Nothing else arrived out of order or twice.
    let stray: Vec<String> = alice
        .drain_inbox()
        .into_iter()
        .filter(|m| m.body.starts_with("bob: xmpp→sip"))
        .map(|m| m.body)
        .collect();
    anyhow::ensure!(stray.is_empty(), "duplicate deliveries to SIP: {stray:?}");

    println!(
        "MESSAGE retransmissions the SIP client saw: {}",
        alice.retransmits_seen()
    );
    println!("{}", report("SIP→room→XMPP", sip_to_xmpp));
    println!("{}", report("XMPP→room→SIP", xmpp_to_sip));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_between_sip_and_xmpp_in_order_and_are_timed() {
    let count = std::env::var("PALAVER_SIP_LATENCY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    must(run(count).await);
}
