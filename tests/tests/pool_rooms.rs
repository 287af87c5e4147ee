//! Rooms across a pool (docs/pool-protocol.md, DESIGN §6): three active nodes n1, n2, n3 on
//! 127.0.0.1–3 share ONE PostgreSQL schema (`$PALAVER_TEST_PG`, else `$DATABASE_URL`; the
//! test fails without them), each serving XMPP and SIP on its own address. Every room has a
//! home node; the other nodes forward their clients' commands to it and relay its events, so a
//! room looks the same from every node.
//!
//! * `cross_node_chat`: in three rooms (named so that each node is the predicted home of one),
//!   alice (XMPP on n1) creates the room, bob (XMPP on n2) and carol (SIP pager on n3) join;
//!   everyone sees everyone's presence / join, and 20 interleaved messages from each arrive at
//!   the other two in each sender's order (XMPP senders also get theirs reflected, SIP senders
//!   do not get their own back). Every miss is reported as "who (which node) missed what from
//!   whom (which node)".
//! * `history_from_every_node`: in three rooms (one per predicted home), what alice posts
//!   through n1 reaches bob on n2 and dave on n3, who are in the room during the posts, live
//!   and then in the MAM archive (XEP-0313, paged), and is in the history-on-join and the
//!   archive of erin joining afterwards on n1, n2 and n3 in turn: in order, each once.
//! * `same_node_on_shared_store`: the harness itself — XMPP logins and SIP registrations work
//!   on every node, and users on one node (n1) chat in a room as on a single server.
//!
//! Every wait is bounded; nothing sleeps. On failure the nodes' logs are printed (node ids
//! first, then each node's stdout and stderr tail).

mod sip_common;

use anyhow::{anyhow, ensure, Context as _, Result};
use palaver_dialects::xmpp::element::Element;
use palaver_e2e::pool::{self, PoolCa, PoolSpec, SharedPool};
use palaver_e2e::raw_client::{JoinOutcome, RawClient};
use palaver_e2e::sip_client::Method;
use palaver_e2e::{must, random_hex, room_jid, xml, SipClient, STEP_TIMEOUT};
use sip_common::{create_room, presence, room_uri, send, send_expect, text_from};
use std::time::Duration;
use tokio::time::Instant;

/// Bound for the pool to form.
const CONVERGE: Duration = Duration::from_secs(20);
/// Bound for one receiver to get a whole batch of messages.
const DELIVERY: Duration = Duration::from_secs(30);
/// Messages each participant sends per room.
const PER_SENDER: usize = 20;
const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// A participant: nick (= user), node and protocol, for failure messages.
#[derive(Debug, Clone, Copy)]
struct Who {
    nick: &'static str,
    node: &'static str,
    proto: &'static str,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} on {})", self.nick, self.proto, self.node)
    }
}

const ALICE: Who = Who {
    nick: "alice",
    node: "n1",
    proto: "XMPP",
};
const BOB: Who = Who {
    nick: "bob",
    node: "n2",
    proto: "XMPP",
};
const CAROL: Who = Who {
    nick: "carol",
    node: "n3",
    proto: "SIP",
};
const DAVE: Who = Who {
    nick: "dave",
    node: "n3",
    proto: "XMPP",
};

/// Three active nodes on one shared PostgreSQL schema, all seeing each other up, with `users`.
async fn three_node_pool(users: &[&str]) -> (PoolCa, SharedPool) {
    let ca = must(PoolCa::new());
    let spec = must(PoolSpec::three_active());
    let pool = must(pool::start_shared_pg_pool(&spec, &ca, &NODES).await);
    must(pool.wait_all_up(CONVERGE).await);
    must(pool.add_users(users).await);
    eprintln!("{}", pool.describe());
    (ca, pool)
}

/// `sender#NN` → (sender, NN).
fn parse_tag(tag: &str) -> Option<(&str, usize)> {
    let (sender, n) = tag.split_once('#')?;
    if sender.is_empty() || n.len() != 2 {
        return None;
    }
    Some((sender, n.parse().ok()?))
}

fn is_from_room(el: &Element, room: &str) -> bool {
    el.attr("from")
        .map(xml::bare)
        .is_some_and(|b| b.eq_ignore_ascii_case(room))
}

