//! Draining a pool member (`palaver pool drain NODE` / `undrain`, docs/cli.md): three active
//! nodes n1, n2, n3 on 127.0.0.1–3 share ONE PostgreSQL schema (`$PALAVER_TEST_PG`, else
//! `$DATABASE_URL`; the tests fail without them), and every member line of `[pool] members`
//! names the member's XMPP (STARTTLS) address, `xmpp = "127.0.0.x:port"`
//! ([`PoolSpec::with_xmpp_addresses`]).
//!
//! * `drain_moves_rooms_and_clients`: in a room homed on n2, alice (XMPP on n2) posts, bob
//!   (XMPP on n1) and carol (SIP pager over UDP on n2) listen. `pool drain n2` through n1's CLI
//!   shows n2 `draining`; alice's stream ends with `see-other-host` naming n1's xmpp address (n1
//!   is the first member by id that is up), a new XMPP session on n2 gets the same after
//!   bind; over SIP n2 still answers OPTIONS 200 but MESSAGE and REGISTER 503 with
//!   `Retry-After: 300`; n2's status drops to 0 rooms and at most carol's SIP occupancy as
//!   users. bob stays in the room (now homed elsewhere) and keeps posting, and carol, whose
//!   SIP occupancy stays on n2 (docs/cli.md), still gets his posts; alice follows the
//!   redirect, joins again through n1 and finds in the MAM archive every message acked before
//!   the drain and bob's later ones, in order, once. `pool undrain n2` shows n2 up again, and a
//!   new session on n2 logs in, joins the room (homed on n2 again), posts, and n2 homes rooms.
//!
//! No slixmpp test: Debian's python3-slixmpp 1.8.3 reads `see-other-host` and sets the new
//! address, but its `reconnect()` calls `ClientXMPP.connect()` without arguments, which resets
//! the address to the JID's domain on port 5222 (with an SRV lookup), so it never reaches the
//! host the server named.
//!
//! Every wait is bounded; nothing sleeps. On failure the nodes' logs are printed (node ids
//! first, then each node's stdout and stderr tail).

mod sip_common;

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use palaver_e2e::pool::{self, member, state, PoolCa, PoolSpec, SharedPool};
use palaver_e2e::raw_client::{RawClient, SaslOutcome, StreamErrorSeen};
use palaver_e2e::sip_client::{Method, Response};
use palaver_e2e::{must, password_of, random_hex, room_jid, xml, DOMAIN, STEP_TIMEOUT};
use serde_json::Value;
use sip_common::{create_room, presence, room_uri, send, send_expect, text_from};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Bound for the pool to form, and for a drain or undrain to show everywhere.
const CONVERGE: Duration = Duration::from_secs(20);
/// Bound for a drained node's rooms and users to leave it.
const EMPTY: Duration = Duration::from_secs(30);
const NODES: [&str; 3] = ["n1", "n2", "n3"];
/// Messages alice posts before the drain, bob after it.
const POSTS: usize = 5;

/// Three active nodes on one shared PostgreSQL schema, each with an `xmpp` address in the
/// members list, all seeing each other up, with `users`.
async fn three_node_pool(users: &[&str]) -> (PoolCa, SharedPool) {
    let ca = must(PoolCa::new());
    let spec = must(PoolSpec::three_active().and_then(PoolSpec::with_xmpp_addresses));
    let pool = must(pool::start_shared_pg_pool(&spec, &ca, &NODES).await);
    must(pool.wait_all_up(CONVERGE).await);
    must(pool.add_users(users).await);
    eprintln!("{}", pool.describe());
    for id in NODES {
        eprintln!("{id}: xmpp = {:?}", must(spec.xmpp_addr(id)));
    }
    (ca, pool)
}

/// A room name homed on `node` (among all three).
fn room_homed_on(prefix: &str, node: &str) -> Result<String> {
    pool::rooms_homed_on(&format!("{prefix}-{}", random_hex(6)), &NODES)?
        .into_iter()
        .find(|(_, n)| n == node)
        .map(|(r, _)| r)
        .ok_or_else(|| anyhow!("no room homed on {node}"))
}

/// Checks that `end` is `see-other-host` naming `want` and that the stream was then closed;
/// one line per problem.
fn check_redirect(who: &str, end: &StreamErrorSeen, want: SocketAddr) -> Vec<String> {
    let mut problems = Vec::new();
    if end.condition != "see-other-host" {
        problems.push(format!(
            "{who}: stream error <{}/>, expected <see-other-host/> naming {want}",
            end.condition
        ));
    } else if end.other_host.as_deref() != Some(want.to_string().as_str()) {
        problems.push(format!(
            "{who}: <see-other-host/> names {:?}, expected {want} (n1's xmpp address; n1 is the \
             first member by id that is up)",
            end.other_host
        ));
    }
    if !end.closed {
        problems.push(format!(
            "{who}: the stream was not closed after the stream error"
        ));
    }
    problems
}

