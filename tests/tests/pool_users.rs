//! Stanzas for users across a pool: alice on n1 writes a one-to-one chat message to bob, who
//! is connected to n2 only, and invites carol, connected to n3 only, to a room (XEP-0045
//! §7.8.2 mediated invitation); carol's decline comes back to alice on n1. Three active nodes
//! on one shared PostgreSQL schema, real XMPP sessions (raw client), bounded waits.

use palaver_e2e::pool::{self, PoolCa, PoolSpec};
use palaver_e2e::raw_client::JoinOutcome;
use palaver_e2e::{must, random_hex, room_jid, xml};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn chat_and_invitations_reach_users_on_other_nodes() {
    let ca = must(PoolCa::new());
    let spec = must(PoolSpec::three_active());
    let pool = must(pool::start_shared_pg_pool(&spec, &ca, &["n1", "n2", "n3"]).await);
    must(pool.wait_all_up(CONVERGE).await);
    must(pool.add_users(&["alice", "bob", "carol"]).await);
    let mut alice = must(palaver_e2e::xmpp_available(must(pool.node("n1")), "alice").await);
    let mut bob = must(palaver_e2e::xmpp_available(must(pool.node("n2")), "bob").await);
    let mut carol = must(palaver_e2e::xmpp_available(must(pool.node("n3")), "carol").await);

    // One-to-one chat from n1 to a user on n2.
    must(
        alice
            .send_str(
                "<message to='bob@localhost' type='chat' id='c1'><body>hello bob</body></message>",
            )
            .await,
    );
    let got = must(
        bob.wait_for(WAIT, "alice's chat message", |el| {
            el.name == "message"
                && el.child_text("body", "jabber:client").as_deref() == Some("hello bob")
        })
        .await,
    );
    assert!(
        got.attr("from")
            .is_some_and(|f| f.starts_with("alice@localhost/")),
        "from alice's full JID: {got:?}"
    );

    // A mediated invitation from n1 to a user on n3, and the decline back.
    let room = room_jid(&format!("invite-{}", random_hex(6)));
    match must(alice.join(&room, "alice", None).await) {
        JoinOutcome::Joined { .. } => {}
        other => panic!("alice could not create {room}: {other:?}"),
    }
    must(
        alice
            .send_str(&format!(
                "<message to='{room}'><x xmlns='http://jabber.org/protocol/muc#user'>\
                 <invite to='carol@localhost'><reason>join us</reason></invite></x></message>"
            ))
            .await,
    );
    let invitation = must(
        carol
            .wait_for(WAIT, "the invitation", |el| {
                el.name == "message"
                    && el.attr("from").map(xml::bare) == Some(room.as_str())
                    && el
                        .get_child("x", "http://jabber.org/protocol/muc#user")
                        .is_some_and(|x| {
                            x.get_child("invite", "http://jabber.org/protocol/muc#user")
                                .is_some()
                        })
            })
            .await,
    );
    let invite = invitation
        .get_child("x", "http://jabber.org/protocol/muc#user")
        .and_then(|x| x.get_child("invite", "http://jabber.org/protocol/muc#user"));
    assert!(
        invite
            .and_then(|i| i.attr("from"))
            .is_some_and(|f| f.starts_with("alice@localhost")),
        "the invitation names alice: {invitation:?}"
    );
    must(
        carol
            .send_str(&format!(
                "<message to='{room}'><x xmlns='http://jabber.org/protocol/muc#user'>\
                 <decline to='alice@localhost'><reason>busy</reason></decline></x></message>"
            ))
            .await,
    );
    must(
        alice
            .wait_for(WAIT, "carol's decline", |el| {
                el.name == "message"
                    && el
                        .get_child("x", "http://jabber.org/protocol/muc#user")
                        .is_some_and(|x| {
                            x.get_child("decline", "http://jabber.org/protocol/muc#user")
                                .is_some()
                        })
            })
            .await,
    );
}
