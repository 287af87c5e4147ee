//! XEP-0045 moderation and invitations over real sockets: voice in a moderated room, kick (307)
//! and ban (301) through muc#admin, the admin lists, mediated (§7.8.2) and direct (XEP-0249)
//! invitations, private messages, subject changes, room destruction, XEP-0410 self-ping and
//! the room's disco#info.

use palaver_e2e::raw_client::{JoinOutcome, RawClient};
use palaver_e2e::xml;
use palaver_e2e::{must, room_jid, Store, TestServer, STEP_TIMEOUT};

const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";

async fn server(users: &[&str]) -> TestServer {
    TestServer::start_with_users(Store::Sqlite, palaver_e2e::ServerOptions::default(), users).await
}

async fn login(server: &TestServer, user: &str) -> anyhow::Result<RawClient> {
    palaver_e2e::xmpp_available(server, user).await
}

/// alice creates `room` with the given config fields; returns her client.
async fn owner_with_room(
    server: &TestServer,
    room: &str,
    fields: &[(&str, &str)],
) -> anyhow::Result<RawClient> {
    let mut alice = login(server, "alice").await?;
    let joined = alice.join(room, "alice", None).await?.joined()?;
    anyhow::ensure!(
        xml::muc_status_codes(&joined).contains(&201),
        "no 201: {}",
        xml::show(&joined)
    );
    let id = alice.new_id();
    alice
        .iq_ok(&format!(
            "<iq type='set' to='{room}' id='{id}'>{}</iq>",
            xml::roomconfig_submit(fields)
        ))
        .await?;
    Ok(alice)
}

fn admin_set(room: &str, id: &str, item: &str) -> String {
    format!("<iq type='set' to='{room}' id='{id}'><query xmlns='{MUC_ADMIN}'>{item}</query></iq>")
}

/// Waits for an unavailable presence of `nick` in `room` and returns its status codes.
async fn gone(c: &mut RawClient, room: &str, nick: &str) -> anyhow::Result<Vec<u32>> {
    let from = format!("{room}/{nick}");
    let p = c
        .wait_for(
            STEP_TIMEOUT,
            &format!("unavailable presence of {from}"),
            |el| {
                el.name == "presence"
                    && el.attr("from") == Some(from.as_str())
                    && el.attr("type") == Some("unavailable")
            },
        )
        .await?;
    Ok(xml::muc_status_codes(&p))
}

