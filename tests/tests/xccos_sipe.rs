//! Lync group chat (MS-XCCOSIP, docs/xccos.md) end to end, as pidgin-sipe does it (the replay
//! client `palaver_e2e::xccos_client`): alice signs in over TCP or TLS (lookup INVITE,
//! `cmd:requri`, INVITE of the pool URI), lists the rooms, joins the lobby where bob (real
//! slixmpp) and carol (SIP pager) already are, gets its members and history, and the three
//! talk; carol leaving and alice parting show up on the other sides; a crash and reconnect
//! rejoins the lobby. Then bad input: unknown commands, malformed envelopes, INFO outside a
//! dialog, oversized messages, session timer limits, and a client that never answers palaver's
//! INFOs (the room goes on without it; it is dropped after two INFO timeouts).

mod sip_common;

use anyhow::{ensure, Context as _, Result};
use palaver_e2e::python::{muc_peer, require_slixmpp};
use palaver_e2e::sip_client::{AutoReply, Method};
use palaver_e2e::xccos_client::{XccosClient, XccosEvent, LOOKUP_URI};
use palaver_e2e::{must, password_of, SipTransport, Store, TestServer, STEP_TIMEOUT};
use serde_json::json;
use sip_common::{send_expect, sip, start, text_from};
use std::time::{Duration, Instant};

const LOBBY: &str = "ma-chan://localhost/lobby";

/// alice signed in to the chat server (lookup, requri, pool INVITE).
async fn signed_in(
    server: &TestServer,
    transport: SipTransport,
    user: &str,
) -> Result<XccosClient> {
    let mut c = XccosClient::connect_to(server, transport, user, &password_of(user)).await?;
    c.start(LOOKUP_URI).await.context("sipe sign-in sequence")?;
    Ok(c)
}

