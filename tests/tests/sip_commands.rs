//! The pager `#commands` of docs/sip.md end to end, with an XMPP user in the same rooms:
//! `#members`/`#who`, `#topic`, `#history`, `#nick`, `#help`, `#rooms`, `#create` (public and
//! private), `#invite` of SIP users (`#accept`, `#reject`) and XMPP users, `#remove` by a
//! moderator and `#destroy` by the owner — and the errors: unknown commands, posts without
//! `#join`, unknown rooms, body types and sizes, bans, nicks in use, visitors in moderated
//! rooms, and commands that need a role the sender lacks. Every error is a status on the
//! MESSAGE plus a MESSAGE from the room saying what was wrong.

mod sip_common;

use anyhow::{ensure, Result};
use palaver_dialects::xmpp::element::Element;
use palaver_e2e::raw_client::{JoinOutcome, RawClient};
use palaver_e2e::sip_client::Method;
use palaver_e2e::{must, room_jid, xml, SipTransport, Store, MUC_DOMAIN, STEP_TIMEOUT};
use sip_common::{
    create_room, presence, role, room_uri, send, send_expect, sip, start, text_from, xmpp,
};

const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// The MUC status codes of a presence, or an error showing it.
fn codes(p: &Element) -> Vec<u32> {
    xml::muc_status_codes(p)
}