/// The bodies of the next `want` live groupchat messages from `room` whose body starts with
/// `prefix` (at most [`STEP_TIMEOUT`] in all); fails on an error message from the room.
async fn collect(c: &mut RawClient, room: &str, prefix: &str, want: usize) -> Result<Vec<String>> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut got = Vec::new();
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let el = c
            .wait_for(left, &format!("groupchat {prefix}… from {room}"), |el| {
                el.name == "message"
                    && el
                        .attr("from")
                        .map(xml::bare)
                        .is_some_and(|b| b.eq_ignore_ascii_case(room))
                    && (el.attr("type") == Some("error")
                        || (el.attr("type") == Some("groupchat")
                            && el.get_child("delay", "urn:xmpp:delay").is_none()
                            && xml::body(el).is_some_and(|b| b.starts_with(prefix))))
            })
            .await
            .with_context(|| format!("after {got:?}"))?;
        if el.attr("type") == Some("error") {
            bail!("an error from {room} after {got:?}: {}", xml::show(&el));
        }
        got.push(xml::body(&el).unwrap_or_default());
    }
    Ok(got)
}

/// `palaver pool drain|undrain n2 --json` through `via`; the JSON printed.
async fn drain_cmd(pool: &SharedPool, via: &str, verb: &str, node: &str) -> Result<Value> {
    let out = pool
        .node(via)?
        .cli(&["pool", verb, node, "--json"])
        .await?
        .ok()
        .with_context(|| format!("palaver pool {verb} {node} --json through {via}"))?;
    serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("pool {verb} JSON: {}", out.stdout))
}

/// Waits until every node sees member `id` in `want_state`.
async fn wait_state_everywhere(pool: &SharedPool, id: &str, want_state: &str) -> Result<()> {
    for n in NODES {
        pool::wait_status(
            pool.node(n)?,
            CONVERGE,
            &format!("{n} sees {id} {want_state}"),
            |s| state(s, id) == want_state,
            |_| None,
        )
        .await?;
    }
    Ok(())
}

/// `(users, rooms)` of member `id` in a status report.
fn load_of(s: &Value, id: &str) -> (i64, i64) {
    let m = member(s, id);
    let get = |k: &str| m.and_then(|m| m[k].as_i64()).unwrap_or(-1);
    (get("users"), get("rooms"))
}

/// What a new XMPP session of `user` on `addr` (trusting `ca`) sees: login, bind, then the
/// stream error. `Err` describes where it went otherwise.
async fn new_session_redirected(
    addr: SocketAddr,
    ca: &std::path::Path,
    user: &str,
) -> Result<(String, StreamErrorSeen)> {
    let mut c = RawClient::connect_tls(addr, ca).await?;
    match c.auth_plain(user, &password_of(user)).await? {
        SaslOutcome::Success => {}
        SaslOutcome::StreamError(cond) => {
            return Ok((
                "SASL".into(),
                StreamErrorSeen {
                    condition: cond,
                    other_host: None,
                    closed: true,
                    before: Vec::new(),
                },
            ))
        }
        other => bail!("SASL PLAIN of {user}: {other:?}"),
    }
    c.restart_stream().await.context("stream restart")?;
    if let Err(e) = c.bind("drained").await {
        // The server may end the stream instead of answering the bind.
        let tail = c.tail_text();
        if tail.contains("see-other-host") || tail.contains("stream:error") {
            bail!("the stream error came instead of the bind result: {tail}");
        }
        return Err(e.context("bind"));
    }
    let end = c
        .expect_stream_error(STEP_TIMEOUT)
        .await
        .context("after bind")?;
    Ok(("after bind".into(), end))
}

/// Which node's `xmpp` address `host` is (`None`: none).
fn node_of_xmpp(spec: &PoolSpec, host: &str) -> Option<&'static str> {
    NODES
        .into_iter()
        .find(|id| spec.xmpp_addr(id).is_ok_and(|a| a.to_string() == host))
}

