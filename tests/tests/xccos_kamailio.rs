//! Lync group chat through a SIP front end (docs/xccos.md "Behind a proxy", docs/sip-proxy.md):
//! alice's pidgin-sipe replay talks only to a real Kamailio that forwards `ocschat@` and
//! `conference.localhost` to palaver and record-routes them. The lookup and pool INVITEs are
//! digest-challenged by palaver through the proxy, the in-dialog INFOs follow the route set,
//! and palaver's own INFOs (replies, notices, room messages) come back through Kamailio (its
//! Via on top). In the lobby alice chats with bob on XMPP and carol on the SIP pager.

mod sip_common;

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::kamailio::Kamailio;
use palaver_e2e::xccos_client::{XccosClient, LOOKUP_URI};
use palaver_e2e::{must, password_of, room_jid, SipTransport, Store, TestServer, STEP_TIMEOUT};
use sip_common::{presence, send_expect, sip, start, text_from, xmpp};

const LOBBY: &str = "ma-chan://localhost/lobby";

async fn scenario(server: &TestServer, kamailio: &Kamailio) -> Result<()> {
    let lobby = room_jid("lobby");
    let mut bob = xmpp(server, "bob").await?;
    bob.join(&lobby, "bob", None).await?.joined()?;
    let mut carol = sip(server, SipTransport::Tcp, "carol").await?;
    send_expect(&mut carol, "lobby", "#join carol", 200).await?;

    let mut alice = XccosClient::connect(
        SipTransport::Tcp,
        kamailio.tcp_addr(),
        "alice",
        &password_of("alice"),
        &server.ca_path(),
    )
    .await?;
    alice
        .start(LOOKUP_URI)
        .await
        .context("sign-in through Kamailio")?;
    let dialog = alice.dialog().cloned().context("pool dialog")?;
    ensure!(
        !dialog.route.is_empty()
            && dialog
                .route
                .iter()
                .all(|r| r.contains(&kamailio.tcp_addr().port().to_string())),
        "the pool dialog's route set is Kamailio's Record-Route: {:?}",
        dialog.route
    );
    // Every INFO palaver sent came through Kamailio: its Via on top, palaver's below.
    let infos = alice.server_infos().to_vec();
    ensure!(!infos.is_empty(), "no server INFO");
    for info in &infos {
        let vias: Vec<&str> = info.message.header_values("Via").collect();
        ensure!(
            vias.len() >= 2 && vias[0].contains(&kamailio.tcp_addr().port().to_string()),
            "INFO not relayed by Kamailio: {vias:?}"
        );
    }

    let room = alice.join(LOBBY).await?;
    ensure!(room.members.len() == 3, "members {:?}", room.members);
    presence(&mut bob, &lobby, "alice", true).await?;
    ensure!(alice.send(LOBBY, "via the proxy").await? == 200, "grpchat");
    bob.wait_groupchat(&lobby, "via the proxy").await?;
    text_from(&mut carol, "lobby", "alice: via the proxy").await?;
    bob.say(&lobby, "back through Kamailio").await?;
    alice
        .wait_grpchat(|m| m.text == "back through Kamailio", STEP_TIMEOUT)
        .await?;
    ensure!(alice.refresh().await? == 200, "UPDATE through the proxy");
    let part = alice.part(LOBBY).await?;
    ensure!(part.code == 200, "{part:?}");
    presence(&mut bob, &lobby, "alice", false).await?;
    ensure!(alice.bye().await? == 200, "BYE through the proxy");
    Ok(())
}

#[tokio::test]
async fn sipe_reaches_palaver_through_kamailio() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol"]).await;
    let kamailio = must(Kamailio::start(server.sip_tcp()).await);
    let result = scenario(&server, &kamailio).await;
    must(result.with_context(|| {
        format!(
            "{}\n--- kamailio ---\n{}",
            server.diagnostics(),
            kamailio.log()
        )
    }));
}