/// The `var`s of a disco#info result.
async fn disco_features(c: &mut RawClient, jid: &str) -> Result<Vec<String>> {
    let id = c.new_id();
    let info = c
        .iq_ok(&format!(
            "<iq type='get' to='{jid}' id='{id}'><query xmlns='{DISCO_INFO}'/></iq>"
        ))
        .await?;
    Ok(info
        .get_child("query", DISCO_INFO)
        .map(|q| {
            q.children_named("feature", DISCO_INFO)
                .filter_map(|f| f.attr("var").map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The room JIDs the MUC service lists.
async fn listed_rooms(c: &mut RawClient) -> Result<Vec<String>> {
    let id = c.new_id();
    let items = c
        .iq_ok(&format!(
            "<iq type='get' to='{MUC_DOMAIN}' id='{id}'><query xmlns='{DISCO_ITEMS}'/></iq>"
        ))
        .await?;
    Ok(items
        .get_child("query", DISCO_ITEMS)
        .map(|q| {
            q.children_named("item", DISCO_ITEMS)
                .filter_map(|i| i.attr("jid").map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn members_topic_history_nick_help_and_rooms() {
    let server = start(Store::Sqlite, &["alice", "bob"]).await;
    must(
        async {
            let lobby = room_jid("lobby");
            let mut alice = xmpp(&server, "alice").await?;
            alice.join(&lobby, "alice", None).await?.joined()?;
            let mut bob = sip(&server, SipTransport::Udp, "bob").await?;
            send_expect(&mut bob, "lobby", "#join bobby", 200).await?;
            text_from(&mut bob, "lobby", "as bobby").await?;

            // #members and its alias #who: everyone, with the protocol.
            for command in ["#members", "#who"] {
                send_expect(&mut bob, "lobby", command, 200).await?;
                let list = text_from(&mut bob, "lobby", "2 members:").await?;
                let lines: Vec<&str> = list.body.lines().collect();
                ensure!(
                    lines == ["2 members:", "alice (XMPP)", "bobby (SIP)"],
                    "{command}: {:?}",
                    list.body
                );
            }

            // #topic: none yet; a participant may not set it in the lobby.
            send_expect(&mut bob, "lobby", "#topic", 200).await?;
            text_from(&mut bob, "lobby", "No topic is set").await?;
            send_expect(&mut bob, "lobby", "#topic Mine now", 403).await?;
            let refused = text_from(&mut bob, "lobby", "Error").await?;
            ensure!(
                refused.body.contains("topic") && !refused.body.contains("banned"),
                "{}",
                refused.body
            );

            // #history n: the last n posts, oldest first, `[HH:MM] nick: body`.
            for n in 1..=2 {
                send_expect(&mut bob, "lobby", &format!("sip post {n}"), 200).await?;
                alice
                    .wait_groupchat(&lobby, &format!("sip post {n}"))
                    .await?;
                alice.say(&lobby, &format!("xmpp post {n}")).await?;
                text_from(&mut bob, "lobby", &format!("alice: xmpp post {n}")).await?;
            }
            send_expect(&mut bob, "lobby", "#history 3", 200).await?;
            let history = text_from(&mut bob, "lobby", "sip post 2").await?;
            let lines: Vec<&str> = history.body.lines().collect();
            ensure!(lines.len() == 3, "{:?}", history.body);
            for (line, want) in lines.iter().zip([
                "alice: xmpp post 1",
                "bobby: sip post 2",
                "alice: xmpp post 2",
            ]) {
                let time_ok = line.len() > 8
                    && line.starts_with('[')
                    && line.get(3..4) == Some(":")
                    && line.get(6..8) == Some("] ");
                ensure!(
                    time_ok && line.ends_with(want),
                    "history line {line:?}, wanted {want}"
                );
            }

            // #nick: XMPP sees the 303 change, then the new nick.
            send_expect(&mut bob, "lobby", "#nick robert", 200).await?;
            let old = presence(&mut alice, &lobby, "bobby", false).await?;
            let item_nick = xml::muc_item(&old).and_then(|i| i.attr("nick"));
            ensure!(
                codes(&old).contains(&303) && item_nick == Some("robert"),
                "{}",
                xml::show(&old)
            );
            presence(&mut alice, &lobby, "robert", true).await?;
            text_from(&mut bob, "lobby", "You are now known as robert").await?;
            send_expect(&mut bob, "lobby", "nick changed", 200).await?;
            let post = alice.wait_groupchat(&lobby, "nick changed").await?;
            ensure!(post.attr("from") == Some(format!("{lobby}/robert").as_str()));

            // `##` posts text starting with `#`; message/cpim bodies are read too.
            send_expect(&mut bob, "lobby", "##hashtag", 200).await?;
            alice.wait_groupchat(&lobby, "#hashtag").await?;
            let cpim = "From: <sip:bob@localhost>\r\nTo: <sip:lobby@conference.localhost>\r\n\r\n\
                        Content-Type: text/plain; charset=UTF-8\r\n\r\nwrapped in CPIM";
            let r = bob
                .request(
                    Method::Message,
                    &room_uri("lobby"),
                    &[],
                    Some("message/cpim"),
                    cpim.as_bytes(),
                )
                .await?;
            ensure!(r.code == 200, "CPIM post: {r}");
            alice.wait_groupchat(&lobby, "wrapped in CPIM").await?;
            // #join again without a nick keeps the current one.
            send_expect(&mut bob, "lobby", "#join", 200).await?;
            text_from(&mut bob, "lobby", "You are already in lobby").await?;

            // #help lists every command.
            send_expect(&mut bob, "lobby", "#help", 200).await?;
            let help = text_from(&mut bob, "lobby", "Commands").await?;
            for word in [
                "#join", "#leave", "#nick", "#members", "#topic", "#history", "#invite", "#accept",
                "#reject", "#rooms", "#create", "#destroy", "#remove", "#help",
            ] {
                ensure!(
                    help.body.contains(word),
                    "#help lacks {word}: {}",
                    help.body
                );
            }

            // #rooms: public rooms by category with occupant counts.
            send_expect(&mut bob, "lobby", "#rooms", 200).await?;
            let rooms = text_from(&mut bob, "lobby", "Rooms:").await?;
            ensure!(
                rooms.body.contains("[General]") && rooms.body.contains("  lobby (2)"),
                "{}",
                rooms.body
            );
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn create_rooms_and_invite_sip_and_xmpp_users() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol", "dave"]).await;
    must(
        async {
            let mut alice = xmpp(&server, "alice").await?;
            let mut bob = sip(&server, SipTransport::Tcp, "bob").await?;
            let mut carol = sip(&server, SipTransport::Udp, "carol").await?;
            let mut dave = sip(&server, SipTransport::Tls, "dave").await?;

            // A public room: created, joined, listed for XMPP.
            send_expect(&mut bob, "lobby", "#create planning", 200).await?;
            text_from(&mut bob, "lobby", "Created the room planning").await?;
            text_from(&mut bob, "planning", "as bob").await?;
            let planning = room_jid("planning");
            ensure!(
                listed_rooms(&mut alice).await?.contains(&planning),
                "planning is not listed"
            );
            let me = alice.join(&planning, "alice", None).await?.joined()?;
            ensure!(role(&me).as_deref() == Some("participant"));
            text_from(&mut bob, "planning", "*** alice has joined").await?;
            // The creator owns it: he may set the topic, and XMPP sees the subject.
            send_expect(&mut bob, "planning", "#topic Q3 roadmap", 200).await?;
            alice
                .wait_for(STEP_TIMEOUT, "the subject", |el| {
                    el.name == "message"
                        && el.attr("from") == Some(format!("{planning}/bob").as_str())
                        && el.child_text("subject", "jabber:client").as_deref()
                            == Some("Q3 roadmap")
                })
                .await?;
            send_expect(&mut bob, "planning", "#topic", 200).await?;
            text_from(&mut bob, "planning", "Topic: Q3 roadmap").await?;

            // Names are unique.
            send_expect(&mut carol, "lobby", "#create planning", 403).await?;
            text_from(&mut carol, "lobby", "already exists").await?;

            // A private room: members-only and hidden.
            send_expect(&mut bob, "lobby", "#create secret private", 200).await?;
            text_from(&mut bob, "secret", "as bob").await?;
            let secret = room_jid("secret");
            let features = disco_features(&mut alice, &secret).await?;
            for f in ["muc_membersonly", "muc_hidden"] {
                ensure!(features.iter().any(|v| v == f), "{f} missing: {features:?}");
            }
            ensure!(!listed_rooms(&mut alice).await?.contains(&secret));
            send_expect(&mut carol, "lobby", "#rooms", 200).await?;
            let rooms = text_from(&mut carol, "lobby", "Rooms:").await?;
            ensure!(
                rooms.body.contains("planning (2)") && !rooms.body.contains("secret"),
                "{}",
                rooms.body
            );
            match alice.join(&secret, "alice", None).await? {
                JoinOutcome::Error { condition, .. } if condition == "registration-required" => {}
                other => anyhow::bail!("alice entered the private room: {other:?}"),
            }

            // #invite an XMPP user: a mediated invitation, after which she may enter
            // (as "carol", to be in the way of the next invitee).
            send_expect(&mut bob, "secret", "#invite xmpp:alice@localhost", 200).await?;
            let inv = alice
                .wait_for(STEP_TIMEOUT, "the mediated invitation", |el| {
                    el.name == "message"
                        && el.attr("from") == Some(secret.as_str())
                        && el.get_child("x", MUC_USER).is_some()
                })
                .await?;
            let from = inv
                .get_child("x", MUC_USER)
                .and_then(|x| x.get_child("invite", MUC_USER))
                .and_then(|i| i.attr("from"));
            ensure!(
                from.is_some_and(|f| f.starts_with("bob@localhost")),
                "{}",
                xml::show(&inv)
            );
            alice.join(&secret, "carol", None).await?.joined()?;

            // #invite a SIP user, who accepts — once the nick is free.
            send_expect(&mut bob, "secret", "#invite sip:carol@localhost", 200).await?;
            text_from(&mut bob, "secret", "Invitation sent to carol@localhost").await?;
            let invitation = text_from(&mut carol, "secret", "invites you").await?;
            ensure!(
                invitation.body.contains("bob") && invitation.body.contains("#accept"),
                "{}",
                invitation.body
            );
            send_expect(&mut carol, "secret", "#accept", 403).await?;
            text_from(&mut carol, "secret", "nickname is in use").await?;
            alice
                .send_str(&format!(
                    "<presence to='{secret}/carol' type='unavailable'/>"
                ))
                .await?;
            presence(&mut alice, &secret, "carol", false).await?;
            send_expect(&mut carol, "secret", "#accept", 200).await?;
            text_from(&mut carol, "secret", "as carol").await?;
            text_from(&mut bob, "secret", "*** carol has joined").await?;

            // #invite a SIP user, who declines; the invitation is then gone.
            send_expect(&mut bob, "secret", "#invite sip:dave@localhost", 200).await?;
            text_from(&mut dave, "secret", "invites you").await?;
            send_expect(&mut dave, "secret", "#reject", 200).await?;
            text_from(&mut dave, "secret", "You declined").await?;
            text_from(&mut bob, "secret", "dave@localhost declined").await?;
            send_expect(&mut dave, "secret", "#accept", 404).await?;
            text_from(&mut dave, "secret", "no pending invitation").await?;

            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn a_moderator_removes_and_the_owner_destroys() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol"]).await;
    must(
        async {
            let stage = room_jid("stage");
            let mut bob = sip(&server, SipTransport::Udp, "bob").await?;
            send_expect(&mut bob, "lobby", "#create stage", 200).await?;
            text_from(&mut bob, "stage", "as bob").await?;
            let mut alice = xmpp(&server, "alice").await?;
            alice.join(&stage, "alice", None).await?.joined()?;
            let mut carol = sip(&server, SipTransport::Tcp, "carol").await?;
            send_expect(&mut carol, "stage", "#join", 200).await?;
            text_from(&mut carol, "stage", "as carol").await?;
            presence(&mut alice, &stage, "carol", true).await?;

            // A participant may neither remove nor destroy.
            send_expect(&mut carol, "stage", "#remove alice", 403).await?;
            let refused = text_from(&mut carol, "stage", "Error").await?;
            ensure!(!refused.body.contains("banned"), "{}", refused.body);
            send_expect(&mut carol, "stage", "#destroy", 403).await?;
            let refused = text_from(&mut carol, "stage", "Error").await?;
            ensure!(
                refused.body.contains("owner") && !refused.body.contains("banned"),
                "{}",
                refused.body
            );

            // The creator (moderator) kicks carol: she is told, XMPP sees 307.
            send_expect(&mut bob, "stage", "#remove carol too loud", 200).await?;
            let notice = text_from(&mut carol, "stage", "You were kicked from stage").await?;
            ensure!(notice.body.contains("too loud"), "{}", notice.body);
            let gone = presence(&mut alice, &stage, "carol", false).await?;
            ensure!(codes(&gone).contains(&307), "{}", xml::show(&gone));
            text_from(&mut bob, "stage", "*** carol was kicked").await?;
            send_expect(&mut carol, "stage", "still here?", 403).await?;

            // The owner destroys it: XMPP is told, and the room is gone.
            send_expect(&mut bob, "stage", "#destroy", 200).await?;
            alice
                .wait_for(STEP_TIMEOUT, "the destroy presence", |el| {
                    el.name == "presence"
                        && el.attr("type") == Some("unavailable")
                        && el
                            .get_child("x", MUC_USER)
                            .and_then(|x| x.get_child("destroy", MUC_USER))
                            .is_some()
                })
                .await?;
            send_expect(&mut carol, "stage", "#join", 404).await?;
            text_from(&mut carol, "stage", "No such room").await?;
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn errors_come_back_as_a_status_and_an_explanation() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol"]).await;
    must(
        async {
            let lobby = room_jid("lobby");
            let mut alice = xmpp(&server, "alice").await?;
            alice.join(&lobby, "alice", None).await?.joined()?;
            let mut bob = sip(&server, SipTransport::Tcp, "bob").await?;

            // Unknown command: 400 and how to get help.
            send_expect(&mut bob, "lobby", "#foo bar", 400).await?;
            let m = text_from(&mut bob, "lobby", "Unknown command #foo").await?;
            ensure!(m.body.contains("#help"), "{}", m.body);
            // A post before #join: 403 and how to join.
            send_expect(&mut bob, "lobby", "anyone here?", 403).await?;
            text_from(&mut bob, "lobby", "Send #join").await?;
            // A room that does not exist: 404.
            send_expect(&mut bob, "nosuchroom", "#join", 404).await?;
            text_from(&mut bob, "nosuchroom", "No such room").await?;
            // A body that is not text: 415 with Accept.
            let r = bob
                .request(
                    Method::Message,
                    &room_uri("lobby"),
                    &[],
                    Some("application/json"),
                    b"{\"text\":\"hi\"}",
                )
                .await?;
            ensure!(r.code == 415, "JSON body: {r}");
            ensure!(
                r.header("Accept").is_some_and(|a| a.contains("text/plain")),
                "415 without Accept: {}",
                r.body_text()
            );
            // A body over sip.max_post_bytes (16384): 413.
            let r = send(&mut bob, "lobby", &"x".repeat(16_385)).await?;
            ensure!(r.code == 413, "16385-byte body: {r}");
            // Exactly at the limit it is fine (after joining).
            send_expect(&mut bob, "lobby", "#join", 200).await?;
            text_from(&mut bob, "lobby", "as bob").await?;
            let long = "y".repeat(16_384);
            send_expect(&mut bob, "lobby", &long, 200).await?;
            alice.wait_groupchat(&lobby, &long).await?;

            // A nick used by an XMPP occupant: 403.
            let mut carol = sip(&server, SipTransport::Udp, "carol").await?;
            send_expect(&mut carol, "lobby", "#join alice", 403).await?;
            text_from(&mut carol, "lobby", "nickname is in use").await?;

            // Banned through muc#admin: 403 on #join.
            let club = room_jid("club");
            create_room(&mut alice, "alice", &club, &[]).await?;
            let id = alice.new_id();
            alice
                .iq_ok(&format!(
                    "<iq type='set' to='{club}' id='{id}'><query xmlns='{MUC_ADMIN}'>\
                     <item jid='carol@localhost' affiliation='outcast'/></query></iq>"
                ))
                .await?;
            send_expect(&mut carol, "club", "#join", 403).await?;
            text_from(&mut carol, "club", "banned").await?;
            send_expect(&mut carol, "club", "#history", 403).await?;
            text_from(&mut carol, "club", "may not read the history").await?;

            // A visitor in a moderated room cannot post.
            let stage = room_jid("stage");
            create_room(
                &mut alice,
                "alice",
                &stage,
                &[("muc#roomconfig_moderatedroom", "1")],
            )
            .await?;
            send_expect(&mut carol, "stage", "#join", 200).await?;
            text_from(&mut carol, "stage", "as carol").await?;
            let p = presence(&mut alice, &stage, "carol", true).await?;
            ensure!(role(&p).as_deref() == Some("visitor"), "{}", xml::show(&p));
            send_expect(&mut carol, "stage", "may I speak?", 403).await?;
            let m = text_from(&mut carol, "stage", "Error").await?;
            ensure!(!m.body.contains("banned"), "{}", m.body);
            Ok(())
        }
        .await,
    );
}

/// An XMPP occupant's mediated invitation (XEP-0045 §7.8.2) reaches a user who is only on
/// SIP, who accepts it with `#accept` and is then seen joining by the inviter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xmpp_invitation_reaches_a_sip_only_user() {
    let server = start(Store::Sqlite, &["alice", "bob"]).await;
    let result: Result<()> = async {
        let lobby = room_jid("lobby");
        let mut alice = xmpp(&server, "alice").await?;
        alice.join(&lobby, "alice", None).await?.joined()?;
        let mut bob = sip(&server, SipTransport::Tcp, "bob").await?;
        alice
            .send_str(&format!(
                "<message to='{lobby}'><x xmlns='{MUC_USER}'><invite to='bob@localhost'/></x></message>"
            ))
            .await?;
        let invitation = text_from(&mut bob, "lobby", "invites you to the room lobby").await?;
        ensure!(
            invitation.body.contains("alice@localhost") && invitation.body.contains("#accept"),
            "invitation text: {:?}",
            invitation.body
        );
        send_expect(&mut bob, "lobby", "#accept", 200).await?;
        text_from(&mut bob, "lobby", "You have joined lobby as bob").await?;
        presence(&mut alice, &lobby, "bob", true).await?;
        Ok(())
    }
    .await;
    must(result.map_err(|e| e.context(server.diagnostics())));
}