async fn scenario(server: &TestServer, transport: SipTransport) -> Result<()> {
    let mut bob = muc_peer(server, "bob", "lobby").await?;
    let mut carol = sip(server, SipTransport::Tcp, "carol").await?;
    send_expect(&mut carol, "lobby", "#join carol", 200).await?;
    bob.wait_event_where("presence", |e| {
        e["nick"] == "carol" && e["type"] == "available"
    })
    .await?;
    bob.send(&json!({"cmd": "send", "body": "said before alice came"}))
        .await?;
    bob.wait_event_where("groupchat", |e| e["body"] == "said before alice came")
        .await?;

    let mut alice = signed_in(server, transport, "alice").await?;
    ensure!(
        alice.pool_uri() == Some("sip:ocschat@conference.localhost"),
        "rpl:requri named {:?}",
        alice.pool_uri()
    );
    ensure!(alice.session_expires() == Some(600), "Session-Expires");

    // The room list shows the lobby with its two occupants, public and logged.
    let rooms = alice.rooms().await?;
    let lobby = rooms
        .iter()
        .find(|r| r.uri == LOBBY)
        .with_context(|| format!("lobby not listed: {rooms:?}"))?;
    ensure!(
        lobby.users == 2 && !lobby.private && lobby.logged,
        "{lobby:?}"
    );

    // Joining shows the members (bob and carol by pseudonym: the lobby hides real addresses
    // from non-moderators; alice herself by address) and the history.
    let room = alice.join(LOBBY).await?;
    ensure!(room.name == "Lobby", "room name {:?}", room.name);
    let uris: Vec<&str> = room.members.iter().map(|m| m.uri.as_str()).collect();
    for want in [
        "sip:alice@localhost",
        "sip:lobby~bob@conference.localhost",
        "sip:lobby~carol@conference.localhost",
    ] {
        ensure!(uris.contains(&want), "members {uris:?} lack {want}");
    }
    ensure!(
        room.history
            .iter()
            .any(|m| m.text == "said before alice came"
                && m.author == "sip:lobby~bob@conference.localhost"),
        "history: {:?}",
        room.history
    );
    bob.wait_event_where("presence", |e| {
        e["nick"] == "alice" && e["type"] == "available"
    })
    .await
    .context("bob sees alice enter")?;

    // alice → everyone (herself included, by her address); 200 means stored.
    let status = alice.send(LOBBY, "hello from lync").await?;
    ensure!(status == 200, "grpchat INFO answered {status}");
    bob.wait_event_where("groupchat", |e| {
        e["nick"] == "alice" && e["body"] == "hello from lync"
    })
    .await
    .context("bob gets alice's post")?;
    text_from(&mut carol, "lobby", "alice: hello from lync").await?;
    let echo = alice
        .wait_grpchat(|m| m.text == "hello from lync", STEP_TIMEOUT)
        .await?;
    ensure!(
        echo.author == "sip:alice@localhost" && echo.room == LOBBY,
        "{echo:?}"
    );

    // bob (XMPP) and carol (SIP pager) → alice.
    bob.send(&json!({"cmd": "send", "body": "hi alice, bob here"}))
        .await?;
    let got = alice
        .wait_grpchat(|m| m.text == "hi alice, bob here", STEP_TIMEOUT)
        .await?;
    ensure!(
        got.author == "sip:lobby~bob@conference.localhost",
        "{got:?}"
    );
    send_expect(&mut carol, "lobby", "carol says hi\nin two lines", 200).await?;
    alice
        .wait_grpchat(
            |m| m.text.replace("\r\n", "\n") == "carol says hi\nin two lines",
            STEP_TIMEOUT,
        )
        .await
        .context("alice gets carol's post")?;

    // carol leaves: alice is told; alice parts: bob sees her go.
    send_expect(&mut carol, "lobby", "#leave", 200).await?;
    alice
        .wait_for(
            "carol's ntc:part",
            |e| matches!(e, XccosEvent::NoticePart { room, user } if room == LOBBY && user.contains("carol")),
            STEP_TIMEOUT,
        )
        .await?;
    let part = alice.part(LOBBY).await?;
    ensure!(part.code == 200, "rpl:part {part:?}");
    bob.wait_event_where("presence", |e| {
        e["nick"] == "alice" && e["type"] == "unavailable"
    })
    .await
    .context("bob sees alice part")?;

    // Reconnecting after a crash rejoins the rooms she had open (sipe's bjoin).
    alice.join(LOBBY).await?;
    let old_call = alice.call_id().map(str::to_string);
    alice.crash().await?;
    let rejoined = alice.start(LOOKUP_URI).await?;
    ensure!(
        rejoined.iter().any(|r| r.uri == LOBBY),
        "bjoin after reconnect: {rejoined:?}"
    );
    ensure!(
        alice.call_id().map(str::to_string) != old_call,
        "a new dialog"
    );
    bob.send(&json!({"cmd": "send", "body": "welcome back"}))
        .await?;
    alice
        .wait_grpchat(|m| m.text == "welcome back", STEP_TIMEOUT)
        .await
        .context("the rejoined session gets the lobby's posts")?;

    // What alice said is in the archive for XMPP users.
    bob.send(&json!({"cmd": "mam", "max": 50})).await?;
    let archive = bob.wait_event("archive").await?;
    ensure!(
        archive["bodies"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x == "hello from lync")),
        "MAM: {archive}"
    );
    ensure!(alice.bye().await? == 200, "BYE");
    Ok(())
}

#[tokio::test]
async fn sipe_over_tcp_chats_with_slixmpp_and_a_sip_pager_user() {
    must(require_slixmpp().await);
    let server = start(Store::Sqlite, &["alice", "bob", "carol"]).await;
    let result = scenario(&server, SipTransport::Tcp).await;
    must(result.with_context(|| server.diagnostics()));
}

#[tokio::test]
async fn sipe_over_tls_chats_with_slixmpp_and_a_sip_pager_user_on_postgres() {
    must(require_slixmpp().await);
    let server = start(Store::Postgres, &["alice", "bob", "carol"]).await;
    let result = scenario(&server, SipTransport::Tls).await;
    must(result.with_context(|| server.diagnostics()));
}

