//! SIP requests to users across a pool (docs/sip.md "Requests to users",
//! docs/pool-protocol.md `SipRelay`): three active nodes on one shared PostgreSQL schema
//! (`$PALAVER_TEST_PG`, else `$DATABASE_URL`). alice, registered on n1, sends MESSAGEs to bob,
//! registered on n2 only: n1 has no binding of bob, finds his registration in the store and
//! relays the request to its peers; n2 proxies it to bob and n1 answers alice with bob's
//! response (200, then 486 when bob is busy). bob answers back the same way; dave on n3 over
//! TCP is reached too; erin registered on n2 and n3 gets the message on both devices; a user
//! registered nowhere gets 480.

mod sip_common;

use anyhow::ensure;
use palaver_e2e::pool::{self, PoolCa, PoolSpec};
use palaver_e2e::{must, random_hex, SipTransport, STEP_TIMEOUT};
use sip_common::{alice_to_bob, message, sip, sip_on};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(20);

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
            let (r, got) = alice_to_bob(
                &mut alice,
                &mut bob,
                "sip:bob@localhost",
                &text,
                "alice (n1) → bob (n2)",
            )
            .await?;
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
