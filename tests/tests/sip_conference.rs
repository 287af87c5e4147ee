//! RFC 4575 conference events on room URIs (docs/sip.md "Conference events"): a SUBSCRIBE
//! with `Event: conference` gets 200 and a NOTIFY with the whole roster — XMPP and SIP
//! occupants, as `xmpp:ROOM@conference.localhost/nick` in semi-anonymous rooms and as
//! `sip:`/`xmpp:` user addresses in non-anonymous ones — then partial NOTIFYs as people join,
//! change nick and leave, a full one when the topic changes or the subscription is
//! refreshed, and a terminated one when it ends. Other event packages get 489, unknown rooms
//! 404.

mod sip_common;

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use palaver_dialects::xmpp::element::Element;
use palaver_e2e::sip_client::{InboundRequest, Method};
use palaver_e2e::{must, room_jid, ServerOptions, SipClient, SipTransport, Store, STEP_TIMEOUT};
use sip_common::{
    create_room, presence, room_uri, send_expect, sip, start, start_with, text_from, xmpp,
};

const NS: &str = "urn:ietf:params:xml:ns:conference-info";

/// One `<user/>` of a conference-info document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    entity: String,
    state: String,
    nick: Option<String>,
    role: Option<String>,
}

/// A NOTIFY's conference-info document, checked and summarized.
#[derive(Debug)]
struct Notice {
    state: String,
    version: u32,
    subject: Option<String>,
    users: Vec<User>,
    subscription_state: String,
}

impl Notice {
    fn user(&self, entity: &str) -> Option<&User> {
        self.users.iter().find(|u| u.entity == entity)
    }
}