fn has_delay(el: &Element) -> bool {
    el.get_child("delay", "urn:xmpp:delay").is_some()
}

/// One message as a receiver saw it: the nick it came from and the tag in its body.
#[derive(Debug, Clone)]
struct Seen {
    nick: String,
    tag: String,
}

/// What one receiver got of a batch.
#[derive(Debug, Default)]
struct Collected {
    /// The tagged messages, in arrival order.
    got: Vec<Seen>,
    /// Errors the room sent back (bounced posts, error MESSAGEs), shortened.
    bounces: Vec<String>,
    /// Why the collection stopped before all arrived.
    incomplete: Option<String>,
}

/// Reads live groupchat messages tagged `sender#NN` from `room` until `want` arrived or
/// `within` passed; error messages from the room (bounced posts) are kept aside.
async fn collect_xmpp(c: &mut RawClient, room: &str, want: usize, within: Duration) -> Collected {
    let deadline = Instant::now() + within;
    let mut out = Collected::default();
    while out.got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let found = c
            .wait_for(left, &format!("tagged groupchat from {room}"), |el| {
                el.name == "message"
                    && is_from_room(el, room)
                    && (el.attr("type") == Some("error")
                        || (el.attr("type") == Some("groupchat")
                            && !has_delay(el)
                            && xml::body(el).is_some_and(|b| parse_tag(&b).is_some())))
            })
            .await;
        match found {
            Ok(el) if el.attr("type") == Some("error") => {
                out.bounces.push(xml::cut(&xml::show(&el), 400));
            }
            Ok(el) => out.got.push(Seen {
                nick: el
                    .attr("from")
                    .and_then(xml::resource)
                    .unwrap_or_default()
                    .to_string(),
                tag: xml::body(&el).unwrap_or_default(),
            }),
            Err(e) => {
                out.incomplete = Some(xml::cut(&format!("{e:#}"), 1500));
                break;
            }
        }
    }
    out
}

/// Reads MESSAGEs `nick: sender#NN` from `room` until `want` arrived or `within` passed;
/// `Error: …` MESSAGEs from the room are kept aside.
async fn collect_sip(c: &mut SipClient, room: &str, want: usize, within: Duration) -> Collected {
    let uri = room_uri(room.split('@').next().unwrap_or(room));
    let deadline = Instant::now() + within;
    let mut out = Collected::default();
    while out.got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let found = c
            .wait_message(
                |m| {
                    m.from == uri
                        && (m.body.starts_with("Error")
                            || m.body
                                .split_once(": ")
                                .is_some_and(|(_, t)| parse_tag(t).is_some()))
                },
                left,
            )
            .await;
        match found {
            Ok(m) if m.body.starts_with("Error") => out.bounces.push(m.body),
            Ok(m) => {
                if let Some((nick, tag)) = m.body.split_once(": ") {
                    out.got.push(Seen {
                        nick: nick.to_string(),
                        tag: tag.to_string(),
                    });
                }
            }
            Err(e) => {
                out.incomplete = Some(xml::cut(&format!("{e:#}"), 1500));
                break;
            }
        }
    }
    out
}

