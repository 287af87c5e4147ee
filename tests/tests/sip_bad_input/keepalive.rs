//! TCP keep-alives (RFC 5626 §4.4.1): a connection that sends only CRLFCRLF pings gets a CRLF
//! pong for each and stays open past `sip.idle_timeout_secs`; a silent one is closed after it,
//! and a SIP occupant whose connection was closed leaves the room.

use super::common::*;
use anyhow::{ensure, Context as _, Result};
use palaver_e2e::{must, SipTransport};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The idle timeout of these tests, in seconds.
const IDLE_SECS: u64 = 3;

/// Reads exactly the two bytes of a pong.
async fn pong(tcp: &mut TcpStream) -> Result<()> {
    let mut got = [0u8; 2];
    tokio::time::timeout(WAIT, tcp.read_exact(&mut got))
        .await
        .context("no pong in time")?
        .context("the connection ended instead of a pong")?;
    ensure!(&got == b"\r\n", "a pong that is not CRLF: {got:?}");
    Ok(())
}

#[tokio::test]
async fn keepalives_get_pongs_and_silent_connections_are_closed() {
    let server = server(
        &["alice", "xavier", "sally"],
        &format!("idle_timeout_secs = {IDLE_SECS}\n"),
    )
    .await;
    must(
        async {
            let mut by = Bystanders::join(&server, SipTransport::Udp, None).await?;
            // alice is in the room over TCP, subscribed to its conference events, and then
            // says nothing.
            let mut alice = sip_in_lobby(&server, SipTransport::Tcp, "alice", None).await?;
            let r = alice.subscribe(&lobby_uri(), 600).await?;
            ensure!(r.is_success(), "SUBSCRIBE got {r}");
            alice.wait_notify(WAIT).await?;

            // A connection sending only pings, for twice the idle timeout: a pong for each,
            // and it stays open.
            let mut pinger = TcpStream::connect(server.sip_tcp()).await?;
            let pings = 4 * IDLE_SECS;
            for _ in 0..pings {
                pinger.write_all(b"\r\n\r\n").await?;
                pong(&mut pinger).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // The SIP client sees the pongs too.
            let sally_tcp = sip(&server, SipTransport::Tcp, "sally", None).await?;
            sally_tcp.send_raw(b"\r\n\r\n").await?;
            let deadline = tokio::time::Instant::now() + WAIT;
            while sally_tcp.pongs_seen() == 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ensure!(
                sally_tcp.pongs_seen() == 1,
                "the SIP client saw {} pongs",
                sally_tcp.pongs_seen()
            );

            // Silent from now on: closed (no bytes, just the end of the stream).
            let mut rest = Vec::new();
            let read = tokio::time::timeout(WAIT, pinger.read_to_end(&mut rest)).await;
            ensure!(
                matches!(read, Ok(Ok(0))),
                "the silent connection was not closed: {read:?} {rest:?}"
            );
            let why = alice.wait_closed(WAIT).await?;
            eprintln!("alice's connection: {why}");
            // …and alice left the room with it.
            by.xmpp
                .wait_for(WAIT, "alice leaving the lobby", |el| {
                    el.name == "presence"
                        && el.attr("type") == Some("unavailable")
                        && el.attr("from") == Some(format!("{}/alice", lobby()).as_str())
                })
                .await?;
            by.still_work().await
        }
        .await,
    );
}
