//! The real-client scenario, shared by `slixmpp_sqlite.rs` and `slixmpp_postgres.rs`:
//! alice and bob (slixmpp, `tests/clients/scenario.py`) log in with SCRAM-SHA-256 over
//! STARTTLS, discover the MUC service, list rooms, meet in `lobby`, chat in the room and
//! privately, alice creates and configures the reserved room `team`, posts 120 messages, bob
//! pages through them with MAM; the server is stopped with SIGTERM while they are connected
//! (each must get status 332) and started again on the same data; a second run checks that the
//! archive, the room, its title, subject and owner are all still there.

use crate::python::{self, PyClient, PyRun};
use crate::server::{Store, TestServer};
use anyhow::{bail, ensure, Context as _, Result};
use serde_json::Value;

const ALICE_PW: &str = "alice-secret";
const BOB_PW: &str = "bob-secret";
const LOBBY_MESSAGES: usize = 120;

/// Runs the scenario on a fresh server with `store`; panics (printing the server's log) on
/// failure.
pub async fn run(store: Store) {
    let version = python::require_slixmpp()
        .await
        .expect("slixmpp is required");
    eprintln!("slixmpp {version}");
    let mut server = TestServer::start(store).await.expect("server starts");
    crate::must(scenario(&mut server).await);
    server.stop().await.expect("server stops cleanly");
}

fn script_args(server: &TestServer, phase: &str) -> Vec<String> {
    vec![
        phase.to_string(),
        "--port".into(),
        server.starttls_addr().port().to_string(),
        "--ca".into(),
        server.ca_path().display().to_string(),
        "--alice-password".into(),
        ALICE_PW.into(),
        "--bob-password".into(),
        BOB_PW.into(),
    ]
}

async fn scenario(server: &mut TestServer) -> Result<()> {
    server.add_user("alice@localhost", ALICE_PW).await?;
    server.add_user("bob@localhost", BOB_PW).await?;

    let mut phase1 = PyClient::spawn("scenario.py", &script_args(server, "phase1")).await?;
    phase1.wait_event("ready_for_restart").await?;
    // Graceful stop while both users are in lobby and team.
    let stopped = server.stop().await;
    let run1 = phase1.finish().await?;
    stopped.context("stopping the server with SIGTERM while clients are connected")?;
    eprintln!("==== phase 1 ====\n{}", run1.describe());
    run1.ok()?;
    check_phase1(&run1).with_context(|| run1.describe())?;

    server
        .start_again()
        .await
        .context("starting the server again on the same data")?;
    let run2 = PyClient::spawn("scenario.py", &script_args(server, "phase2"))
        .await?
        .finish()
        .await?;
    eprintln!("==== phase 2 ====\n{}", run2.describe());
    run2.ok()?;
    check_phase2(&run1, &run2).with_context(|| run2.describe())?;
    Ok(())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| s(x).to_string()).collect())
        .unwrap_or_default()
}

fn numbers(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

fn by<'a>(run: &'a PyRun, event: &str, who: &str) -> Result<&'a Value> {
    run.all(event)
        .into_iter()
        .find(|e| s(&e["who"]) == who)
        .with_context(|| format!("no `{event}` event for {who}"))
}

fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("msg {i:03}")).collect()
}

/// The archive a MAM run returned: the 120 numbered messages once each and in order,
/// paged by at most 50.
fn check_mam(mam: &Value) -> Result<Vec<String>> {
    let bodies = strings(&mam["bodies"]);
    let ids = strings(&mam["ids"]);
    let pages = numbers(&mam["pages"]);
    ensure!(
        ids.len() == bodies.len(),
        "MAM ids and bodies differ in number"
    );
    let got: Vec<String> = bodies
        .iter()
        .filter(|b| b.starts_with("msg "))
        .cloned()
        .collect();
    ensure!(
        got == numbered(LOBBY_MESSAGES),
        "MAM should return msg 000..msg 119 in order, got {} numbered messages",
        got.len()
    );
    ensure!(
        pages.len() >= 3 && pages.iter().all(|p| *p <= 50),
        "MAM paging with max=50 should take 3 pages or more, got {pages:?}"
    );
    ensure!(
        pages.iter().sum::<u64>() as usize == bodies.len(),
        "page sizes {pages:?} do not add up to {} messages",
        bodies.len()
    );
    Ok(ids)
}