/// Sends `inner` wrapped in an envelope in `alice`'s dialog; returns the INFO's status.
async fn raw_info(alice: &mut XccosClient, body: &str) -> Result<u16> {
    let mut dialog = alice.dialog().cloned().context("no dialog")?;
    let r = alice
        .sip()
        .info(&mut dialog, &[], "text/plain", body.as_bytes())
        .await?;
    Ok(r.code)
}

async fn bad_input(server: &TestServer) -> Result<()> {
    let mut alice = signed_in(server, SipTransport::Tcp, "alice").await?;
    alice.join(LOBBY).await?;

    // An unknown command gets an error code; the session goes on.
    let reply = alice
        .call(
            r#"<cmd id="cmd:frobnicate" seqid="7"><data/></cmd>"#,
            "rpl:frobnicate",
        )
        .await?;
    ensure!(reply.code == 501, "unknown command: {reply:?}");
    // A command missing its channel: 400; a channel that does not exist: 404.
    let reply = alice
        .call(r#"<cmd id="cmd:join" seqid="1"><data/></cmd>"#, "rpl:join")
        .await?;
    ensure!(reply.code == 400, "join without channel: {reply:?}");
    let reply = alice
        .call(
            r#"<cmd id="cmd:join" seqid="1"><data><chanid key="0" domain="localhost" value="no-such-room"/></data></cmd>"#,
            "rpl:join",
        )
        .await?;
    ensure!(reply.code == 404, "unknown channel: {reply:?}");

    // Malformed XCCOS (not XML, DTD with an entity, wrong root): 400 to the INFO.
    for body in [
        "<xccos ver=\"1\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd",
        "<!DOCTYPE x [<!ENTITY e \"boom\">]><xccos xmlns=\"urn:parlano:xml:ns:xccos\">&e;</xccos>",
        "<hello/>",
    ] {
        let code = raw_info(&mut alice, body).await?;
        ensure!(code == 400, "{body:?} answered {code}");
    }

    // A grpchat over the announced limit: 413 to the INFO and an error reply; nothing posted.
    let info = alice.server_info().await?;
    let limit: usize = info
        .data
        .as_ref()
        .and_then(|d| d.children().find(|c| c.name == "sib"))
        .and_then(|s| s.attr("messageSizeLimit"))
        .and_then(|v| v.parse().ok())
        .context("messageSizeLimit")?;
    let status = alice.send(LOBBY, &"x".repeat(limit + 1)).await?;
    ensure!(status == 413, "oversized grpchat answered {status}");
    let reply = alice
        .wait_for(
            "rpl:grpchat",
            |e| matches!(e, XccosEvent::Reply(r) if r.id == "rpl:grpchat"),
            STEP_TIMEOUT,
        )
        .await?;
    ensure!(
        matches!(&reply, XccosEvent::Reply(r) if r.code == 413),
        "{reply:?}"
    );
    ensure!(
        alice.send(LOBBY, "still here").await? == 200,
        "session kept"
    );

    // INFO outside the dialog (a to-tag we never gave): 481.
    let mut stray = alice.dialog().cloned().context("dialog")?;
    stray.remote_tag = Some("not-ours".into());
    let r = alice
        .sip()
        .info(
            &mut stray,
            &[],
            "text/plain",
            b"<xccos xmlns=\"urn:parlano:xml:ns:xccos\"/>",
        )
        .await?;
    ensure!(r.code == 481, "INFO outside the dialog: {}", r.code);

    // Session timer: UPDATE refreshes (200 with Session-Expires); below Min-SE is 422.
    ensure!(alice.refresh().await? == 200, "UPDATE");
    let mut dialog = alice.dialog().cloned().context("dialog")?;
    let r = alice
        .sip()
        .dialog_request(
            &mut dialog,
            Method::Update,
            &[("Session-Expires", "30")],
            None,
        )
        .await?;
    ensure!(
        r.code == 422 && r.header("Min-SE") == Some("90"),
        "UPDATE with 30 s: {} {:?}",
        r.code,
        r.header("Min-SE")
    );
    ensure!(alice.bye().await? == 200, "BYE");
    // After BYE the dialog is gone: 481.
    let r = alice
        .sip()
        .info(
            &mut dialog,
            &[],
            "text/plain",
            b"<xccos xmlns=\"urn:parlano:xml:ns:xccos\"/>",
        )
        .await?;
    ensure!(r.code == 481, "INFO after BYE: {}", r.code);
    Ok(())
}

#[tokio::test]
async fn bad_xccos_input_gets_errors_and_the_session_survives() {
    let server = start(Store::Sqlite, &["alice"]).await;
    let result = bad_input(&server).await;
    must(result.with_context(|| server.diagnostics()));
}

async fn silent_client(server: &TestServer) -> Result<()> {
    let lobby = palaver_e2e::room_jid("lobby");
    let mut bob = sip_common::xmpp(server, "bob").await?;
    bob.join(&lobby, "bob", None).await?.joined()?;
    let mut carol = sip(server, SipTransport::Tcp, "carol").await?;
    send_expect(&mut carol, "lobby", "#join carol", 200).await?;

    // alice opens a session and joins, then never answers palaver's INFOs.
    let mut alice = sip(server, SipTransport::Tcp, "alice").await?;
    alice.set_auto_reply(AutoReply::Ignore);
    let mut dialog = alice.invite(LOOKUP_URI, &[], None).await?;
    let join = "<xccos ver=\"1\" envid=\"1\" xmlns=\"urn:parlano:xml:ns:xccos\"><cmd id=\"cmd:join\" seqid=\"1\"><data><chanid key=\"0\" domain=\"localhost\" value=\"lobby\"/></data></cmd></xccos>";
    let r = alice
        .info(&mut dialog, &[], "text/plain", join.as_bytes())
        .await?;
    ensure!(r.code == 200, "join INFO: {}", r.code);
    sip_common::presence(&mut bob, &lobby, "alice", true).await?;

    // The room does not wait for her: posts flow between the others at once (a room held up
    // by her would deliver nothing before her first INFO timed out, 32 s).
    let started = Instant::now();
    for i in 0..5 {
        let text = format!("busy room {i}");
        bob.say(&lobby, &text).await?;
        text_from(&mut carol, "lobby", &format!("bob: {text}")).await?;
    }
    ensure!(
        started.elapsed() < Duration::from_secs(25),
        "posts were held up by the silent client: {:?}",
        started.elapsed()
    );

    // After two unanswered INFOs (32 s each, RFC 3261 timer F) her session ends.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match sip_common::presence(&mut bob, &lobby, "alice", false).await {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => {
                return Err(e.context("the silent client was never dropped"))
            }
            Err(_) => {}
        }
    }
    let gone = started.elapsed();
    ensure!(
        gone >= Duration::from_secs(30),
        "dropped after {gone:?}: sooner than one INFO timeout"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_that_never_answers_is_dropped_without_blocking_the_room() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol"]).await;
    let result = silent_client(&server).await;
    must(result.with_context(|| server.diagnostics()));
}

