//! What real SIP clients send a room besides text (seen with Linphone 5.1): delivery receipts
//! (RFC 5438 `message/imdn+xml`, also inside CPIM) and typing notifications (RFC 3994) are
//! answered 200 and dropped — refusing them makes Linphone re-send every owed receipt at each
//! start; compressed bodies (Content-Encoding) get 415 with `Accept-Encoding: identity`;
//! a presence SUBSCRIBE gets 489 naming the one event package there is; and a command's reply
//! goes to the device that sent it, not to every registered device of the user.

mod sip_common;

use anyhow::{ensure, Result};
use palaver_e2e::sip_client::Method;
use palaver_e2e::{must, room_jid, SipTransport, Store};
use sip_common::{presence, room_uri, send_expect, sip, start, text_from, xmpp};
use std::time::Duration;

const IMDN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>x</message-id><datetime>2026-11-23T12:00:00Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>";
const COMPOSING: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\"><state>active</state><refresh>60</refresh></isComposing>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_typing_and_compressed_bodies() {
    let server = start(Store::Sqlite, &["alice", "bob"]).await;
    let result: Result<()> = async {
        let lobby = room_jid("lobby");
        let mut alice = xmpp(&server, "alice").await?;
        alice.join(&lobby, "alice", None).await?.joined()?;
        let mut bob = sip(&server, SipTransport::Udp, "bob").await?;
        send_expect(&mut bob, "lobby", "#join", 200).await?;
        text_from(&mut bob, "lobby", "as bob").await?;
        presence(&mut alice, &lobby, "bob", true).await?;
        let uri = room_uri("lobby");

        let receipt = bob
            .request(Method::Message, &uri, &[], Some("message/imdn+xml"), IMDN.as_bytes())
            .await?;
        ensure!(receipt.code == 200, "receipt: {receipt}");
        let cpim = format!(
            "From: <sip:bob@localhost>\r\nTo: <{uri}>\r\nNS: imdn <urn:ietf:params:imdn>\r\n\r\nContent-Type: message/imdn+xml\r\n\r\n{IMDN}"
        );
        let wrapped = bob
            .request(Method::Message, &uri, &[], Some("message/cpim"), cpim.as_bytes())
            .await?;
        ensure!(wrapped.code == 200, "receipt in CPIM: {wrapped}");
        let typing = bob
            .request(
                Method::Message,
                &uri,
                &[],
                Some("application/im-iscomposing+xml"),
                COMPOSING.as_bytes(),
            )
            .await?;
        ensure!(typing.code == 200, "typing: {typing}");
        let deflated = bob
            .request(
                Method::Message,
                &uri,
                &[("Content-Encoding", "deflate")],
                Some("text/plain"),
                b"x\x9c\xcbH\xcd\xc9\xc9\x07\x00\x06,\x02\x15",
            )
            .await?;
        ensure!(deflated.code == 415, "deflate: {deflated}");
        ensure!(
            deflated.header("Accept-Encoding") == Some("identity"),
            "no Accept-Encoding: {deflated}"
        );
        // None of it reached the room: the next groupchat alice sees is bob's real post.
        send_expect(&mut bob, "lobby", "a real post", 200).await?;
        let first = alice
            .wait_for(palaver_e2e::STEP_TIMEOUT, "bob's first groupchat", |el| {
                el.name == "message"
                    && el.attr("type") == Some("groupchat")
                    && palaver_e2e::xml::body(el).is_some()
            })
            .await?;
        ensure!(
            palaver_e2e::xml::body(&first).as_deref() == Some("a real post"),
            "the room got {}",
            palaver_e2e::xml::show(&first)
        );
        // And no error MESSAGE came back for the dropped ones.
        bob.expect_no_request(Duration::from_millis(300)).await?;

        let presence_sub = bob
            .request(
                Method::Subscribe,
                "sip:alice@localhost",
                &[("Event", "presence"), ("Expires", "600")],
                None,
                b"",
            )
            .await?;
        ensure!(presence_sub.code == 489, "presence SUBSCRIBE: {presence_sub}");
        ensure!(
            presence_sub.header("Allow-Events") == Some("conference"),
            "{presence_sub}"
        );
        Ok(())
    }
    .await;
    must(result.map_err(|e| e.context(server.diagnostics())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_reply_goes_to_the_device_that_sent_it() {
    let server = start(Store::Sqlite, &["bob"]).await;
    let result: Result<()> = async {
        let mut phone = sip(&server, SipTransport::Udp, "bob").await?;
        let mut desk = sip(&server, SipTransport::Tcp, "bob").await?;
        send_expect(&mut phone, "lobby", "#help", 200).await?;
        text_from(&mut phone, "lobby", "Commands").await?;
        desk.expect_no_request(Duration::from_millis(500)).await?;
        // Room traffic still reaches every device.
        send_expect(&mut desk, "lobby", "#join", 200).await?;
        text_from(&mut desk, "lobby", "as bob").await?;
        text_from(&mut phone, "lobby", "as bob").await?;
        Ok(())
    }
    .await;
    must(result.map_err(|e| e.context(server.diagnostics())));
}