fn check_phase1(run: &PyRun) -> Result<()> {
    for who in ["alice", "bob"] {
        let login = by(run, "login", who)?;
        ensure!(
            s(&login["mechanism"]) == "SCRAM-SHA-256",
            "{who} did not use SCRAM-SHA-256: {login}"
        );
        ensure!(
            !login["tls"].is_null(),
            "{who}'s session is not TLS: {login}"
        );
    }
    let service = run.event("muc_service")?;
    ensure!(
        s(&service["jid"]) == crate::MUC_DOMAIN,
        "MUC service: {service}"
    );
    let rooms = strings(&run.event("rooms")?["rooms"]);
    ensure!(
        rooms.contains(&crate::room_jid("lobby")),
        "lobby not listed: {rooms:?}"
    );

    let lobby = crate::room_jid("lobby");
    let team = crate::room_jid("team");
    let saw: Vec<String> = run
        .all("saw_presence")
        .iter()
        .map(|e| format!("{}>{}", s(&e["who"]), s(&e["occupant"])))
        .collect();
    for want in [
        format!("alice>{lobby}/bob"),
        format!("bob>{lobby}/alice"),
        format!("alice>{team}/bob"),
    ] {
        ensure!(saw.contains(&want), "missing presence {want}; saw {saw:?}");
    }
    let gc: Vec<String> = run
        .all("groupchat")
        .iter()
        .map(|e| format!("{}:{}", s(&e["who"]), s(&e["body"])))
        .collect();
    ensure!(
        gc.contains(&"bob:hello from alice".to_string()),
        "bob missed alice's groupchat: {gc:?}"
    );
    ensure!(
        gc.contains(&"alice:hello from bob".to_string()),
        "alice missed bob's groupchat: {gc:?}"
    );
    ensure!(
        run.all("groupchat").iter().any(|e| e["stanza_id"] == true),
        "room messages carry no XEP-0359 stanza-id"
    );
    let pms: Vec<String> = run
        .all("private")
        .iter()
        .map(|e| format!("{}:{}:{}", s(&e["who"]), s(&e["sender"]), s(&e["body"])))
        .collect();
    ensure!(
        pms.contains(&format!("bob:{lobby}/alice:psst bob")),
        "bob missed the private message: {pms:?}"
    );
    ensure!(
        pms.contains(&format!("alice:{lobby}/bob:psst alice")),
        "alice missed the private message: {pms:?}"
    );

    let created = run.event("created")?;
    let codes = numbers(&created["codes"]);
    ensure!(
        codes.contains(&201) && codes.contains(&110),
        "team creation codes: {created}"
    );
    ensure!(
        s(&created["affiliation"]) == "owner",
        "alice does not own team: {created}"
    );
    let info = run.event("room_info")?;
    check_team_info(info)?;

    let live = by(run, "live", "bob")?;
    ensure!(
        strings(&live["bodies"]) == numbered(LOBBY_MESSAGES),
        "bob did not receive msg 000..119 live, in order"
    );
    let mam = run.event("mam")?;
    check_mam(mam)?;

    let shutdown: Vec<String> = run
        .all("shutdown_presence")
        .iter()
        .filter(|e| numbers(&e["codes"]).contains(&332))
        .map(|e| format!("{}@{}", s(&e["who"]), s(&e["room"])))
        .collect();
    for who in ["alice", "bob"] {
        for room in [&lobby, &team] {
            let want = format!("{who}@{room}");
            ensure!(
                shutdown.contains(&want),
                "{who} got no status 332 from {room} on shutdown: {shutdown:?}"
            );
        }
        by(run, "disconnected", who)?;
    }
    Ok(())
}

fn check_team_info(info: &Value) -> Result<()> {
    let identities = info["identities"].as_array().cloned().unwrap_or_default();
    let titled = identities
        .iter()
        .any(|i| s(&i[0]) == "conference" && s(&i[3]) == "Team room");
    ensure!(
        titled,
        "team's disco#info identity is not conference/\"Team room\": {info}"
    );
    let features = strings(&info["features"]);
    for f in [
        "http://jabber.org/protocol/muc",
        "muc_persistent",
        "muc_open",
    ] {
        ensure!(
            features.contains(&f.to_string()),
            "team's disco#info lacks {f}: {features:?}"
        );
    }
    ensure!(
        !features.contains(&"muc_membersonly".to_string()),
        "team is members-only: {features:?}"
    );
    Ok(())
}

fn check_phase2(run1: &PyRun, run2: &PyRun) -> Result<()> {
    for who in ["alice", "bob"] {
        let login = by(run2, "login", who)?;
        ensure!(
            s(&login["mechanism"]) == "SCRAM-SHA-256",
            "{who} after restart: {login}"
        );
    }
    let rooms = strings(&run2.event("rooms")?["rooms"]);
    for r in ["lobby", "team"] {
        ensure!(
            rooms.contains(&crate::room_jid(r)),
            "{r} is gone after the restart: {rooms:?}"
        );
    }
    check_team_info(run2.event("room_info")?)?;
    let before = check_mam(run1.event("mam")?)?;
    let after = check_mam(run2.event("mam")?).context("MAM after the restart")?;
    if before != after {
        bail!(
            "the archive changed across the restart: {} ids before, {} after",
            before.len(),
            after.len()
        );
    }
    let team = crate::room_jid("team");
    let lobby = crate::room_jid("lobby");
    let joined = run2.all("joined");
    let alice_team = joined
        .iter()
        .find(|e| s(&e["who"]) == "alice" && s(&e["room"]) == team)
        .context("alice did not rejoin team")?;
    ensure!(
        s(&alice_team["affiliation"]) == "owner",
        "alice lost team's ownership: {alice_team}"
    );
    ensure!(
        s(&alice_team["subject"]) == "Team business",
        "team lost its subject: {alice_team}"
    );
    let bob_lobby = joined
        .iter()
        .find(|e| s(&e["who"]) == "bob" && s(&e["room"]) == lobby)
        .context("bob did not rejoin lobby")?;
    let history = strings(&bob_lobby["history"]);
    let want: Vec<String> = (LOBBY_MESSAGES - 5..LOBBY_MESSAGES)
        .map(|i| format!("msg {i:03}"))
        .collect();
    ensure!(
        history == want,
        "history on join (maxstanzas=5) should be msg 115..119, got {history:?}"
    );
    let gc = run2.all("groupchat");
    ensure!(
        gc.iter().any(|e| s(&e["body"]) == "after restart"),
        "the lobby did not deliver a message after the restart"
    );
    Ok(())
}