#[tokio::test]
async fn drain_moves_rooms_and_clients() {
    let (_ca, pool) = three_node_pool(&["alice", "bob", "carol", "dave"]).await;
    let spec = pool.spec().clone();
    let n1_xmpp = must(spec.xmpp_addr("n1"));
    let room_name = must(room_homed_on("drain", "n2"));
    let room = room_jid(&room_name);
    eprintln!("room {room}: predicted home n2");
    let mut problems: Vec<String> = Vec::new();

    // alice (n2) creates the room, bob (n1) joins, carol (SIP, n2) joins.
    let mut alice = must(pool.xmpp("n2", "alice").await);
    let mut bob = must(pool.xmpp("n1", "bob").await);
    let mut carol = must(sip_common::sip_on(&pool, "n2", "carol").await);
    must(create_room(&mut alice, "alice", &room, &[]).await);
    must(
        bob.join(&room, "bob", None)
            .await
            .and_then(|j| j.joined())
            .context("bob (XMPP on n1) joining"),
    );
    must(presence(&mut alice, &room, "bob", true).await);
    must(send_expect(&mut carol, &room_name, "#join carol", 200).await);
    must(text_from(&mut carol, &room_name, "as carol").await);
    must(presence(&mut alice, &room, "carol", true).await);
    must(presence(&mut bob, &room, "carol", true).await);

    // alice posts; each post is acked by its reflection.
    let before: Vec<String> = (0..POSTS).map(|i| format!("pre#{i:02}")).collect();
    for body in &before {
        must(alice.say(&room, body).await);
    }
    let acked = must(collect(&mut alice, &room, "pre#", POSTS).await);
    assert_eq!(acked, before, "alice's reflections before the drain");
    let bob_got = must(collect(&mut bob, &room, "pre#", POSTS).await);
    assert_eq!(bob_got, before, "bob's copies before the drain");
    eprintln!("before the drain:\n{}", pool.load_summary().await);

    // Drain n2 through n1's CLI.
    let drained = must(drain_cmd(&pool, "n1", "drain", "n2").await);
    eprintln!("pool drain n2 --json: {drained}");
    assert_eq!(
        state(&drained, "n2"),
        "draining",
        "pool drain n2 should show n2 draining: {drained:#}"
    );

    // alice's session on n2 is sent to n1.
    match alice.expect_stream_error(STEP_TIMEOUT).await {
        Ok(end) => {
            eprintln!(
                "alice (n2) got <{}/> {:?} (closed: {}) after {} stanza(s)",
                end.condition,
                end.other_host,
                end.closed,
                end.before.len()
            );
            problems.extend(check_redirect("alice's session on n2", &end, n1_xmpp));
        }
        Err(e) => problems.push(format!(
            "alice's session on n2 after the drain: {}",
            xml::cut(&format!("{e:#}"), 1500)
        )),
    }

    // A new XMPP session on n2 is sent away too.
    let n2 = must(pool.node("n2"));
    match new_session_redirected(n2.starttls_addr(), &n2.ca_path(), "dave").await {
        Ok((when, end)) => {
            eprintln!(
                "new session on draining n2: <{}/> {:?} {when}",
                end.condition, end.other_host
            );
            problems.extend(check_redirect(
                &format!("a new session on draining n2 ({when})"),
                &end,
                n1_xmpp,
            ));
        }
        Err(e) => problems.push(format!(
            "a new XMPP session on draining n2: {}",
            xml::cut(&format!("{e:#}"), 1500)
        )),
    }

    // SIP on n2: OPTIONS 200; MESSAGE and REGISTER 503 with Retry-After: 300.
    match carol
        .request(Method::Options, &format!("sip:{DOMAIN}"), &[], None, b"")
        .await
    {
        Ok(r) if r.code == 200 => {}
        Ok(r) => problems.push(format!("OPTIONS to draining n2: {r} (expected 200)")),
        Err(e) => problems.push(format!("OPTIONS to draining n2: {e:#}")),
    }
    let check_503 = |what: &str, r: Result<Response>, problems: &mut Vec<String>| match r {
        Ok(r) if r.code == 503 && r.header("Retry-After").map(str::trim) == Some("300") => {}
        Ok(r) => problems.push(format!(
            "{what} to draining n2: {r}, Retry-After {:?} (expected 503 with Retry-After: 300)",
            r.header("Retry-After")
        )),
        Err(e) => problems.push(format!("{what} to draining n2: {e:#}")),
    };
    let r = send(&mut carol, &room_name, "carol during the drain").await;
    check_503("MESSAGE", r, &mut problems);
    let r = carol.register_response(600).await;
    check_503("REGISTER", r, &mut problems);

    // Every node sees n2 draining; n2 homes no room and keeps at most carol's SIP occupancy.
    must(wait_state_everywhere(&pool, "n2", "draining").await);
    match pool::wait_status(
        n2,
        EMPTY,
        "n2 homes no room and keeps at most carol (SIP) as a user",
        |s| {
            let (users, rooms) = load_of(s, "n2");
            rooms == 0 && (0..=1).contains(&users)
        },
        |_| None,
    )
    .await
    {
        Ok((s, _)) => {
            let (users, rooms) = load_of(&s, "n2");
            eprintln!("n2 draining: users {users}, rooms {rooms} (carol's SIP occupancy stays)");
        }
        Err(e) => problems.push(xml::cut(&format!("{e:#}"), 3000)),
    }
    eprintln!("during the drain:\n{}", pool.load_summary().await);

    // bob stays and keeps posting; carol (SIP on n2) still gets the room's messages.
    let after: Vec<String> = (0..POSTS).map(|i| format!("post#{i:02}")).collect();
    for body in &after {
        must(bob.say(&room, body).await);
    }
    match collect(&mut bob, &room, "post#", POSTS).await {
        Ok(got) if got == after => {}
        Ok(got) => problems.push(format!(
            "bob (n1) after the drain: reflections {got:?}, expected {after:?}"
        )),
        Err(e) => problems.push(format!(
            "bob (n1) posting after the drain: {}",
            xml::cut(&format!("{e:#}"), 2000)
        )),
    }
    let uri = room_uri(&room_name);
    for body in &after {
        let needle = format!("bob: {body}");
        if let Err(e) = carol
            .wait_message(|m| m.from == uri && m.body == needle, STEP_TIMEOUT)
            .await
        {
            problems.push(format!(
                "carol (SIP on draining n2) did not get {needle:?}: {}",
                xml::cut(&format!("{e:#}"), 1000)
            ));
            break;
        }
    }

    // alice follows the redirect (n1), joins again and reads the archive.
    let named = node_of_xmpp(&spec, &n1_xmpp.to_string()).unwrap_or("n1");
    let target = must(pool.node(named));
    let mut alice2 = must(
        palaver_e2e::xmpp_available(target, "alice")
            .await
            .context("alice reconnecting to n1 (named by see-other-host)"),
    );
    ensure_ok(
        &mut problems,
        "alice joining again through n1",
        alice2
            .join(&room, "alice", None)
            .await
            .and_then(|j| j.joined())
            .map(|_| ()),
    );
    let want: Vec<String> = before.iter().chain(&after).cloned().collect();
    match alice2.mam_all(&room, 4).await {
        Ok((items, pages)) => {
            let bodies: Vec<String> = items.iter().filter_map(|i| i.body.clone()).collect();
            if bodies != want {
                problems.push(format!(
                    "alice's MAM of {room} after the drain (pages of 4: {pages:?}) should be \
                     {want:?}, got {bodies:?}"
                ));
            }
        }
        Err(e) => problems.push(format!("alice's MAM query through n1: {e:#}")),
    }

    // Undrain: n2 serves again and the room goes back to it.
    let undrained = must(drain_cmd(&pool, "n1", "undrain", "n2").await);
    eprintln!("pool undrain n2 --json: {undrained}");
    if state(&undrained, "n2") != "up" {
        problems.push(format!("pool undrain n2 should show n2 up: {undrained:#}"));
    }
    must(wait_state_everywhere(&pool, "n2", "up").await);
    let mut dave = match pool.xmpp("n2", "dave").await {
        Ok(c) => c,
        Err(e) => panic!("a new XMPP session on n2 after undrain: {e:#}\n{problems:#?}"),
    };
    ensure_ok(
        &mut problems,
        "dave (n2, after undrain) joining the room",
        dave.join(&room, "dave", None)
            .await
            .and_then(|j| j.joined())
            .map(|_| ()),
    );
    ensure_ok(
        &mut problems,
        "dave (n2, after undrain) posting",
        async {
            dave.say(&room, "back#00").await?;
            let got = collect(&mut dave, &room, "back#", 1).await?;
            ensure!(got == ["back#00"], "reflection {got:?}");
            bob.wait_groupchat(&room, "back#00").await?;
            alice2.wait_groupchat(&room, "back#00").await?;
            Ok(())
        }
        .await,
    );
    match pool::wait_status(
        n2,
        EMPTY,
        "n2 homes a room again after undrain",
        |s| load_of(s, "n2").1 > 0,
        |_| None,
    )
    .await
    {
        Ok((s, _)) => eprintln!("n2 after undrain: (users, rooms) {:?}", load_of(&s, "n2")),
        Err(e) => problems.push(xml::cut(&format!("{e:#}"), 3000)),
    }
    // The session on n2 was not sent away after all.
    ensure_ok(
        &mut problems,
        "dave (n2) still connected after undrain",
        async {
            dave.say(&room, "back#01").await?;
            let got = collect(&mut dave, &room, "back#", 1).await?;
            ensure!(got == ["back#01"], "reflection {got:?}");
            Ok(())
        }
        .await,
    );
    eprintln!("after the undrain:\n{}", pool.load_summary().await);
    assert!(
        problems.is_empty(),
        "{} problem(s) draining n2:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Records `r`'s error (with `what`) in `problems`.
fn ensure_ok(problems: &mut Vec<String>, what: &str, r: Result<()>) {
    if let Err(e) = r {
        problems.push(format!("{what}: {}", xml::cut(&format!("{e:#}"), 1500)));
    }
}