/// What `receiver` should have seen from each of `senders` (PER_SENDER each, in order, once,
/// under the sender's nick) and nothing from anyone else; one line per problem.
fn check_delivery(
    receiver: Who,
    room: &str,
    home: &str,
    seen: &Collected,
    senders: &[Who],
) -> Vec<String> {
    let mut problems = Vec::new();
    let at = format!("{receiver} in {room} (predicted home {home})");
    let got = &seen.got;
    if let Some(first) = seen.bounces.first() {
        problems.push(format!(
            "{at}: {} error(s) from the room (bounced posts?), the first: {first}",
            seen.bounces.len()
        ));
    }
    for s in senders {
        let seq: Vec<usize> = got
            .iter()
            .filter_map(|m| parse_tag(&m.tag).filter(|(who, _)| *who == s.nick))
            .map(|(_, n)| n)
            .collect();
        let missing: Vec<usize> = (0..PER_SENDER).filter(|n| !seq.contains(n)).collect();
        let mut dups: Vec<usize> = seq
            .iter()
            .copied()
            .filter(|n| seq.iter().filter(|m| *m == n).count() > 1)
            .collect();
        dups.dedup();
        let mut first_seen = Vec::new();
        for n in &seq {
            if !first_seen.contains(n) {
                first_seen.push(*n);
            }
        }
        let in_order = first_seen.windows(2).all(|w| w[0] < w[1]);
        if !missing.is_empty() {
            problems.push(format!(
                "{at}: missed {} of {PER_SENDER} messages from {s}: {missing:?}",
                missing.len()
            ));
        }
        if !dups.is_empty() {
            problems.push(format!("{at}: got messages of {s} twice: {dups:?}"));
        }
        if !in_order {
            problems.push(format!(
                "{at}: messages of {s} out of their send order: {seq:?}"
            ));
        }
        let wrong_nick: Vec<&Seen> = got
            .iter()
            .filter(|m| parse_tag(&m.tag).is_some_and(|(who, _)| who == s.nick) && m.nick != s.nick)
            .collect();
        if let Some(m) = wrong_nick.first() {
            problems.push(format!(
                "{at}: {} message(s) of {s} shown from nick {:?} (e.g. {})",
                wrong_nick.len(),
                m.nick,
                m.tag
            ));
        }
    }
    let strangers: Vec<&str> = got
        .iter()
        .filter(|m| parse_tag(&m.tag).is_none_or(|(who, _)| senders.iter().all(|s| s.nick != who)))
        .map(|m| m.tag.as_str())
        .collect();
    if !strangers.is_empty() {
        problems.push(format!(
            "{at}: unexpected messages (own echo to SIP?): {strangers:?}"
        ));
    }
    if let (Some(why), false) = (&seen.incomplete, problems.is_empty()) {
        problems.push(format!("{at}: stopped waiting: {why}"));
    }
    problems
}

/// Records `result`'s error (with `what`) in `problems`; the value if any.
fn soft<T>(problems: &mut Vec<String>, what: &str, result: Result<T>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("{what}: {}", xml::cut(&format!("{e:#}"), 1500)));
            None
        }
    }
}