#[tokio::test]
async fn sipe_over_udp_chats_with_slixmpp_and_a_sip_pager_user() {
    must(require_slixmpp().await);
    let server = start(Store::Sqlite, &["alice", "bob", "carol"]).await;
    let result = scenario(&server, SipTransport::Udp).await;
    must(result.with_context(|| server.diagnostics()));
}

async fn stale_dialog(server: &TestServer) -> Result<()> {
    let lobby = palaver_e2e::room_jid("lobby");
    let mut bob = sip_common::xmpp(server, "bob").await?;
    bob.join(&lobby, "bob", None).await?.joined()?;
    // alice's client restarts its group chat on the same UDP socket without ending the old
    // dialog (as after a network change): the old session still sends her the lobby's posts.
    let mut alice = signed_in(server, SipTransport::Udp, "alice").await?;
    alice.join(LOBBY).await?;
    let old = alice.call_id().context("old dialog")?.to_string();
    alice.start(LOOKUP_URI).await?;
    alice.join(LOBBY).await?;

    bob.say(&lobby, "first").await?;
    alice
        .wait_grpchat(|m| m.text == "first", STEP_TIMEOUT)
        .await?;
    // The obsolete dialog's INFO is answered 487 (sipe does so) and palaver ends that session.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !alice
        .server_infos()
        .iter()
        .any(|i| i.message.call_id() == old && i.answered == Some(487))
    {
        ensure!(Instant::now() < deadline, "no INFO on the old dialog");
        let _ = alice.next_event(Duration::from_millis(200)).await;
    }
    bob.say(&lobby, "second").await?;
    alice
        .wait_grpchat(|m| m.text == "second", STEP_TIMEOUT)
        .await?;
    let _ = alice.next_event(Duration::from_secs(1)).await;
    let on_old = alice
        .server_infos()
        .iter()
        .filter(|i| {
            i.message.call_id() == old && i.message.body().windows(6).any(|w| w == b"second")
        })
        .count();
    ensure!(on_old == 0, "the ended session still sent {on_old} INFO(s)");
    // alice is still in the lobby through her new session.
    ensure!(
        alice.send(LOBBY, "still in").await? == 200,
        "new session posts"
    );
    bob.wait_groupchat(&lobby, "still in").await?;
    Ok(())
}