/// Parses a conference NOTIFY from `room`.
fn notice(n: &InboundRequest, room: &str) -> Result<Notice> {
    ensure!(n.header("Event") == Some("conference"), "{}", n.summary());
    ensure!(
        n.header("Content-Type")
            .is_some_and(|t| t.starts_with("application/conference-info+xml")),
        "content type {:?}",
        n.header("Content-Type")
    );
    let body = n.body.trim_start();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map(|(_, doc)| doc)
            .ok_or_else(|| anyhow!("bad declaration"))?,
        None => body,
    };
    let doc = Element::parse(body.as_bytes())
        .map_err(|e| anyhow!("conference-info does not parse ({e}): {}", n.body))?;
    ensure!(doc.is("conference-info", NS), "{}", n.body);
    ensure!(
        doc.attr("entity") == Some(room_uri(room).as_str()),
        "entity: {}",
        n.body
    );
    let users = doc
        .get_child("users", NS)
        .map(|u| {
            u.children_named("user", NS)
                .map(|u| User {
                    entity: u.attr("entity").unwrap_or_default().to_string(),
                    state: u.attr("state").unwrap_or_default().to_string(),
                    nick: u.child_text("display-text", NS),
                    role: u
                        .get_child("roles", NS)
                        .and_then(|r| r.child_text("entry", NS)),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Notice {
        state: doc.attr("state").unwrap_or_default().to_string(),
        version: doc
            .attr("version")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("no version: {}", n.body))?,
        subject: doc
            .get_child("conference-description", NS)
            .and_then(|d| d.child_text("subject", NS)),
        users,
        subscription_state: n
            .header("Subscription-State")
            .unwrap_or_default()
            .to_string(),
    })
}

/// The next NOTIFY for `room`, parsed; its version must be above `last`.
async fn next_notice(c: &mut SipClient, room: &str, last: &mut u32) -> Result<Notice> {
    let n = c.wait_notify(STEP_TIMEOUT).await?;
    let parsed = notice(&n, room).with_context(|| n.body.clone())?;
    ensure!(
        parsed.version > *last,
        "version {} after {last}",
        parsed.version
    );
    *last = parsed.version;
    Ok(parsed)
}

fn present(u: Option<&User>, nick: &str, role: &str) -> Result<()> {
    match u {
        Some(u) if u.state == "full" && u.nick.as_deref() == Some(nick) => {
            ensure!(u.role.as_deref() == Some(role), "{u:?}");
            Ok(())
        }
        other => bail!("{nick} is not listed in full: {other:?}"),
    }
}

#[tokio::test]
async fn conference_events_follow_the_lobby_roster() {
    let server = start(Store::Sqlite, &["alice", "bob", "carol"]).await;
    must(
        async {
            let lobby = room_jid("lobby");
            // The lobby is semi-anonymous: occupants appear as room/nick.
            let entity = |nick: &str| format!("xmpp:{lobby}/{nick}");
            let mut alice = xmpp(&server, "alice").await?;
            alice.join(&lobby, "alice", None).await?.joined()?;
            let mut bob = sip(&server, SipTransport::Udp, "bob").await?;
            let mut version = 0;

            // Another event package, an unknown room: refused.
            let r = bob
                .request(
                    Method::Subscribe,
                    &room_uri("lobby"),
                    &[("Event", "presence"), ("Expires", "600")],
                    None,
                    b"",
                )
                .await?;
            ensure!(r.code == 489, "Event: presence got {r}");
            ensure!(
                r.header("Allow-Events") == Some("conference"),
                "{:?}",
                r.header("Allow-Events")
            );
            let r = bob.subscribe(&room_uri("nosuchroom"), 600).await?;
            ensure!(r.code == 404, "unknown room got {r}");

            // A fetch (Expires: 0): 200 and one NOTIFY with the roster that also ends it.
            let ok = bob.subscribe(&room_uri("lobby"), 0).await?;
            ensure!(ok.code == 200, "fetch got {ok}");
            let fetched = next_notice(&mut bob, "lobby", &mut version).await?;
            ensure!(
                fetched.subscription_state.starts_with("terminated"),
                "fetch: {}",
                fetched.subscription_state
            );
            present(fetched.user(&entity("alice")), "alice", "participant")?;
            bob.expect_no_request(std::time::Duration::from_millis(300))
                .await
                .context("a second NOTIFY for a fetch")?;
            version = 0;

            // SUBSCRIBE: 200, then the full roster.
            let ok = bob.subscribe(&room_uri("lobby"), 600).await?;
            ensure!(ok.code == 200, "SUBSCRIBE got {ok}");
            let full = next_notice(&mut bob, "lobby", &mut version).await?;
            ensure!(full.state == "full", "{full:?}");
            ensure!(
                full.subscription_state.starts_with("active"),
                "{}",
                full.subscription_state
            );
            ensure!(full.users.len() == 1, "{full:?}");
            present(full.user(&entity("alice")), "alice", "participant")?;

            // A SIP user joins: a partial NOTIFY with just her.
            let mut carol = sip(&server, SipTransport::Tcp, "carol").await?;
            send_expect(&mut carol, "lobby", "#join carol", 200).await?;
            let added = next_notice(&mut bob, "lobby", &mut version).await?;
            ensure!(
                added.state == "partial" && added.users.len() == 1,
                "{added:?}"
            );
            present(added.user(&entity("carol")), "carol", "participant")?;

            // A nick change: the old entry goes, the new one comes.
            send_expect(&mut carol, "lobby", "#nick caroline", 200).await?;
            let mut seen = Vec::new();
            while !(seen
                .iter()
                .any(|u: &User| u.entity == entity("carol") && u.state == "deleted")
                && seen.iter().any(|u| u.entity == entity("caroline")))
            {
                let n = next_notice(&mut bob, "lobby", &mut version).await?;
                ensure!(n.state == "partial", "{n:?}");
                seen.extend(n.users);
            }
            present(
                seen.iter().find(|u| u.entity == entity("caroline")),
                "caroline",
                "participant",
            )?;

            // Refresh: 200 and the full roster again.
            let ok = bob.resubscribe(&room_uri("lobby"), 600).await?;
            ensure!(ok.code == 200, "refresh got {ok}");
            let full = next_notice(&mut bob, "lobby", &mut version).await?;
            ensure!(full.state == "full" && full.users.len() == 2, "{full:?}");
            present(full.user(&entity("alice")), "alice", "participant")?;
            present(full.user(&entity("caroline")), "caroline", "participant")?;

            // Leaving: a partial NOTIFY deleting her.
            send_expect(&mut carol, "lobby", "#leave", 200).await?;
            let gone = next_notice(&mut bob, "lobby", &mut version).await?;
            ensure!(
                gone.users.len() == 1
                    && gone.user(&entity("caroline")).map(|u| u.state.as_str()) == Some("deleted"),
                "{gone:?}"
            );

            // Unsubscribe: 200 and a last NOTIFY saying it is over; then nothing more.
            let ok = bob.unsubscribe(&room_uri("lobby")).await?;
            ensure!(ok.code == 200, "unsubscribe got {ok}");
            let last = next_notice(&mut bob, "lobby", &mut version).await?;
            ensure!(
                last.subscription_state.starts_with("terminated"),
                "{}",
                last.subscription_state
            );
            alice.say(&lobby, "after the end").await?;
            send_expect(&mut carol, "lobby", "#join carol", 200).await?;
            presence(&mut alice, &lobby, "carol", true).await?;
            text_from(&mut carol, "lobby", "as carol").await?;
            bob.expect_no_request(std::time::Duration::from_millis(300))
                .await
                .context("a NOTIFY after the subscription ended")?;
            Ok(())
        }
        .await,
    );
}

#[tokio::test]
async fn conference_events_in_a_non_anonymous_room_over_tls() {
    // Subscriptions as short as 1 s, to see one expire.
    let opts = ServerOptions {
        sip_extra: "min_expires = 1\n".into(),
        ..ServerOptions::default()
    };
    let server = start_with(Store::Sqlite, opts, &["alice", "bob", "carol"]).await;
    must(
        async {
            let forum = room_jid("forum");
            let mut alice = xmpp(&server, "alice").await?;
            create_room(
                &mut alice,
                "alice",
                &forum,
                &[("muc#roomconfig_whois", "anyone")],
            )
            .await?;
            let mut bob = sip(&server, SipTransport::Tls, "bob").await?;
            let mut version = 0;
            let ok = bob.subscribe(&room_uri("forum"), 600).await?;
            ensure!(ok.code == 200, "SUBSCRIBE got {ok}");
            let full = next_notice(&mut bob, "forum", &mut version).await?;
            ensure!(full.state == "full" && full.users.len() == 1, "{full:?}");
            present(full.user("xmpp:alice@localhost"), "alice", "moderator")?;

            // SIP occupants appear with their SIP address.
            let mut carol = sip(&server, SipTransport::Udp, "carol").await?;
            send_expect(&mut carol, "forum", "#join cc", 200).await?;
            let added = next_notice(&mut bob, "forum", &mut version).await?;
            present(added.user("sip:carol@localhost"), "cc", "participant")?;

            // A topic change: a full NOTIFY with the subject.
            alice
                .send_str(&format!(
                    "<message to='{forum}' type='groupchat'><subject>Rules</subject></message>"
                ))
                .await?;
            let full = next_notice(&mut bob, "forum", &mut version).await?;
            ensure!(
                full.state == "full" && full.subject.as_deref() == Some("Rules"),
                "{full:?}"
            );
            ensure!(full.users.len() == 2, "{full:?}");

            let ok = bob.unsubscribe(&room_uri("forum")).await?;
            ensure!(ok.code == 200, "unsubscribe got {ok}");
            let last = next_notice(&mut bob, "forum", &mut version).await?;
            ensure!(
                last.subscription_state.starts_with("terminated"),
                "{}",
                last.subscription_state
            );

            // A subscription that is not refreshed ends by itself.
            let ok = bob.subscribe(&room_uri("forum"), 1).await?;
            ensure!(ok.code == 200 && ok.header("Expires") == Some("1"), "{ok}");
            version = 0;
            let first = next_notice(&mut bob, "forum", &mut version).await?;
            ensure!(first.subscription_state.starts_with("active"), "{first:?}");
            let expired = next_notice(&mut bob, "forum", &mut version).await?;
            ensure!(
                expired.subscription_state == "terminated;reason=timeout",
                "{expired:?}"
            );

            // Destroying the room ends subscriptions to it.
            let ok = bob.subscribe(&room_uri("forum"), 600).await?;
            ensure!(ok.code == 200, "{ok}");
            version = 0;
            next_notice(&mut bob, "forum", &mut version).await?;
            let id = alice.new_id();
            alice
                .iq_ok(&format!(
                    "<iq type='set' to='{forum}' id='{id}'><query \
                     xmlns='http://jabber.org/protocol/muc#owner'><destroy/></query></iq>"
                ))
                .await?;
            let ended = next_notice(&mut bob, "forum", &mut version).await?;
            ensure!(
                ended.subscription_state == "terminated;reason=noresource",
                "{ended:?}"
            );
            Ok(())
        }
        .await,
    );
}