/// One room of `cross_node_chat`; returns the problems seen (empty: all good). Errors are
/// failures of the test's own steps that make going on pointless.
async fn chat_in_room(
    room_name: &str,
    home: &str,
    alice: &mut RawClient,
    bob: &mut RawClient,
    carol: &mut SipClient,
) -> Result<Vec<String>> {
    let room = room_jid(room_name);
    let mut problems = Vec::new();
    eprintln!("room {room}: predicted home {home}");

    // alice creates the room on n1 (an instant room: empty configuration form).
    create_room(alice, "alice", &room, &[])
        .await
        .with_context(|| format!("{ALICE} creating {room}"))?;

    // bob joins on n2 and sees alice; alice sees bob.
    match bob.join(&room, "bob", None).await {
        Ok(JoinOutcome::Joined { others, .. }) => {
            let alice_occupant = format!("{room}/alice");
            if !others
                .iter()
                .any(|p| p.attr("from") == Some(alice_occupant.as_str()))
            {
                let seen: Vec<&str> = others.iter().filter_map(|p| p.attr("from")).collect();
                problems.push(format!(
                    "{BOB} joining {room} (predicted home {home}) was not shown {ALICE}'s presence; \
                     occupants shown: {seen:?}"
                ));
            }
        }
        Ok(JoinOutcome::Error { condition, stanza }) => problems.push(format!(
            "{BOB} could not join {room} (predicted home {home}): <{condition}/> {}",
            xml::show(&stanza)
        )),
        Err(e) => problems.push(format!(
            "{BOB} joining {room} (predicted home {home}): {e:#}"
        )),
    }
    soft(
        &mut problems,
        &format!("{ALICE} sees {BOB} join {room} (predicted home {home})"),
        presence(alice, &room, "bob", true).await,
    );

    // carol joins over SIP on n3: welcome naming both, and both XMPP users see her.
    let joined = soft(
        &mut problems,
        &format!("{CAROL} #join {room} (predicted home {home})"),
        send_expect(carol, room_name, "#join carol", 200).await,
    );
    if joined.is_some() {
        if let Some(welcome) = soft(
            &mut problems,
            &format!("{CAROL}'s welcome in {room} (predicted home {home})"),
            text_from(carol, room_name, "as carol").await,
        ) {
            if !(welcome.body.contains("alice") && welcome.body.contains("bob")) {
                problems.push(format!(
                    "{CAROL}'s welcome in {room} (predicted home {home}) does not name alice and bob: {:?}",
                    welcome.body
                ));
            }
        }
    }
    let (a, b) = tokio::join!(
        presence(alice, &room, "carol", true),
        presence(bob, &room, "carol", true)
    );
    soft(
        &mut problems,
        &format!("{ALICE} sees {CAROL} join {room} (predicted home {home})"),
        a,
    );
    soft(
        &mut problems,
        &format!("{BOB} sees {CAROL} join {room} (predicted home {home})"),
        b,
    );

    // 20 messages from each, interleaved.
    let mut carol_can_send = joined.is_some();
    for i in 0..PER_SENDER {
        alice.say(&room, &format!("alice#{i:02}")).await?;
        bob.say(&room, &format!("bob#{i:02}")).await?;
        if carol_can_send {
            let body = format!("carol#{i:02}");
            match send(carol, room_name, &body).await {
                Ok(r) if r.code == 200 => {}
                Ok(r) => {
                    problems.push(format!(
                        "{CAROL} posting {body:?} to {room} (predicted home {home}): {r} {}",
                        r.body_text()
                    ));
                    carol_can_send = false;
                }
                Err(e) => {
                    problems.push(format!(
                        "{CAROL} posting {body:?} to {room} (predicted home {home}): {e:#}"
                    ));
                    carol_can_send = false;
                }
            }
        }
    }
    let everyone = [ALICE, BOB, CAROL];
    let (ga, gb, gc) = tokio::join!(
        collect_xmpp(alice, &room, 3 * PER_SENDER, DELIVERY),
        collect_xmpp(bob, &room, 3 * PER_SENDER, DELIVERY),
        collect_sip(carol, &room, 2 * PER_SENDER, DELIVERY),
    );
    problems.extend(check_delivery(ALICE, &room, home, &ga, &everyone));
    problems.extend(check_delivery(BOB, &room, home, &gb, &everyone));
    problems.extend(check_delivery(CAROL, &room, home, &gc, &[ALICE, BOB]));
    Ok(problems)
}

