//! Unparsable and oversized requests: a stateless 400 (505 for another SIP version, 513 when
//! too big) over UDP and TCP, nothing posted or stored; framing errors on TCP answered when
//! possible and the connection closed (its registration and room presence going with it);
//! plain text on the TLS port refused; and the sessions of others unharmed.

use super::common::*;
use anyhow::{ensure, Context as _, Result};
use palaver_e2e::sip_client::Method;
use palaver_e2e::{must, SipTransport};
use std::time::Duration;

/// One way to break a valid MESSAGE whose body would be a post. Every result still carries
/// Via, From, To, Call-ID and CSeq in a shape the stateless 400 can echo.
type Mangle = (&'static str, fn(&str) -> String);

const START: &str = "MESSAGE sip:lobby@conference.localhost SIP/2.0";

/// Breaks of the header section only: the body and its Content-Length stay right, so these
/// still frame on TCP.
const MANGLES: [Mangle; 7] = [
    ("no Request-URI", |m| {
        m.replacen(START, "MESSAGE SIP/2.0", 1)
    }),
    ("a Request-URI in angle brackets", |m| {
        m.replacen(START, "MESSAGE <sip:lobby@conference.localhost> SIP/2.0", 1)
    }),
    ("a header line without a colon", |m| {
        m.replacen("\r\n", "\r\nThis line is not a header\r\n", 1)
    }),
    ("a CSeq naming another method", |m| {
        m.replacen(" MESSAGE\r\n", " OPTIONS\r\n", 1)
    }),
    ("Max-Forwards that is not a number", |m| {
        m.replacen("Max-Forwards: 70", "Max-Forwards: seventy", 1)
    }),
    ("two To headers", |m| {
        m.replacen("\r\nTo: ", "\r\nTo: <sip:bob@localhost>\r\nTo: ", 1)
    }),
    ("a control byte in a header", |m| {
        m.replacen("\r\nTo: ", "\r\nSubject: a\u{1}b\r\nTo: ", 1)
    }),
];

/// Marks the bodies of refused posts: none may reach the archive.
const MARKER: &str = "garbage-post";

/// Sends each mangled MESSAGE (body `MARKER-n`) from `c` and requires a 400 echoing its
/// Call-ID.
async fn send_mangled(c: &mut palaver_e2e::SipClient, mangles: &[Mangle]) -> Result<()> {
    for (i, (what, mangle)) in mangles.iter().enumerate() {
        let valid = request_text(
            c,
            Method::Message,
            &lobby_uri(),
            Some(&format!("{MARKER}-{i}")),
        );
        let bad = mangle(&valid);
        ensure!(bad != valid, "the mangle {what:?} changed nothing");
        let r = expect_status(c, bad.as_bytes(), 400)
            .await
            .with_context(|| format!("a MESSAGE with {what}"))?;
        let call_id = valid
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: "))
            .unwrap_or_default();
        ensure!(
            r.message.call_id() == call_id,
            "the 400 to {what} is for another request: {}",
            first_line(&r.raw)
        );
    }
    Ok(())
}

#[tokio::test]
async fn malformed_requests_over_udp_get_400_and_post_nothing() {
    let server = server(&["alice", "xavier", "sally"], "").await;
    must(
        async {
            let mut by = Bystanders::join(&server, SipTransport::Tcp, None).await?;
            let mut alice = sip_in_lobby(&server, SipTransport::Udp, "alice", None).await?;
            send_mangled(&mut alice, &MANGLES).await?;
            // UDP only: a body shorter than its Content-Length.
            let valid = request_text(&alice, Method::Message, &lobby_uri(), Some(MARKER));
            let long = valid.replacen("Content-Length: ", "Content-Length: 9", 1);
            expect_status(&mut alice, long.as_bytes(), 400).await?;
            // Another SIP version: 505.
            let valid = request_text(&alice, Method::Message, &lobby_uri(), Some(MARKER));
            let future = valid.replacen(" SIP/2.0\r\n", " SIP/3.0\r\n", 1);
            expect_status(&mut alice, future.as_bytes(), 505).await?;
            // Without a Call-ID nothing can be answered: the request is dropped.
            let headless = valid
                .lines()
                .filter(|l| !l.starts_with("Call-ID:"))
                .collect::<Vec<_>>()
                .join("\r\n");
            alice.send_raw(headless.as_bytes()).await?;

            // The same flow still posts, and only that post is stored.
            let code = alice.message(&lobby_uri(), "alice posts properly").await?;
            ensure!(code == 200, "a valid post after the garbage got {code}");
            by.xmpp
                .wait_groupchat(&lobby(), "alice posts properly")
                .await?;
            if let Ok(frame) = alice.recv_raw_frame(Duration::from_millis(300)).await {
                anyhow::bail!(
                    "unexpected answer: {}",
                    palaver_e2e::sip_client::show(&frame.bytes)
                );
            }
            archive_check(&mut by.xmpp, MARKER, &["alice posts properly"]).await?;
            by.still_work().await
        }
        .await,
    );
}

#[tokio::test]
async fn malformed_requests_over_tcp_get_400_and_framing_errors_close_the_connection() {
    let server = server(&["alice", "xavier", "sally"], "").await;
    must(
        async {
            let mut by = Bystanders::join(&server, SipTransport::Udp, None).await?;
            // A well-framed but unparsable request is answered and the connection stays.
            let mut alice = sip_in_lobby(&server, SipTransport::Tcp, "alice", None).await?;
            send_mangled(&mut alice, &MANGLES).await?;
            ensure!(!alice.is_closed(), "a parse error closed the connection");
            let code = alice.message(&lobby_uri(), "alice over tcp").await?;
            ensure!(code == 200, "a valid post after the garbage got {code}");
            by.xmpp.wait_groupchat(&lobby(), "alice over tcp").await?;

            // Framing errors: answered 400 when the header section can be echoed, then closed.
            let framing: [Mangle; 3] = [
                ("no Content-Length", |m| {
                    let (head, body) = m.split_once("\r\n\r\n").unwrap_or((m, ""));
                    let head: Vec<&str> = head
                        .lines()
                        .filter(|l| !l.starts_with("Content-Length:"))
                        .collect();
                    format!("{}\r\n\r\n{body}", head.join("\r\n"))
                }),
                ("a Content-Length that is not a number", |m| {
                    m.replacen("Content-Length: ", "Content-Length: x", 1)
                }),
                ("two different Content-Lengths", |m| {
                    m.replacen(
                        "Content-Length: ",
                        "Content-Length: 3\r\nContent-Length: ",
                        1,
                    )
                }),
            ];
            for (what, mangle) in framing {
                let mut c = sip(&server, SipTransport::Tcp, "alice", None).await?;
                let valid = request_text(&c, Method::Message, &lobby_uri(), Some(MARKER));
                let r = expect_status(&mut c, mangle(&valid).as_bytes(), 400)
                    .await
                    .with_context(|| format!("a MESSAGE with {what}"))?;
                ensure!(r.header("Via").is_some(), "{what}: a 400 without Via");
                c.wait_closed(WAIT)
                    .await
                    .with_context(|| format!("after {what}"))?;
            }
            // Something that is not SIP at all (an HTTP request on the SIP port): nothing to
            // answer, the connection closes.
            let mut c = sip(&server, SipTransport::Tcp, "alice", None).await?;
            c.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await?;
            c.wait_closed(WAIT).await.context("after an HTTP request")?;
            if let Ok(frame) = c.recv_raw_frame(Duration::from_millis(100)).await {
                anyhow::bail!(
                    "answered HTTP: {}",
                    palaver_e2e::sip_client::show(&frame.bytes)
                );
            }

            // Plain SIP on the TLS port is a failed handshake: closed.
            let mut c = palaver_e2e::SipClient::connect(
                SipTransport::Tcp,
                server.sip_tls(),
                "alice",
                &password("alice"),
                &server.ca_path(),
            )
            .await?;
            let options = request_text(&c, Method::Options, "sip:localhost", None);
            c.send_raw(options.as_bytes()).await?;
            c.wait_closed(WAIT)
                .await
                .context("plain SIP on the TLS port")?;

            // alice's own connection was not affected.
            let code = alice.message(&lobby_uri(), "alice still over tcp").await?;
            ensure!(code == 200, "alice's post got {code}");
            by.xmpp
                .wait_groupchat(&lobby(), "alice still over tcp")
                .await?;
            archive_check(
                &mut by.xmpp,
                MARKER,
                &["alice over tcp", "alice still over tcp"],
            )
            .await?;

            // A framing error on alice's own connection (registered, in the room, subscribed
            // to its events) closes it, and she leaves the room with it.
            let r = alice.subscribe(&lobby_uri(), 600).await?;
            ensure!(r.is_success(), "SUBSCRIBE got {r}");
            let valid = request_text(&alice, Method::Message, &lobby_uri(), Some(MARKER));
            let bad = valid.replacen("Content-Length: ", "Content-Length: x", 1);
            expect_status(&mut alice, bad.as_bytes(), 400).await?;
            alice
                .wait_closed(WAIT)
                .await
                .context("alice's connection")?;
            let alice_nick = format!("{}/alice", lobby());
            by.xmpp
                .wait_for(WAIT, "alice leaving the lobby", |el| {
                    el.name == "presence"
                        && el.attr("type") == Some("unavailable")
                        && el.attr("from") == Some(alice_nick.as_str())
                })
                .await?;
            by.still_work().await
        }
        .await,
    );
}

#[tokio::test]
async fn oversized_messages_get_513() {
    // The limit is small for the test; max_post_bytes must not exceed it.
    let server = server(
        &["alice", "xavier", "sally"],
        "max_message_bytes = 2000\nmax_post_bytes = 1000\n",
    )
    .await;
    must(
        async {
            let mut by = Bystanders::join(&server, SipTransport::Tcp, None).await?;
            let big = format!("{MARKER} {}", "x".repeat(2500));
            // UDP: a datagram over the limit.
            let mut alice = sip_in_lobby(&server, SipTransport::Udp, "alice", None).await?;
            let datagram = request_text(&alice, Method::Message, &lobby_uri(), Some(&big));
            let r = expect_status(&mut alice, datagram.as_bytes(), 513).await?;
            ensure!(r.header("Via").is_some(), "a 513 without Via");
            // Under the message limit but over the post limit: the room refuses it (413).
            let medium = format!("{MARKER} {}", "y".repeat(1200));
            let code = alice.message(&lobby_uri(), &medium).await?;
            ensure!(
                code == 413,
                "a 1.2 kB post with max_post_bytes = 1000 got {code}"
            );

            // TCP: a Content-Length announcing too much is answered before the body, then the
            // connection closes; so does a message that is really too big.
            for (what, content_length) in
                [("a huge Content-Length", "100000000"), ("a big body", "")]
            {
                let mut c = sip(&server, SipTransport::Tcp, "alice", None).await?;
                let text = request_text(&c, Method::Message, &lobby_uri(), Some(&big));
                let text = if content_length.is_empty() {
                    text
                } else {
                    let head = text.split("\r\n\r\n").next().unwrap_or_default();
                    let head: Vec<String> = head
                        .lines()
                        .map(|l| match l.starts_with("Content-Length:") {
                            true => format!("Content-Length: {content_length}"),
                            false => l.to_string(),
                        })
                        .collect();
                    format!("{}\r\n\r\n", head.join("\r\n"))
                };
                expect_status(&mut c, text.as_bytes(), 513)
                    .await
                    .with_context(|| format!("TCP with {what}"))?;
                c.wait_closed(WAIT)
                    .await
                    .with_context(|| format!("after {what}"))?;
            }
            // A header section that never ends: nothing can be answered; the connection closes.
            let mut c = sip(&server, SipTransport::Tcp, "alice", None).await?;
            let text = request_text(&c, Method::Options, "sip:localhost", None);
            let endless =
                text.replacen("\r\n", &format!("\r\nX-Junk: {}\r\n", "j".repeat(3000)), 1);
            let head = endless.split("\r\n\r\n").next().unwrap_or_default();
            c.send_raw(head.as_bytes()).await?;
            c.wait_closed(WAIT)
                .await
                .context("after an endless header")?;

            let code = alice
                .message(&lobby_uri(), "alice after the big ones")
                .await?;
            ensure!(code == 200, "a normal post got {code}");
            by.xmpp
                .wait_groupchat(&lobby(), "alice after the big ones")
                .await?;
            archive_check(&mut by.xmpp, MARKER, &["alice after the big ones"]).await?;
            by.still_work().await
        }
        .await,
    );
}