#[tokio::test]
async fn moderation_voice_kick_ban_and_admin_lists() {
    let server = server(&["alice", "bob", "carol"]).await;
    must(
        async {
            let room = room_jid("stage");
            let mut alice = owner_with_room(&server, &room, &[("muc#roomconfig_moderatedroom", "1")]).await?;
            let mut bob = login(&server, "bob").await?;
            let me = bob.join(&room, "bob", None).await?.joined()?;
            let role = xml::muc_item(&me).and_then(|i| i.attr("role")).map(str::to_string);
            anyhow::ensure!(role.as_deref() == Some("visitor"), "bob should enter as visitor: {}", xml::show(&me));
            // A visitor's message is refused with <forbidden/>.
            bob.send_str(&format!("<message to='{room}' type='groupchat' id='v1'><body>can I talk?</body></message>")).await?;
            let err = bob.wait_for(STEP_TIMEOUT, "error for v1", |el| el.attr("id") == Some("v1") && el.attr("type") == Some("error")).await?;
            anyhow::ensure!(xml::stanza_error_condition(&err).as_deref() == Some("forbidden"), "{}", xml::show(&err));
            // Voice, then bob can talk and alice sees it.
            let id = alice.new_id();
            alice.iq_ok(&admin_set(&room, &id, "<item nick='bob' role='participant'/>")).await?;
            bob.say(&room, "thanks for the voice").await?;
            alice.wait_groupchat(&room, "thanks for the voice").await?;
            // Moderator list (role) and owner list (affiliation).
            let id = alice.new_id();
            let list = alice.iq_ok(&format!("<iq type='get' to='{room}' id='{id}'><query xmlns='{MUC_ADMIN}'><item role='participant'/></query></iq>")).await?;
            let nicks: Vec<String> = list
                .get_child("query", MUC_ADMIN)
                .map(|q| q.children_named("item", MUC_ADMIN).filter_map(|i| i.attr("nick").map(str::to_string)).collect())
                .unwrap_or_default();
            anyhow::ensure!(nicks == ["bob"], "participants: {nicks:?}");
            // Bob (participant) may not kick alice.
            let id = bob.new_id();
            let refused = bob.iq(&admin_set(&room, &id, "<item nick='alice' role='none'/>")).await?;
            anyhow::ensure!(refused.attr("type") == Some("error"), "bob kicked alice: {}", xml::show(&refused));
            // Kick: both see 307, bob's copy has 110 too.
            let id = alice.new_id();
            alice.iq_ok(&admin_set(&room, &id, "<item nick='bob' role='none'><reason>noise</reason></item>")).await?;
            let codes = gone(&mut bob, &room, "bob").await?;
            anyhow::ensure!(codes.contains(&307) && codes.contains(&110), "kick codes for bob: {codes:?}");
            let codes = gone(&mut alice, &room, "bob").await?;
            anyhow::ensure!(codes.contains(&307) && !codes.contains(&110), "kick codes for alice: {codes:?}");
            // Ban carol while she is inside: 301, and she can't come back.
            let mut carol = login(&server, "carol").await?;
            carol.join(&room, "carol", None).await?.joined()?;
            let id = alice.new_id();
            alice.iq_ok(&admin_set(&room, &id, "<item jid='carol@localhost' affiliation='outcast'/>")).await?;
            let codes = gone(&mut carol, &room, "carol").await?;
            anyhow::ensure!(codes.contains(&301), "ban codes: {codes:?}");
            match carol.join(&room, "carol", None).await? {
                JoinOutcome::Error { condition, .. } if condition == "forbidden" => {}
                other => anyhow::bail!("a banned user re-entered or got the wrong error: {other:?}"),
            }
            let id = alice.new_id();
            let outcasts = alice.iq_ok(&format!("<iq type='get' to='{room}' id='{id}'><query xmlns='{MUC_ADMIN}'><item affiliation='outcast'/></query></iq>")).await?;
            anyhow::ensure!(xml::show(&outcasts).contains("carol@localhost"), "outcast list: {}", xml::show(&outcasts));
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn invitations_private_messages_subject_self_ping_and_destroy() {
    let server = server(&["alice", "bob", "dave"]).await;
    must(
        async {
            let room = room_jid("club");
            let mut alice = owner_with_room(&server, &room, &[("muc#roomconfig_membersonly", "1"), ("muc#roomconfig_roomname", "The Club")]).await?;
            let mut bob = login(&server, "bob").await?;
            // Mediated invitation: bob receives it from the room, and (members-only, invited by
            // the owner) is now a member who can enter.
            alice
                .send_str(&format!("<message to='{room}'><x xmlns='{MUC_USER}'><invite to='bob@localhost'><reason>join us</reason></invite></x></message>"))
                .await?;
            let inv = bob
                .wait_for(STEP_TIMEOUT, "the mediated invitation", |el| el.name == "message" && el.attr("from") == Some(room.as_str()) && el.get_child("x", MUC_USER).is_some())
                .await?;
            let invite = inv.get_child("x", MUC_USER).and_then(|x| x.get_child("invite", MUC_USER));
            anyhow::ensure!(invite.and_then(|i| i.attr("from")).is_some_and(|f| f.starts_with("alice@localhost")), "{}", xml::show(&inv));
            anyhow::ensure!(invite.and_then(|i| i.child_text("reason", MUC_USER)).as_deref() == Some("join us"));
            bob.join(&room, "bob", None).await?.joined()?;
            // Direct invitation (XEP-0249) is routed to dave as sent.
            let mut dave = login(&server, "dave").await?;
            alice
                .send_str(&format!("<message to='dave@localhost'><x xmlns='jabber:x:conference' jid='{room}' reason='see you there'/></message>"))
                .await?;
            let direct = dave
                .wait_for(STEP_TIMEOUT, "the direct invitation", |el| el.get_child("x", "jabber:x:conference").is_some())
                .await?;
            anyhow::ensure!(direct.attr("from").is_some_and(|f| f.starts_with("alice@localhost/")), "{}", xml::show(&direct));
            // Private message bob → alice, from the occupant address.
            bob.send_str(&format!("<message to='{room}/alice' type='chat' id='pm1'><body>psst</body></message>")).await?;
            let pm = alice
                .wait_for(STEP_TIMEOUT, "the private message", |el| el.name == "message" && el.attr("type") == Some("chat") && xml::body(el).as_deref() == Some("psst"))
                .await?;
            anyhow::ensure!(pm.attr("from") == Some(format!("{room}/bob").as_str()), "{}", xml::show(&pm));
            // Subject by the owner reaches bob; bob (participant) may not change it.
            alice.send_str(&format!("<message to='{room}' type='groupchat'><subject>Agenda</subject></message>")).await?;
            bob.wait_for(STEP_TIMEOUT, "the subject", |el| el.child_text("subject", "jabber:client").as_deref() == Some("Agenda")).await?;
            bob.send_str(&format!("<message to='{room}' type='groupchat' id='s2'><subject>Mine</subject></message>")).await?;
            let err = bob.wait_for(STEP_TIMEOUT, "subject refusal", |el| el.attr("id") == Some("s2") && el.attr("type") == Some("error")).await?;
            anyhow::ensure!(xml::stanza_error_condition(&err).as_deref() == Some("forbidden"), "{}", xml::show(&err));
            // XEP-0410 self-ping: answered while joined.
            let id = bob.new_id();
            bob.iq_ok(&format!("<iq type='get' to='{room}/bob' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>")).await?;
            // disco#info: identity name and features.
            let id = bob.new_id();
            let info = bob.iq_ok(&format!("<iq type='get' to='{room}' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")).await?;
            const DISCO: &str = "http://jabber.org/protocol/disco#info";
            let query = info.get_child("query", DISCO).ok_or_else(|| anyhow::anyhow!("no query"))?;
            let features: Vec<&str> = query.children_named("feature", DISCO).filter_map(|f| f.attr("var")).collect();
            for needle in ["muc_membersonly", "muc_persistent", "urn:xmpp:mam:2", "urn:xmpp:occupant-id:0"] {
                anyhow::ensure!(features.contains(&needle), "disco#info lacks {needle}: {features:?}");
            }
            let name = query.get_child("identity", DISCO).and_then(|i| i.attr("name"));
            anyhow::ensure!(name == Some("The Club"), "room name {name:?}");
            anyhow::ensure!(query.get_child("x", "jabber:x:data").is_some(), "no muc#roominfo form");
            // Destroy: bob learns it with the reason; the room is gone for a new join.
            let id = alice.new_id();
            alice
                .iq_ok(&format!("<iq type='set' to='{room}' id='{id}'><query xmlns='http://jabber.org/protocol/muc#owner'><destroy><reason>closing</reason></destroy></query></iq>"))
                .await?;
            let d = bob
                .wait_for(STEP_TIMEOUT, "the destroy presence", |el| el.name == "presence" && el.attr("type") == Some("unavailable") && xml::show(el).contains("destroy"))
                .await?;
            anyhow::ensure!(xml::show(&d).contains("closing"), "{}", xml::show(&d));
            // Self-ping after leaving: not-acceptable.
            let id = bob.new_id();
            let after = bob.iq(&format!("<iq type='get' to='{room}/bob' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>")).await?;
            anyhow::ensure!(xml::stanza_error_condition(&after).as_deref() == Some("not-acceptable"), "{}", xml::show(&after));
            Ok(())
        }
        .await,
    );
}