#[tokio::test]
async fn an_info_answered_487_ends_the_stale_session() {
    let server = start(Store::Sqlite, &["alice", "bob"]).await;
    let result = stale_dialog(&server).await;
    must(result.with_context(|| server.diagnostics()));
}

async fn removed(server: &TestServer) -> Result<()> {
    let room = palaver_e2e::room_jid("doomed");
    let chan = "ma-chan://localhost/doomed";
    let mut bob = sip_common::xmpp(server, "bob").await?;
    sip_common::create_room(
        &mut bob,
        "bob",
        &room,
        &[
            ("muc#roomconfig_whois", "anyone"),
            ("muc#roomconfig_publicroom", "1"),
        ],
    )
    .await?;
    let mut alice = signed_in(server, SipTransport::Tcp, "alice").await?;
    // An extended search shows the room's standing managers: bob owns it.
    let found = alice
        .call(
            r#"<cmd id="cmd:chansrch" seqid="1"><data><qib qtype="BYNAME" criteria="doomed" extended="true"/></data></cmd>"#,
            "rpl:chansrch",
        )
        .await?;
    let xml = found.data_xml();
    ensure!(
        xml.contains("sip:bob@localhost") && xml.contains("12276") && xml.contains(chan),
        "extended chansrch: {xml}"
    );
    let joined = alice.join(chan).await?;
    // whois anyone: alice sees bob by his address, as a channel operator (owner).
    ensure!(
        joined.member("sip:bob@localhost").is_some_and(|m| m.chanop),
        "members {:?}",
        joined.members
    );
    let own_departure = |e: &XccosEvent| matches!(e, XccosEvent::NoticePart { room, user } if room == chan && user == "sip:alice@localhost");

    // bob kicks alice: she is shown her own departure.
    let id = bob.new_id();
    bob.iq_ok(&format!(
        "<iq type='set' to='{room}' id='{id}'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='alice' role='none'/></query></iq>"
    ))
    .await?;
    alice
        .wait_for("ntc:part of alice (kicked)", own_departure, STEP_TIMEOUT)
        .await?;
    ensure!(
        alice.send(chan, "after the kick").await? != 200,
        "a kicked client posts"
    );

    // She comes back; bob destroys the room: her own departure again.
    alice.join(chan).await?;
    let id = bob.new_id();
    bob.iq_ok(&format!(
        "<iq type='set' to='{room}' id='{id}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy><reason>closing</reason></destroy></query></iq>"
    ))
    .await?;
    alice
        .wait_for("ntc:part of alice (destroyed)", own_departure, STEP_TIMEOUT)
        .await?;
    let reply = alice
        .call(
            r#"<cmd id="cmd:join" seqid="1"><data><chanid key="0" domain="localhost" value="doomed"/></data></cmd>"#,
            "rpl:join",
        )
        .await?;
    ensure!(reply.code == 404, "joining the destroyed room: {reply:?}");
    Ok(())
}

