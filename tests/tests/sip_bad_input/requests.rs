//! Well-formed requests the server must refuse or treat specially: unknown and unsupported
//! methods (405 with `Allow`), loops (483), requests to anything but a room (404), requests
//! without credentials (407 offering SHA-256 and MD5; MD5 only for baresip 1.x), too-short
//! registrations (423 with `Min-Expires`), and retransmissions (the same response again,
//! processed once).

use super::common::*;
use anyhow::{ensure, Context as _, Result};
use palaver_e2e::sip_client::digest::{authorization, pick_challenge, DigestAnswer};
use palaver_e2e::sip_client::{show, DigestAlgo, Method, Response};
use palaver_e2e::{must, SipTransport};
use std::time::Duration;

/// What baresip 1.0 as shipped by Debian 12 says.
const BARESIP: &str = "baresip v1.0.0 (x86_64/linux)";

/// Marks posts that must not be stored.
const MARKER: &str = "refused-post";

/// The digest algorithms offered in a 401/407 (`header`: WWW- or Proxy-Authenticate).
fn offered(r: &Response, header: &str) -> Vec<&'static str> {
    r.message
        .header_values(header)
        .filter_map(|v| pick_challenge([v], None))
        .filter_map(|c| c.algo.map(DigestAlgo::name))
        .collect()
}

/// Checks the `Allow` value of a 405 or an OPTIONS 200.
fn ensure_allow(allow: Option<&str>, what: &str) -> Result<()> {
    let allow = allow.unwrap_or_default();
    for method in [
        "REGISTER",
        "MESSAGE",
        "SUBSCRIBE",
        "OPTIONS",
        "INVITE",
        "INFO",
        "UPDATE",
        "BYE",
    ] {
        ensure!(
            allow.contains(method),
            "{what}: Allow {allow:?} lacks {method}"
        );
    }
    ensure!(
        !allow.contains("PUBLISH"),
        "{what}: Allow {allow:?} names PUBLISH"
    );
    Ok(())
}

/// The status code and `Allow` of a response read as text: the codec (and so
/// [`Response::parse`]) refuses a CSeq naming an extension method such as `FOO`.
fn status_and_allow(raw: &[u8]) -> (Option<u16>, Option<String>) {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let code = lines
        .next()
        .and_then(|l| l.strip_prefix("SIP/2.0 "))
        .and_then(|l| l.get(..3))
        .and_then(|c| c.parse().ok());
    let allow = lines
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("Allow:"))
        .map(|v| v.trim().to_string());
    (code, allow)
}

#[tokio::test]
async fn unknown_and_unsupported_methods_get_405_with_allow() {
    let server = server(&["bob", "xavier", "sally"], "").await;
    must(
        async {
            let mut by = Bystanders::join(&server, SipTransport::Udp, None).await?;
            for transport in [SipTransport::Udp, SipTransport::Tcp] {
                let mut bob = sip(&server, transport, "bob", None).await?;
                let options = request_text(&bob, Method::Options, "sip:localhost", None);
                let requests = [
                    ("FOO", options.replace("OPTIONS", "FOO")),
                    ("lowercase message", options.replace("OPTIONS", "message")),
                    (
                        "PUBLISH",
                        request_text(&bob, Method::Publish, "sip:bob@localhost", None),
                    ),
                ];
                for (what, text) in requests {
                    let what = format!("{what} over {transport}");
                    bob.send_raw(text.as_bytes()).await?;
                    let raw = bob.recv_raw(WAIT).await.with_context(|| what.clone())?;
                    let (code, allow) = status_and_allow(&raw);
                    ensure!(code == Some(405), "{what} got {}", show(&raw));
                    ensure_allow(allow.as_deref(), &what)?;
                }
                // INVITE is known (Lync group chat), but a room takes no sessions: 488.
                let invite = request_text(&bob, Method::Invite, &lobby_uri(), None);
                bob.send_raw(invite.as_bytes()).await?;
                let raw = bob.recv_raw(WAIT).await.context("INVITE to a room")?;
                let (code, _) = status_and_allow(&raw);
                ensure!(code == Some(488), "INVITE to the lobby got {}", show(&raw));
                ensure!(!bob.is_closed(), "a 405 closed the {transport} connection");
                // OPTIONS is answered with the same Allow.
                let r = bob
                    .request(Method::Options, "sip:localhost", &[], None, b"")
                    .await?;
                ensure!(r.code == 200, "OPTIONS over {transport} got {r}");
                ensure_allow(r.header("Allow"), "OPTIONS")?;
            }
            by.still_work().await
        }
        .await,
    );
}

