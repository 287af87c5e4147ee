//! SIP requests to users across a pool (docs/sip.md "Requests to users",
//! docs/pool-protocol.md `SipRelay`): three active nodes on one shared PostgreSQL schema
//! (`$PALAVER_TEST_PG`, else `$DATABASE_URL`). alice, registered on n1, sends MESSAGEs to bob,
//! registered on n2 only: n1 has no binding of bob, finds his registration in the store and
//! relays the request to its peers; n2 proxies it to bob and n1 answers alice with bob's
//! response (200, then 486 when bob is busy). bob answers back the same way; dave on n3 over
//! TCP is reached too; erin registered on n2 and n3 gets the message on both devices; a user
//! registered nowhere gets 480.

mod sip_common;

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::pool::{self, PoolCa, PoolSpec};
use palaver_e2e::sip_client::{Method, Response};
use palaver_e2e::{must, random_hex, SipClient, SipTransport, STEP_TIMEOUT};
use sip_common::{sip, sip_on};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(20);

async fn message(c: &mut SipClient, to: &str, text: &str) -> Result<Response> {
    c.request(
        Method::Message,
        to,
        &[],
        Some("text/plain;charset=UTF-8"),
        text.as_bytes(),
    )
    .await
    .with_context(|| format!("MESSAGE to {to}"))
}

#[tokio::test]
async fn messages_reach_users_registered_on_other_nodes() {
    let ca = must(PoolCa::new());
    let spec = must(PoolSpec::three_active());
    let pool = must(pool::start_shared_pg_pool(&spec, &ca, &["n1", "n2", "n3"]).await);
    must(pool.wait_all_up(CONVERGE).await);
    must(
        pool.add_users(&["alice", "bob", "carol", "dave", "erin"])
            .await,
    );
    must(
        async {
            let mut alice = sip_on(&pool, "n1", "alice").await?;
            let mut bob = sip_on(&pool, "n2", "bob").await?;
            let mut dave = sip(pool.node("n3")?, SipTransport::Tcp, "dave").await?;

            // n1 → n2: bob gets alice's MESSAGE as sent; alice gets bob's 200.
            let text = format!("hello bob across the pool {}", random_hex(8));
            let r = message(&mut alice, "sip:bob@localhost", &text).await?;
            ensure!(r.code == 200, "alice (n1) → bob (n2): {r}");
            let got = bob
                .wait_message(|m| m.body == text, STEP_TIMEOUT)
                .await
                .context("bob waiting for alice's MESSAGE")?;
            ensure!(got.from == "sip:alice@localhost", "From: {}", got.from);
            ensure!(
                got.message.call_id() == r.message.call_id(),
                "Call-ID changed"
            );
            ensure!(
                got.message.vias().len() == 2,
                "one Via of the proxying node over alice's: {:?}",
                got.message.vias()
            );
            ensure!(
                r.message.vias().len() == 1 && r.message.to().tag().is_some(),
                "alice's response: {}",
                palaver_e2e::sip_client::show(&r.raw)
            );

            // bob busy: 486 relayed back through n2 and n1.
            bob.set_auto_reply(486);
            let r = message(&mut alice, "sip:bob@localhost", "busy?").await?;
            ensure!(r.code == 486, "alice → busy bob: {r}");
            bob.set_auto_reply(200);

            // n2 → n1, and n1 → n3 over TCP.
            let r = message(&mut bob, "sip:alice@localhost", "hi alice").await?;
            ensure!(r.code == 200, "bob (n2) → alice (n1): {r}");
            alice
                .wait_message(|m| m.body == "hi alice", STEP_TIMEOUT)
                .await?;
            let r = message(&mut alice, "sip:dave@localhost", "hi dave").await?;
            ensure!(r.code == 200, "alice (n1) → dave (n3, TCP): {r}");
            dave.wait_message(|m| m.body == "hi dave", STEP_TIMEOUT)
                .await?;

            // erin on n2 and n3: both devices get it.
            let mut erin2 = sip_on(&pool, "n2", "erin").await?;
            let mut erin3 = sip_on(&pool, "n3", "erin").await?;
            let r = message(&mut alice, "sip:erin@localhost", "hi erin").await?;
            ensure!(r.code == 200, "alice → erin (n2 and n3): {r}");
            erin2
                .wait_message(|m| m.body == "hi erin", STEP_TIMEOUT)
                .await?;
            erin3
                .wait_message(|m| m.body == "hi erin", STEP_TIMEOUT)
                .await?;

            // Registered nowhere: 480.
            let r = message(&mut alice, "sip:carol@localhost", "hi carol").await?;
            ensure!(r.code == 480, "alice → carol (nowhere): {r}");
            Ok(())
        }
        .await,
    );
}