#[tokio::test]
async fn cross_node_chat() {
    let (_ca, pool) = three_node_pool(&["alice", "bob", "carol"]).await;
    let mut alice = must(pool.xmpp("n1", "alice").await);
    let mut bob = must(pool.xmpp("n2", "bob").await);
    let mut carol = must(sip_common::sip_on(&pool, "n3", "carol").await);
    let rooms = must(pool::rooms_homed_on(
        &format!("xchat-{}", random_hex(6)),
        &NODES,
    ));
    let mut problems = Vec::new();
    for (room, home) in &rooms {
        problems.extend(must(
            chat_in_room(room, home, &mut alice, &mut bob, &mut carol).await,
        ));
    }
    eprintln!("pool status after the chat:\n{}", pool.load_summary().await);
    assert!(
        problems.is_empty(),
        "{} problem(s) across the pool:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The bodies of the next `want` live groupchat messages from `room` whose body ends with
/// `suffix`, in arrival order (at most [`DELIVERY`]); and why it stopped early, if it did.
async fn collect_bodies(
    c: &mut RawClient,
    room: &str,
    suffix: &str,
    want: usize,
) -> (Vec<String>, Option<String>) {
    let deadline = Instant::now() + DELIVERY;
    let mut got = Vec::new();
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let found = c
            .wait_for(left, &format!("groupchat from {room}"), |el| {
                el.name == "message"
                    && el.attr("type") == Some("groupchat")
                    && is_from_room(el, room)
                    && !has_delay(el)
                    && xml::body(el).is_some_and(|b| b.ends_with(suffix))
            })
            .await;
        match found {
            Ok(el) => got.push(xml::body(&el).unwrap_or_default()),
            Err(e) => return (got, Some(xml::cut(&format!("{e:#}"), 1000))),
        }
    }
    (got, None)
}

/// The groupchat messages of `room`'s history-on-join (after the self-presence, up to the
/// subject): (nick, body, delayed?).
async fn join_history(c: &mut RawClient, room: &str) -> Result<Vec<(String, String, bool)>> {
    let mut out = Vec::new();
    loop {
        let el = c
            .wait_for(
                STEP_TIMEOUT,
                &format!("history or subject from {room}"),
                |el| {
                    el.name == "message"
                        && el.attr("type") == Some("groupchat")
                        && is_from_room(el, room)
                },
            )
            .await?;
        if el.get_child("subject", "jabber:client").is_some() {
            return Ok(out);
        }
        out.push((
            el.attr("from")
                .and_then(xml::resource)
                .unwrap_or_default()
                .to_string(),
            xml::body(&el).unwrap_or_default(),
            has_delay(&el),
        ));
        if out.len() > 500 {
            return Err(anyhow!("more than 500 history messages from {room}"));
        }
    }
}

/// Checks `c`'s view of `room`'s whole MAM archive (paged by 4) against `want` (all from
/// alice, once, in order); one line per problem.
async fn check_mam(c: &mut RawClient, at: &str, room: &str, want: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let (items, pages) = match c.mam_all(room, 4).await {
        Ok(r) => r,
        Err(e) => return vec![format!("{at}: MAM query: {e:#}")],
    };
    let mam: Vec<String> = items.iter().filter_map(|i| i.body.clone()).collect();
    if mam != want {
        problems.push(format!(
            "{at}: MAM (pages of 4: {pages:?}) should be {want:?}, got {mam:?}"
        ));
    }
    let alice_occupant = format!("{room}/alice");
    if let Some(i) = items.iter().find(|i| i.from != alice_occupant) {
        problems.push(format!("{at}: MAM item from {} ({:?})", i.from, i.body));
    }
    let mut ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != items.len() {
        problems.push(format!("{at}: MAM ids repeat: {items:?}"));
    }
    problems
}

/// A fresh session of `user` on `node` joins `room` asking for 50 messages of history, checks
/// them and the MAM archive against `want`, and leaves; one line per problem.
async fn read_room_from(
    pool: &SharedPool,
    node: &str,
    user: &str,
    room: &str,
    home: &str,
    want: &[String],
) -> Result<Vec<String>> {
    let at = format!(
        "{user} (XMPP on {node}, joining after the posts) in {room} (predicted home {home})"
    );
    let mut problems = Vec::new();
    let mut c = pool.xmpp(node, user).await?;
    c.join_with(room, user, None, "<history maxstanzas='50'/>")
        .await
        .with_context(|| format!("{at}: joining"))?
        .joined()
        .with_context(|| format!("{at}: joining"))?;
    let history = join_history(&mut c, room)
        .await
        .with_context(|| format!("{at}: history on join"))?;
    let bodies: Vec<String> = history.iter().map(|(_, b, _)| b.clone()).collect();
    if bodies != want {
        problems.push(format!(
            "{at}: history on join should be {want:?} from alice, got {bodies:?}"
        ));
    }
    if let Some((nick, body, _)) = history.iter().find(|(n, _, _)| n != "alice") {
        problems.push(format!("{at}: history message {body:?} from nick {nick:?}"));
    }
    if history.iter().any(|(_, _, delayed)| !delayed) {
        problems.push(format!("{at}: history messages without <delay/>"));
    }
    problems.extend(check_mam(&mut c, &at, room, want).await);
    c.close().await;
    Ok(problems)
}

#[tokio::test]
async fn history_from_every_node() {
    let (_ca, pool) = three_node_pool(&["alice", "bob", "dave", "erin"]).await;
    let mut alice = must(pool.xmpp("n1", "alice").await);
    // bob and dave are in the rooms on n2 and n3 while alice posts (their nodes know the
    // rooms before the posts); erin joins afterwards, on each node in turn.
    let mut bob = must(pool.xmpp("n2", "bob").await);
    let mut dave = must(pool.xmpp("n3", "dave").await);
    let rooms = must(pool::rooms_homed_on(
        &format!("hist-{}", random_hex(6)),
        &NODES,
    ));
    let mut problems = Vec::new();
    for (room_name, home) in &rooms {
        let room = room_jid(room_name);
        eprintln!("room {room}: predicted home {home}");
        must(create_room(&mut alice, "alice", &room, &[]).await);
        for (c, who) in [(&mut bob, BOB), (&mut dave, DAVE)] {
            if let Err(e) = c
                .join(&room, who.nick, None)
                .await
                .and_then(JoinOutcome::joined)
            {
                problems.push(format!(
                    "{who} joining {room} (predicted home {home}): {e:#}"
                ));
            }
        }
        let want: Vec<String> = (0..10).map(|i| format!("h{i:02} in {room_name}")).collect();
        for body in &want {
            must(alice.say(&room, body).await);
        }
        // alice's reflections (the home took the posts) and bob's and dave's live copies: all,
        // in order, once.
        let suffix = format!(" in {room_name}");
        let (a, b, d) = tokio::join!(
            collect_bodies(&mut alice, &room, &suffix, want.len()),
            collect_bodies(&mut bob, &room, &suffix, want.len()),
            collect_bodies(&mut dave, &room, &suffix, want.len()),
        );
        for (who, (got, why)) in [(ALICE, a), (BOB, b), (DAVE, d)] {
            if got != want {
                problems.push(format!(
                    "{who} in {room} (predicted home {home}), live: should get {want:?} from \
                     alice, got {got:?}{}",
                    why.map(|w| format!(" (stopped waiting: {w})"))
                        .unwrap_or_default()
                ));
            }
        }
        let at = format!("{ALICE} in {room} (predicted home {home})");
        problems.extend(check_mam(&mut alice, &at, &room, &want).await);
        for (c, who) in [(&mut bob, BOB), (&mut dave, DAVE)] {
            let at =
                format!("{who}, in the room during the posts, in {room} (predicted home {home})");
            problems.extend(check_mam(c, &at, &room, &want).await);
        }
        for node in NODES {
            match read_room_from(&pool, node, "erin", &room, home, &want).await {
                Ok(p) => problems.extend(p),
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
    }
    eprintln!(
        "pool status after the reads:\n{}",
        pool.load_summary().await
    );
    assert!(
        problems.is_empty(),
        "{} problem(s) reading history across the pool:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[tokio::test]
async fn same_node_on_shared_store() {
    let (_ca, pool) = three_node_pool(&["alice", "bob", "carol", "dave"]).await;
    must(
        async {
            // Users added once through n1 log in and register on every node.
            for id in NODES {
                let mut x = pool.xmpp(id, "dave").await?;
                x.close().await;
                let mut s = sip_common::sip_on(&pool, id, "dave").await?;
                let code = s.unregister().await?;
                ensure!(code == 200, "un-REGISTER of dave on {id}: {code}");
                s.close().await?;
            }

            // Two XMPP users and a SIP user on n1 in one room: as on a single server.
            let room_name = format!("local-{}", random_hex(6));
            let room = room_jid(&room_name);
            let mut alice = pool.xmpp("n1", "alice").await?;
            let mut bob = pool.xmpp("n1", "bob").await?;
            let mut carol = sip_common::sip_on(&pool, "n1", "carol").await?;
            create_room(&mut alice, "alice", &room, &[]).await?;
            bob.join(&room, "bob", None).await?.joined()?;
            presence(&mut alice, &room, "bob", true).await?;
            send_expect(&mut carol, &room_name, "#join carol", 200).await?;
            text_from(&mut carol, &room_name, "as carol").await?;
            presence(&mut alice, &room, "carol", true).await?;
            presence(&mut bob, &room, "carol", true).await?;

            alice.say(&room, "hello from alice").await?;
            bob.wait_groupchat(&room, "hello from alice").await?;
            text_from(&mut carol, &room_name, "alice: hello from alice").await?;
            bob.say(&room, "hello from bob").await?;
            alice.wait_groupchat(&room, "hello from bob").await?;
            text_from(&mut carol, &room_name, "bob: hello from bob").await?;
            let r = carol
                .request(
                    Method::Message,
                    &room_uri(&room_name),
                    &[],
                    Some("text/plain;charset=UTF-8"),
                    b"hello from carol",
                )
                .await?;
            ensure!(r.code == 200, "carol's post: {r}");
            alice.wait_groupchat(&room, "hello from carol").await?;
            bob.wait_groupchat(&room, "hello from carol").await?;
            Ok(())
        }
        .await,
    );
}