#[tokio::test]
async fn loops_strangers_and_short_registrations_are_refused() {
    let server = server(&["alice", "bob", "xavier", "sally"], "").await;
    must(
        async {
            let mut by = Bystanders::join(&server, SipTransport::Tcp, None).await?;
            let mut alice = sip_in_lobby(&server, SipTransport::Udp, "alice", None).await?;

            // A loop: Max-Forwards 0 gets 483, and the post is not made.
            let looped = alice
                .request_builder(Method::Message, &lobby_uri())
                .max_forwards(0)
                .body("text/plain", format!("{MARKER} loop").into_bytes())
                .build()?;
            expect_status(&mut alice, &looped.bytes, 483).await?;

            // Anything but a room: 404.
            for uri in [
                "sip:someone@localhost",
                "sip:lobby@example.org",
                "sip:localhost",
            ] {
                let r = alice
                    .request(
                        Method::Message,
                        uri,
                        &[],
                        Some("text/plain"),
                        MARKER.as_bytes(),
                    )
                    .await?;
                ensure!(r.code == 404, "MESSAGE {uri} got {r}");
            }

            // A flow without a registration: 407 offering SHA-256 and MD5 (in that order)…
            let mut bob = sip(&server, SipTransport::Udp, "bob", None).await?;
            let r = bob
                .request_raw(
                    Method::Message,
                    &lobby_uri(),
                    &[],
                    Some("text/plain"),
                    b"#help",
                )
                .await?;
            ensure!(r.code == 407, "an unauthenticated MESSAGE got {r}");
            let algos = offered(&r, "Proxy-Authenticate");
            ensure!(
                algos == ["SHA-256", "MD5"],
                "407 offers {algos:?}:\n{}",
                show(&r.raw)
            );
            let r = bob
                .request(
                    Method::Message,
                    &lobby_uri(),
                    &[],
                    Some("text/plain"),
                    b"#help",
                )
                .await?;
            ensure!(r.code == 200, "#help with SHA-256 credentials got {r}");
            // …and only MD5 to baresip 1.x, whose answer is accepted.
            let ua = [("User-Agent", BARESIP)];
            let r = bob
                .request_raw(
                    Method::Message,
                    &lobby_uri(),
                    &ua,
                    Some("text/plain"),
                    b"#help",
                )
                .await?;
            ensure!(r.code == 407, "baresip's MESSAGE got {r}");
            let algos = offered(&r, "Proxy-Authenticate");
            ensure!(
                algos == ["MD5"],
                "407 to baresip offers {algos:?}:\n{}",
                show(&r.raw)
            );
            let r = bob
                .request(
                    Method::Message,
                    &lobby_uri(),
                    &ua,
                    Some("text/plain"),
                    b"#help",
                )
                .await?;
            ensure!(
                r.code == 200,
                "#help with baresip's MD5 credentials got {r}"
            );
            // The registrar challenges the same way (401).
            for (headers, want) in [(&[][..], &["SHA-256", "MD5"][..]), (&ua[..], &["MD5"][..])] {
                let register = register_request(&bob, &call_id(), 1, headers);
                let r = expect_status(&mut bob, &register, 401).await?;
                let algos = offered(&r, "WWW-Authenticate");
                ensure!(algos == want, "401 ({headers:?}) offers {algos:?}");
            }

            // Too short a registration: 423 with Min-Expires (the default 60); the existing
            // registration is untouched.
            let r = alice.register_response(30).await?;
            ensure!(r.code == 423, "REGISTER for 30 s got {r}");
            ensure!(
                r.header("Min-Expires") == Some("60"),
                "423 without Min-Expires: 60:\n{}",
                show(&r.raw)
            );
            let code = alice
                .message(&lobby_uri(), "alice is still registered")
                .await?;
            ensure!(code == 200, "alice's post after the 423 got {code}");

            archive_check(&mut by.xmpp, MARKER, &["alice is still registered"]).await?;
            by.still_work().await
        }
        .await,
    );
}