#[tokio::test]
async fn a_kick_or_a_destroyed_room_shows_as_the_clients_own_departure() {
    let server = start(Store::Sqlite, &["alice", "bob"]).await;
    let result = removed(&server).await;
    must(result.with_context(|| server.diagnostics()));
}

async fn invitations(server: &TestServer) -> Result<()> {
    let mut carol = sip(server, SipTransport::Tcp, "carol").await?;
    send_expect(&mut carol, "lobby", "#join carol", 200).await?;
    let mut alice = signed_in(server, SipTransport::Tcp, "alice").await?;
    let getinv = r#"<cmd id="cmd:getinv" seqid="1"><data><inv inviteId="1" domain="localhost"/></data></cmd>"#;
    let none = alice.call(getinv, "rpl:getinv").await?;
    ensure!(
        none.code == 200 && !none.data_xml().contains("<inv"),
        "{none:?}"
    );
    send_expect(&mut carol, "lobby", "#invite sip:alice@localhost", 200).await?;
    let pending = alice.call(getinv, "rpl:getinv").await?;
    let xml = pending.data_xml();
    ensure!(
        pending.code == 200
            && xml.contains("ma-chan://localhost/lobby")
            && xml.contains("sip:carol@localhost"),
        "getinv after carol's #invite: {xml}"
    );
    Ok(())
}

#[tokio::test]
async fn getinv_lists_pending_invitations() {
    let server = start(Store::Sqlite, &["alice", "carol"]).await;
    let result = invitations(&server).await;
    must(result.with_context(|| server.diagnostics()));
}

/// The value of `attr='…'` or `attr="…"` in `xml`, first occurrence.
fn attr_value(xml: &str, attr: &str) -> Option<String> {
    let start = xml.find(&format!("{attr}="))? + attr.len() + 1;
    let quote = xml[start..].chars().next()?;
    let rest = &xml[start + 1..];
    Some(rest[..rest.find(quote)?].to_string())
}

async fn categories(server: &TestServer) -> Result<()> {
    let mut alice = signed_in(server, SipTransport::Tcp, "alice").await?;
    let search = |qtype: &str, criteria: &str| {
        format!(
            r#"<cmd id="cmd:chansrch" seqid="1"><data><qib qtype="{qtype}" criteria="{criteria}" extended="false"/></data></cmd>"#
        )
    };
    // The lobby sits in the default category: its chanib names it as parent.
    let by_name = alice.call(&search("BYNAME", "lob"), "rpl:chansrch").await?;
    let xml = by_name.data_xml();
    ensure!(xml.contains(LOBBY), "BYNAME lob: {xml}");
    let category = attr_value(&xml, "parent").context("the lobby's parent category")?;
    ensure!(category.starts_with("ma-cat://localhost/"), "{category}");
    let in_category = alice
        .call(&search("BYCATEGORY", &category), "rpl:chansrch")
        .await?;
    ensure!(
        in_category.code == 200 && in_category.data_xml().contains(LOBBY),
        "BYCATEGORY {category}: {in_category:?}"
    );
    // The root of getserverinfo lists every room; an unknown category is an error.
    let info = alice.server_info().await?;
    let root = attr_value(&info.data_xml(), "rootUri").context("rootUri")?;
    let all = alice
        .call(&search("BYCATEGORY", &root), "rpl:chansrch")
        .await?;
    ensure!(all.data_xml().contains(LOBBY), "root {root}: {all:?}");
    let none = alice
        .call(
            &search(
                "BYCATEGORY",
                "ma-cat://localhost/00000000-0000-0000-0000-000000000000",
            ),
            "rpl:chansrch",
        )
        .await?;
    ensure!(none.code == 404, "unknown category: {none:?}");
    let nothing = alice
        .call(&search("BYNAME", "zzz-no-such"), "rpl:chansrch")
        .await?;
    ensure!(
        nothing.code == 200 && !nothing.data_xml().contains("chanib"),
        "{nothing:?}"
    );
    Ok(())
}

#[tokio::test]
async fn rooms_are_found_by_name_and_by_category() {
    let server = start(Store::Sqlite, &["alice"]).await;
    let result = categories(&server).await;
    must(result.with_context(|| server.diagnostics()));
}
