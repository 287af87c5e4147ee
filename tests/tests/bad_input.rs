//! Bad input gets a clear error, and nothing else is harmed (issue "Bad input"): malformed XML,
//! oversized and too deeply nested stanzas, DOCTYPE/entities, unknown IQs, wrong passwords and
//! the per-IP back-off, PLAIN before TLS, members-only/password rooms, nick conflicts, a client
//! sending garbage next to others, and a slow consumer. Each test runs its own server (SQLite)
//! so they run in parallel without sharing state (the login back-off is per server and IP).

use palaver_e2e::raw_client::{JoinOutcome, RawClient, SaslOutcome};
use palaver_e2e::xml::{self, esc};
use palaver_e2e::{must, room_jid, ServerOptions, Store, TestServer, STEP_TIMEOUT};
use std::net::IpAddr;
use std::time::Duration;

async fn server_with_users(users: &[&str]) -> TestServer {
    server_with(users, ServerOptions::default()).await
}

async fn server_with(users: &[&str], opts: ServerOptions) -> TestServer {
    TestServer::start_with_users(Store::Sqlite, opts, users).await
}

fn password(user: &str) -> String {
    palaver_e2e::password_of(user)
}

async fn login(server: &TestServer, user: &str) -> anyhow::Result<RawClient> {
    RawClient::login(
        server.starttls_addr(),
        &server.ca_path(),
        user,
        &password(user),
        "raw",
    )
    .await
}

/// Sends `bytes` (ignoring a write error: the server may close first) and returns the stream
/// error condition, requiring the server to close the stream afterwards.
async fn send_and_expect_error(client: &mut RawClient, bytes: &[u8]) -> anyhow::Result<String> {
    if let Err(e) = client.send_raw(bytes).await {
        eprintln!("write failed (the server may have closed early): {e:#}");
    }
    let seen = client.expect_stream_error(STEP_TIMEOUT).await?;
    anyhow::ensure!(
        seen.closed,
        "the server sent <{}/> but did not close the stream",
        seen.condition
    );
    Ok(seen.condition)
}