/// The next unclaimed response, which must be byte-for-byte `first`.
async fn same_again(c: &mut palaver_e2e::SipClient, first: &Response, what: &str) -> Result<()> {
    let again = c.recv_raw_response(WAIT).await.context(what.to_string())?;
    ensure!(
        again.raw == first.raw,
        "{what}: a different response to the retransmission:\n{}\n---- first ----\n{}",
        show(&again.raw),
        show(&first.raw)
    );
    Ok(())
}

#[tokio::test]
async fn retransmissions_get_the_same_response_and_are_processed_once() {
    let server = server(&["alice", "xavier", "sally"], "").await;
    must(
        async {
            let mut by = Bystanders::join(&server, SipTransport::Tcp, None).await?;
            let mut alice = sip(&server, SipTransport::Udp, "alice", None).await?;

            // REGISTER without credentials, twice: the same 401 (same nonce).
            let call = call_id();
            let first = register_request(&alice, &call, 1, &[]);
            let challenge = expect_status(&mut alice, &first, 401).await?;
            alice.send_raw(&first).await?;
            same_again(&mut alice, &challenge, "the 401").await?;

            // With credentials, twice: the same 200. Processing it twice would reuse the nonce
            // count, which the server refuses as a replay.
            let offered: Vec<&str> = challenge
                .message
                .header_values("WWW-Authenticate")
                .collect();
            let picked = pick_challenge(offered, None).context("no usable challenge")?;
            let pw = password("alice");
            let answer = authorization(
                &picked,
                &DigestAnswer {
                    username: "alice",
                    password: &pw,
                    method: "REGISTER",
                    uri: "sip:localhost",
                    cnonce: "0a4f113b",
                    nc: 1,
                },
            );
            let second = register_request(&alice, &call, 2, &[("Authorization", &answer)]);
            let ok = expect_status(&mut alice, &second, 200).await?;
            alice.send_raw(&second).await?;
            same_again(&mut alice, &ok, "the 200 to REGISTER").await?;

            // A post sent twice at once and once more after the answer: one 200 each time it
            // is answered (a copy that arrives while the first is processed may be dropped),
            // all identical, and one message in the room.
            let code = alice.message(&lobby_uri(), "#join alice").await?;
            ensure!(code == 200, "#join got {code}");
            let post = request_text(&alice, Method::Message, &lobby_uri(), Some("posted once"));
            alice.send_raw(post.as_bytes()).await?;
            alice.send_raw(post.as_bytes()).await?;
            let ok = alice.recv_raw_response(WAIT).await?;
            ensure!(ok.code == 200, "the post got {ok}");
            alice.send_raw(post.as_bytes()).await?;
            same_again(&mut alice, &ok, "the 200 to the post").await?;
            while let Ok(extra) = alice.recv_raw_response(Duration::from_millis(300)).await {
                ensure!(extra.raw == ok.raw, "another answer: {}", show(&extra.raw));
            }
            by.xmpp.wait_groupchat(&lobby(), "posted once").await?;
            let bodies = archived(&mut by.xmpp).await?;
            let copies = bodies.iter().filter(|b| *b == "posted once").count();
            ensure!(copies == 1, "the post is stored {copies} times: {bodies:?}");
            by.still_work().await
        }
        .await,
    );
}