#[tokio::test]
async fn malformed_xml_gets_not_well_formed_and_the_stream_closes() {
    let server = server_with_users(&["alice"]).await;
    must(
        async {
            // A logged-in session sends a mismatched end tag.
            let mut c = login(&server, "alice").await?;
            let cond = send_and_expect_error(
                &mut c,
                b"<message to='localhost' type='chat'><body>oops</bdy></message>",
            )
            .await?;
            anyhow::ensure!(cond == "not-well-formed", "mismatched tag gave <{cond}/>");

            // Before authentication too, on a fresh TLS stream.
            let mut c = RawClient::connect_tls(server.starttls_addr(), &server.ca_path()).await?;
            let cond =
                send_and_expect_error(&mut c, b"<iq type='get' id='1'><query></qery></iq>").await?;
            anyhow::ensure!(
                cond == "not-well-formed",
                "unauthenticated garbage gave <{cond}/>"
            );

            // The server is fine afterwards.
            let mut c = login(&server, "alice").await?;
            c.iq_ok("<iq type='get' to='localhost' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>")
                .await?;
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn malformed_xml_that_never_completes_a_stanza_is_still_rejected_at_once() {
    let server = server_with_users(&["alice"]).await;
    must(
        async {
            // Each of these is not well-formed as soon as it is read; none of them is the start
            // of a valid stanza that more bytes could complete.
            for garbage in [
                &b"<iq type=get id='1'/>"[..],
                b"<iq type='get' id='1'><query></iq>",
                b"<message to='localhost'>a < b</message>",
            ] {
                let mut c = login(&server, "alice").await?;
                let cond = send_and_expect_error(&mut c, garbage).await.map_err(|e| {
                    e.context(format!("sent {:?}", String::from_utf8_lossy(garbage)))
                })?;
                anyhow::ensure!(
                    cond == "not-well-formed",
                    "{:?} gave <{cond}/>",
                    String::from_utf8_lossy(garbage)
                );
            }
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn stanza_over_256_kib_gets_policy_violation() {
    let server = server_with_users(&["alice"]).await;
    must(
        async {
            let lobby = room_jid("lobby");
            let mut c = login(&server, "alice").await?;
            c.join(&lobby, "alice", None).await?.joined()?;
            // Just under the limit is fine: the message reaches the room.
            let big = "a".repeat(200 * 1024);
            c.say(&lobby, &big).await?;
            c.wait_groupchat(&lobby, &big).await?;
            // Over it: policy-violation.
            let huge = format!(
                "<message to='{}' type='groupchat'><body>{}</body></message>",
                esc(&lobby),
                "b".repeat(257 * 1024)
            );
            let cond = send_and_expect_error(&mut c, huge.as_bytes()).await?;
            anyhow::ensure!(
                cond == "policy-violation",
                "oversized stanza gave <{cond}/>"
            );
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn the_stanza_size_limit_is_configurable() {
    let opts = ServerOptions {
        xmpp_extra: "max_stanza_bytes = 4096\n".into(),
        ..ServerOptions::default()
    };
    let server = server_with(&["alice"], opts).await;
    must(
        async {
            let mut c = login(&server, "alice").await?;
            c.iq_ok("<iq type='get' to='localhost' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>")
                .await?;
            let stanza = format!(
                "<message to='localhost' type='chat'><body>{}</body></message>",
                "c".repeat(5000)
            );
            let cond = send_and_expect_error(&mut c, stanza.as_bytes()).await?;
            anyhow::ensure!(
                cond == "policy-violation",
                "a 5 KB stanza with max_stanza_bytes = 4096 gave <{cond}/>"
            );
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn nesting_deeper_than_32_gets_policy_violation() {
    let server = server_with_users(&["alice"]).await;
    must(
        async {
            let mut c = login(&server, "alice").await?;
            let depth = 40;
            let stanza = format!(
                "<message to='localhost' type='chat'>{}{}</message>",
                "<a xmlns='urn:example:deep'>".repeat(depth),
                "</a>".repeat(depth)
            );
            let cond = send_and_expect_error(&mut c, stanza.as_bytes()).await?;
            anyhow::ensure!(cond == "policy-violation", "deep nesting gave <{cond}/>");
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn doctype_and_entities_get_restricted_xml() {
    let server = server_with_users(&["alice"]).await;
    must(async {
        // An undeclared entity reference inside a stanza.
        let mut c = login(&server, "alice").await?;
        let cond = send_and_expect_error(
            &mut c,
            b"<message to='localhost' type='chat'><body>&xxe;</body></message>",
        )
        .await?;
        anyhow::ensure!(cond == "restricted-xml", "entity reference gave <{cond}/>");

        // A DOCTYPE with an entity declaration in the middle of the stream.
        let mut c = login(&server, "alice").await?;
        let cond = send_and_expect_error(
            &mut c,
            b"<!DOCTYPE message [<!ENTITY xxe 'boom'>]><message to='localhost'><body>&xxe;</body></message>",
        )
        .await?;
        anyhow::ensure!(cond == "restricted-xml", "DOCTYPE in the stream gave <{cond}/>");
        Ok(())
    }
    .await);
}

#[tokio::test]
async fn doctype_before_the_stream_header_gets_a_header_then_restricted_xml() {
    let server = server_with_users(&[]).await;
    must(async {
        // A DOCTYPE in the prologue (billion-laughs style). RFC 6120 §4.9.1.2: the server
        // still opens its stream before the error, so the client can parse it.
        let mut c = RawClient::tcp(server.starttls_addr()).await?;
        let cond = send_and_expect_error(
            &mut c,
            b"<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]>\
              <stream:stream to='localhost' xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
        )
        .await?;
        anyhow::ensure!(cond == "restricted-xml", "DOCTYPE prologue gave <{cond}/>");
        Ok(())
    }
    .await);
}

#[tokio::test]
async fn unknown_iq_gets_service_unavailable_and_the_session_goes_on() {
    let server = server_with_users(&["alice"]).await;
    must(
        async {
            let mut c = login(&server, "alice").await?;
            for (to, kind) in [
                ("localhost", "get"),
                ("localhost", "set"),
                ("conference.localhost", "get"),
                (&room_jid("lobby") as &str, "get"),
            ] {
                let id = c.new_id();
                let sent = format!(
                    "<iq type='{kind}' to='{to}' id='{id}'><foo xmlns='urn:example:unknown'/></iq>"
                );
                let reply = c.iq(&sent).await?;
                let cond = xml::stanza_error_condition(&reply);
                anyhow::ensure!(
                    reply.attr("type") == Some("error")
                        && matches!(
                            cond.as_deref(),
                            Some("service-unavailable") | Some("feature-not-implemented")
                        ),
                    "unknown IQ {sent} got {}",
                    xml::show(&reply)
                );
            }
            // The session still works.
            c.iq_ok("<iq type='get' to='localhost' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>")
                .await?;
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn wrong_password_gets_not_authorized_and_five_failures_trigger_backoff() {
    let server = server_with_users(&["alice"]).await;
    must(async {
        let addr = server.starttls_addr();
        let ca = server.ca_path();
        let loopback: IpAddr = [127, 0, 0, 1].into();

        // Failures 1-4 on one connection (an unknown user looks the same as a wrong password).
        let mut c = RawClient::connect_tls(addr, &ca).await?;
        for (user, pw) in [
            ("alice", "wrong-1"),
            ("nosuchuser", "whatever"),
            ("alice", "wrong-3"),
            ("alice", "Alice-pw"),
        ] {
            let outcome = c.auth_plain(user, pw).await?;
            anyhow::ensure!(
                outcome == SaslOutcome::Failure("not-authorized".into()),
                "{user}/{pw:?}: expected <not-authorized/>, got {outcome:?}"
            );
        }
        // Failure 5 on a second connection; then the right password is refused for a while.
        let mut c = RawClient::connect_tls(addr, &ca).await?;
        let outcome = c.auth_plain("alice", "wrong-5").await?;
        anyhow::ensure!(
            outcome == SaslOutcome::Failure("not-authorized".into()),
            "5th failure: {outcome:?}"
        );
        let outcome = c.auth_plain("alice", &password("alice")).await?;
        anyhow::ensure!(
            outcome == SaslOutcome::Failure("temporary-auth-failure".into()),
            "6th attempt (right password) during back-off: expected <temporary-auth-failure/>, got {outcome:?}"
        );
        let mut c = RawClient::tcp_from(loopback, addr, None).await?;
        c.open_stream().await?;
        c.starttls(&ca).await?;
        let outcome = c.auth_plain("alice", &password("alice")).await?;
        anyhow::ensure!(
            outcome == SaslOutcome::Failure("temporary-auth-failure".into()),
            "a new connection from the same IP during back-off: {outcome:?}"
        );

        // Another source address is not affected.
        let other: IpAddr = [127, 0, 0, 2].into();
        let mut c = RawClient::tcp_from(other, addr, None).await?;
        c.open_stream().await?;
        c.starttls(&ca).await?;
        c.authenticate("alice", &password("alice"), "other-ip").await?;
        c.iq_ok("<iq type='get' to='localhost' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>")
            .await?;
        Ok(())
    }
    .await);
}

#[tokio::test]
async fn plain_is_not_offered_or_accepted_before_tls() {
    let server = server_with_users(&["alice"]).await;
    must(
        async {
            let addr = server.starttls_addr();
            let ca = server.ca_path();
            let mut c = RawClient::connect(addr).await?;
            let features = c.features.clone().expect("features");
            let starttls = features
                .get_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
                .ok_or_else(|| anyhow::anyhow!("no <starttls/>: {}", xml::show(&features)))?;
            anyhow::ensure!(
                starttls
                    .get_child("required", "urn:ietf:params:xml:ns:xmpp-tls")
                    .is_some(),
                "STARTTLS is not required: {}",
                xml::show(&features)
            );
            anyhow::ensure!(
                c.mechanisms().is_empty() && features.children().count() == 1,
                "the plaintext stream offers more than <starttls/>: {}",
                xml::show(&features)
            );
            // Trying PLAIN anyway must not log in.
            let outcome = c.auth_plain("alice", &password("alice")).await;
            match outcome {
                Ok(SaslOutcome::Success) => anyhow::bail!("PLAIN succeeded without TLS"),
                Ok(other) => eprintln!("PLAIN before TLS: {other:?}"),
                Err(e) => eprintln!("PLAIN before TLS: connection ended: {e:#}"),
            }

            // After STARTTLS: SCRAM and PLAIN are offered.
            let c = RawClient::connect_tls(addr, &ca).await?;
            let mechs = c.mechanisms();
            for m in ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"] {
                anyhow::ensure!(
                    mechs.iter().any(|x| x == m),
                    "{m} not offered after STARTTLS: {mechs:?}"
                );
            }
            // Direct TLS (XEP-0368) works the same and logs in.
            let mut c = RawClient::connect_direct_tls(server.direct_tls_addr(), &ca).await?;
            let mechs = c.mechanisms();
            anyhow::ensure!(
                mechs.iter().any(|x| x == "PLAIN") && mechs.iter().any(|x| x == "SCRAM-SHA-256"),
                "direct TLS mechanisms: {mechs:?}"
            );
            c.authenticate("alice", &password("alice"), "direct")
                .await?;
            Ok(())
        }
        .await,
    );
}

/// alice creates `room` (status 201) and submits its configuration form.
async fn create_room(c: &mut RawClient, room: &str, fields: &[(&str, &str)]) -> anyhow::Result<()> {
    let joined = c.join(room, "alice", None).await?.joined()?;
    let codes = xml::muc_status_codes(&joined);
    anyhow::ensure!(
        codes.contains(&201),
        "new room {room}: self-presence without 201: {}",
        xml::show(&joined)
    );
    let id = c.new_id();
    c.iq_ok(&format!(
        "<iq type='set' to='{room}' id='{id}'>{}</iq>",
        xml::roomconfig_submit(fields)
    ))
    .await?;
    Ok(())
}

#[tokio::test]
async fn members_only_room_refuses_non_members_with_registration_required() {
    let server = server_with_users(&["alice", "bob"]).await;
    must(async {
        let club = room_jid("club");
        let mut alice = login(&server, "alice").await?;
        create_room(
            &mut alice,
            &club,
            &[
                ("muc#roomconfig_roomname", "Club"),
                ("muc#roomconfig_membersonly", "1"),
                ("muc#roomconfig_persistentroom", "1"),
            ],
        )
        .await?;
        let mut bob = login(&server, "bob").await?;
        match bob.join(&club, "bob", None).await? {
            JoinOutcome::Error { condition, .. } if condition == "registration-required" => {}
            JoinOutcome::Error { condition, stanza } => {
                anyhow::bail!("expected registration-required, got <{condition}/>: {}", xml::show(&stanza))
            }
            JoinOutcome::Joined { .. } => anyhow::bail!("bob joined a members-only room"),
        }
        // Once alice makes bob a member, he gets in.
        let id = alice.new_id();
        alice
            .iq_ok(&format!(
                "<iq type='set' to='{club}' id='{id}'><query xmlns='http://jabber.org/protocol/muc#admin'>\
                 <item affiliation='member' jid='bob@localhost'/></query></iq>"
            ))
            .await?;
        bob.join(&club, "bob", None).await?.joined()?;
        Ok(())
    }
    .await);
}

#[tokio::test]
async fn password_room_refuses_a_wrong_password_with_not_authorized() {
    let server = server_with_users(&["alice", "bob"]).await;
    must(
        async {
            let vault = room_jid("vault");
            let mut alice = login(&server, "alice").await?;
            create_room(
                &mut alice,
                &vault,
                &[
                    ("muc#roomconfig_passwordprotectedroom", "1"),
                    ("muc#roomconfig_roomsecret", "sesame"),
                ],
            )
            .await?;
            let mut bob = login(&server, "bob").await?;
            for pw in [None, Some("open-up")] {
                match bob.join(&vault, "bob", pw).await? {
                    JoinOutcome::Error { condition, .. } if condition == "not-authorized" => {}
                    JoinOutcome::Error { condition, stanza } => anyhow::bail!(
                        "password {pw:?}: expected not-authorized, got <{condition}/>: {}",
                        xml::show(&stanza)
                    ),
                    JoinOutcome::Joined { .. } => {
                        anyhow::bail!("bob joined the password room with password {pw:?}")
                    }
                }
            }
            bob.join(&vault, "bob", Some("sesame")).await?.joined()?;
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn nick_in_use_by_another_user_gets_conflict() {
    let server = server_with_users(&["alice", "bob"]).await;
    must(
        async {
            let lobby = room_jid("lobby");
            let mut alice = login(&server, "alice").await?;
            alice.join(&lobby, "alice", None).await?.joined()?;
            let mut bob = login(&server, "bob").await?;
            match bob.join(&lobby, "alice", None).await? {
                JoinOutcome::Error { condition, .. } if condition == "conflict" => {}
                JoinOutcome::Error { condition, stanza } => {
                    anyhow::bail!(
                        "expected conflict, got <{condition}/>: {}",
                        xml::show(&stanza)
                    )
                }
                JoinOutcome::Joined { self_presence, .. } => {
                    anyhow::bail!("bob took alice's nick: {}", xml::show(&self_presence))
                }
            }
            bob.join(&lobby, "bob", None).await?.joined()?;
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn a_client_sending_garbage_does_not_disturb_the_others() {
    let server = server_with_users(&["alice", "bob", "mallory"]).await;
    must(async {
        let lobby = room_jid("lobby");
        let mut alice = login(&server, "alice").await?;
        let mut bob = login(&server, "bob").await?;
        let mut mallory = login(&server, "mallory").await?;
        alice.join(&lobby, "alice", None).await?.joined()?;
        bob.join(&lobby, "bob", None).await?.joined()?;
        mallory.join(&lobby, "mallory", None).await?.joined()?;

        alice.say(&lobby, "before the garbage").await?;
        bob.wait_groupchat(&lobby, "before the garbage").await?;

        let cond = send_and_expect_error(
            &mut mallory,
            b"<message to='lobby@conference.localhost' type='groupchat'><body>x</body><<<>>>\x01\x02",
        )
        .await?;
        anyhow::ensure!(cond == "not-well-formed", "garbage gave <{cond}/>");

        // The others see mallory leave and keep chatting.
        let mallory_jid = format!("{lobby}/mallory");
        bob.wait_for(STEP_TIMEOUT, "mallory's unavailable presence", |el| {
            el.name == "presence"
                && el.attr("type") == Some("unavailable")
                && xml::is_from(el, &mallory_jid)
        })
        .await?;
        alice.say(&lobby, "after the garbage").await?;
        bob.wait_groupchat(&lobby, "after the garbage").await?;
        bob.say(&lobby, "still here").await?;
        alice.wait_groupchat(&lobby, "still here").await?;

        // Nothing stored was lost.
        let (items, _pages) = bob.mam_all(&lobby, 50).await?;
        let bodies: Vec<String> = items.iter().filter_map(|i| i.body.clone()).collect();
        let want = ["before the garbage", "after the garbage", "still here"];
        let got: Vec<&str> = bodies
            .iter()
            .map(String::as_str)
            .filter(|b| want.contains(b))
            .collect();
        anyhow::ensure!(got == want, "archive after the garbage: {bodies:?}");
        Ok(())
    }
    .await);
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_while_others_get_everything() {
    // A short outbound queue so the slow client overflows after a few megabytes rather than
    // after the default 16384 stanzas.
    let opts = ServerOptions {
        xmpp_extra: "outbound_queue = 64\n".into(),
        ..ServerOptions::default()
    };
    let server = server_with(&["alice", "bob", "sloth"], opts).await;
    must(async {
        let lobby = room_jid("lobby");
        let addr = server.starttls_addr();
        let ca = server.ca_path();
        let mut alice = login(&server, "alice").await?;
        let mut bob = login(&server, "bob").await?;
        // The slow client: a tiny receive buffer, and it never reads after joining.
        let mut sloth = RawClient::tcp_from([127, 0, 0, 1].into(), addr, Some(4096)).await?;
        sloth.open_stream().await?;
        sloth.starttls(&ca).await?;
        sloth.authenticate("sloth", &password("sloth"), "slow").await?;
        sloth.join(&lobby, "sloth", None).await?.joined()?;
        alice.join(&lobby, "alice", None).await?.joined()?;
        bob.join(&lobby, "bob", None).await?.joined()?;

        const COUNT: usize = 300;
        const SIZE: usize = 32 * 1024;
        let label = |i: usize| format!("big {i:04} ");
        let filler = "z".repeat(SIZE);

        // bob reads everything in the background.
        let bob_task = tokio::spawn(async move {
            let mut got = Vec::with_capacity(COUNT);
            let mut saw_sloth_leave = false;
            let sloth_jid = format!("{}/sloth", room_jid("lobby"));
            let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
            while got.len() < COUNT {
                match bob.read_event(deadline).await? {
                    palaver_e2e::raw_client::Incoming::Stanza(el) => {
                        if el.name == "message" && el.attr("type") == Some("groupchat") {
                            if let Some(b) = xml::body(&el) {
                                if b.starts_with("big ") {
                                    got.push(b[..9].to_string());
                                }
                            }
                        } else if el.name == "presence"
                            && el.attr("type") == Some("unavailable")
                            && xml::is_from(&el, &sloth_jid)
                        {
                            saw_sloth_leave = true;
                        }
                    }
                    palaver_e2e::raw_client::Incoming::Open => {}
                    _ => anyhow::bail!("bob's stream ended after {} messages", got.len()),
                }
            }
            anyhow::Ok((got, saw_sloth_leave, bob))
        });

        // alice posts in lockstep with her own echoes (each is stored before it is echoed).
        for i in 0..COUNT {
            let body = format!("{}{filler}", label(i));
            alice.say(&lobby, &body).await?;
            alice
                .wait_groupchat(&lobby, &body)
                .await
                .map_err(|e| e.context(format!("alice's message {i} was not echoed (is the room blocked by the slow client?)")))?;
        }
        let (got, saw_sloth_leave, mut bob) = bob_task.await??;
        let want: Vec<String> = (0..COUNT).map(|i| label(i)[..9].to_string()).collect();
        anyhow::ensure!(got == want, "bob did not get all {COUNT} messages in order");
        eprintln!("bob saw sloth leave the room: {saw_sloth_leave}");

        // The others see the slow client leave the room while it still reads nothing: the
        // server must drop it on its own, not when it happens to read again.
        let sloth_jid = format!("{lobby}/sloth");
        let left_while_not_reading = saw_sloth_leave
            || bob
                .wait_for(STEP_TIMEOUT, "the slow client's unavailable presence", |el| {
                    el.name == "presence"
                        && el.attr("type") == Some("unavailable")
                        && xml::is_from(el, &sloth_jid)
                })
                .await
                .is_ok();

        // The slow client: whatever it reads now ends with the stream closed, short of all.
        let (stanzas, closed) = sloth.drain_until_closed(Duration::from_secs(60)).await;
        let received = stanzas
            .iter()
            .filter(|el| xml::body(el).is_some_and(|b| b.starts_with("big ")))
            .count();
        let error = stanzas.iter().find_map(xml::stream_error_condition);
        eprintln!("slow client: {received} of {COUNT} messages, then stream error {error:?}, closed: {closed}");
        anyhow::ensure!(closed, "the slow client was never disconnected");
        anyhow::ensure!(
            received < COUNT,
            "the slow client got all {COUNT} messages: not disconnected for being slow"
        );

        // Everything is stored.
        let (items, _pages) = alice.mam_all(&lobby, 100).await?;
        let archived: Vec<String> = items
            .iter()
            .filter_map(|i| i.body.as_deref())
            .filter(|b| b.starts_with("big "))
            .map(|b| b[..9].to_string())
            .collect();
        anyhow::ensure!(archived == want, "the archive holds {} of {COUNT} messages", archived.len());
        anyhow::ensure!(
            left_while_not_reading,
            "the slow client stayed in the room ({STEP_TIMEOUT:?} without an unavailable presence \
             after its queue overflowed) until it read again: a client that stops reading \
             altogether is never disconnected"
        );
        Ok(())
    }
    .await);
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_at_once() {
    let opts = ServerOptions {
        xmpp_extra: "max_connections_per_ip = 3\n".into(),
        ..ServerOptions::default()
    };
    let server = server_with(&["alice"], opts).await;
    must(
        async {
            let addr = server.starttls_addr();
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(RawClient::connect(addr).await?);
            }
            let extra = tokio::net::TcpStream::connect(addr).await?;
            palaver_e2e::expect_closed_silently(extra).await?;
            // Another address is not affected, and a freed slot is usable again.
            RawClient::tcp_from([127, 0, 0, 2].into(), addr, None)
                .await?
                .open_stream()
                .await?;
            held.pop();
            let mut again = None;
            for _ in 0..50 {
                // The server notices the close asynchronously: retry briefly.
                let mut c = RawClient::tcp(addr).await?;
                if c.open_stream().await.is_ok() {
                    again = Some(c);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::ensure!(again.is_some(), "the freed slot was never reusable");
            Ok(())
        }
        .await,
    );
}
