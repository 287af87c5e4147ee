//! Room engine behaviour through its public API on an in-memory SQLite store: entry order and
//! status codes, history on join, durable posting with per-room seq, nick changes, private
//! messages, archive paging, persistence and shutdown.

mod engine_common;

use engine_common::*;
use palaver_core::engine::*;
use palaver_core::*;

#[tokio::test]
async fn creating_a_room_by_joining_gives_201_and_owner() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    join(&e, "team", &alice, "Alice", false)
        .await
        .expect("join");
    let evs = alice.sink.take();
    let p = presences(&evs);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].2.contains(&201) && p[0].2.contains(&110),
        "codes {:?}",
        p[0].2
    );
    let RoomEventKind::Presence(me) = &evs[0].0.kind else {
        panic!("presence first")
    };
    assert_eq!(me.affiliation, Affiliation::Owner);
    assert_eq!(me.role, Role::Moderator);
    // Reserved room is locked for others until configured.
    let bob = client(2, "bob@localhost");
    assert_eq!(
        join(&e, "team", &bob, "Bob", false).await,
        Err(RoomError::ItemNotFound)
    );
    e.ask("team", |reply| RoomCommand::SetConfig {
        actor_user: alice.r.user.clone(),
        config: RoomConfig::default(),
        reply,
    })
    .await
    .expect("configured");
    join(&e, "team", &bob, "Bob", false)
        .await
        .expect("bob joins after config");
}

#[tokio::test]
async fn entry_order_history_and_seq() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    let bob = client(2, "bob@localhost");
    join(&e, "lobby", &alice, "alice", true)
        .await
        .expect("join");
    for i in 0..5 {
        let m = post(&e, "lobby", &alice, &format!("m{i}"))
            .await
            .expect("post");
        assert_eq!(m.seq, i + 1);
    }
    alice.sink.take();
    join(&e, "lobby", &bob, "bob", false).await.expect("join");
    let evs = bob.sink.take();
    // others' presence, own presence (110), history (5), subject.
    let kinds: Vec<&str> = evs
        .iter()
        .map(|(e, f)| match &e.kind {
            RoomEventKind::Presence(_) if f.is_self => "self",
            RoomEventKind::Presence(_) => "other",
            RoomEventKind::Message { history: true, .. } => "history",
            RoomEventKind::Subject { .. } => "subject",
            _ => "?",
        })
        .collect();
    assert_eq!(
        kinds,
        ["other", "self", "history", "history", "history", "history", "history", "subject"]
    );
    // Alice saw bob arrive.
    let p = presences(&alice.sink.take());
    assert_eq!(
        p,
        vec![("bob".into(), PresenceKind::Available, vec![], false)]
    );
    // A post reaches both, sender included, only after commit; seq continues.
    let m = post(&e, "lobby", &bob, "hello").await.expect("post");
    assert_eq!(m.seq, 6);
    let stored = e
        .store()
        .history(
            m.room_id,
            &HistoryQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("history");
    assert_eq!(stored.len(), 6);
    assert_eq!(stored[5].body, "hello");
    for c in [&alice, &bob] {
        let got: Vec<String> = c
            .sink
            .take()
            .iter()
            .filter_map(|(e, _)| match &e.kind {
                RoomEventKind::Message {
                    message,
                    history: false,
                } => Some(message.body.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(got, ["hello"]);
    }
}

#[tokio::test]
async fn nick_conflict_change_and_private_messages() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    let bob = client(2, "bob@localhost");
    join(&e, "lobby", &alice, "alice", true)
        .await
        .expect("join");
    assert_eq!(
        join(&e, "lobby", &bob, "alice", false).await,
        Err(RoomError::Conflict)
    );
    join(&e, "lobby", &bob, "bob", false).await.expect("join");
    alice.sink.take();
    e.ask("lobby", |reply| RoomCommand::ChangeNick {
        client: 2,
        nick: "robert".into(),
        reply,
    })
    .await
    .expect("nick change");
    let p = alice.sink.take();
    let RoomEventKind::Presence(gone) = &p[0].0.kind else {
        panic!()
    };
    assert_eq!(
        (gone.nick.as_str(), gone.kind, gone.new_nick.as_deref()),
        ("bob", PresenceKind::Unavailable, Some("robert"))
    );
    assert!(gone.codes.codes().any(|c| c == 303));
    let RoomEventKind::Presence(back) = &p[1].0.kind else {
        panic!()
    };
    assert_eq!(
        (back.nick.as_str(), back.kind),
        ("robert", PresenceKind::Available)
    );
    e.ask("lobby", |reply| RoomCommand::Private {
        client: 1,
        to_nick: "robert".into(),
        body: "psst".into(),
        extra: None,
        origin_id: "x".into(),
        reply,
    })
    .await
    .expect("pm");
    let got = bob.sink.take();
    assert!(got.iter().any(|(e, _)| matches!(&e.kind, RoomEventKind::Private(pm) if pm.body == "psst" && pm.from_nick == "alice")));
    assert_eq!(
        e.ask("lobby", |reply| RoomCommand::Private {
            client: 1,
            to_nick: "nobody".into(),
            body: "x".into(),
            extra: None,
            origin_id: String::new(),
            reply,
        })
        .await,
        Err(RoomError::RecipientUnavailable)
    );
}

#[tokio::test]
async fn archive_pages_and_persistence_across_engines() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}/p.db", dir.path().display());
    let alice = client(1, "alice@localhost");
    {
        let e = Engine::new(
            open_store(&url).await.expect("store"),
            EngineConfig::default(),
        );
        join(&e, "lobby", &alice, "alice", true)
            .await
            .expect("join");
        for i in 0..120 {
            post(&e, "lobby", &alice, &format!("n{i}"))
                .await
                .expect("post");
        }
        e.ask("lobby", |reply| RoomCommand::SetSubject {
            client: 1,
            subject: "Welcome".into(),
            reply,
        })
        .await
        .expect("subject");
        alice.sink.take();
        e.shutdown().await;
        let p = presences(&alice.sink.take());
        assert_eq!(
            p,
            vec![("alice".into(), PresenceKind::Unavailable, vec![332], true)]
        );
    }
    let e = Engine::new(
        open_store(&url).await.expect("store"),
        EngineConfig::default(),
    );
    let info = e.room_info("lobby").await.expect("room persisted");
    assert_eq!(info.subject, "Welcome");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let query = HistoryQuery {
            limit: 50,
            ..Default::default()
        };
        let page = e
            .ask("lobby", |reply| RoomCommand::QueryArchive {
                actor_user: alice.r.user.clone(),
                query,
                after_id: after.clone(),
                before_id: None,
                reply,
            })
            .await
            .expect("page");
        assert_eq!(page.count, 120);
        seen.extend(page.messages.iter().map(|m| m.body.clone()));
        after = page.messages.last().map(|m| m.stanza_id.clone());
        if page.complete {
            break;
        }
    }
    assert_eq!(seen, (0..120).map(|i| format!("n{i}")).collect::<Vec<_>>());
    // Last page from the end.
    let query = HistoryQuery {
        limit: 10,
        from_end: true,
        ..Default::default()
    };
    let page = e
        .ask("lobby", |reply| RoomCommand::QueryArchive {
            actor_user: alice.r.user.clone(),
            query,
            after_id: None,
            before_id: None,
            reply,
        })
        .await
        .expect("page");
    assert_eq!(page.messages.first().map(|m| m.body.as_str()), Some("n110"));
    assert!(!page.complete);
    // The seq continues after a restart.
    join(&e, "lobby", &alice, "alice", false)
        .await
        .expect("rejoin");
    assert_eq!(
        post(&e, "lobby", &alice, "after restart")
            .await
            .expect("post")
            .seq,
        121
    );
}

async fn history_count(e: &Engine, room: &str, id: u64, history: HistoryRequest) -> usize {
    let c = client(id, &format!("u{id}@localhost"));
    let req = JoinRequest {
        client: c.r.clone(),
        nick: format!("u{id}"),
        password: None,
        history,
        payload: None,
        create: false,
        instant: false,
    };
    e.ask(room, |reply| RoomCommand::Join { req, reply })
        .await
        .expect("join");
    c.sink
        .take()
        .iter()
        .filter(|(e, _)| matches!(&e.kind, RoomEventKind::Message { history: true, .. }))
        .count()
}

#[tokio::test]
async fn history_on_join_honours_maxstanzas_maxchars_seconds_and_since() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    join(&e, "lobby", &alice, "alice", true)
        .await
        .expect("join");
    let mut first_ts = 0;
    for i in 0..8 {
        let m = post(&e, "lobby", &alice, &format!("message number {i}"))
            .await
            .expect("post");
        if i == 0 {
            first_ts = m.ts;
        }
    }
    // Default: the room's history length (20) covers all 8.
    assert_eq!(
        history_count(&e, "lobby", 10, HistoryRequest::default()).await,
        8
    );
    assert_eq!(
        history_count(
            &e,
            "lobby",
            11,
            HistoryRequest {
                max_stanzas: Some(3),
                ..Default::default()
            }
        )
        .await,
        3
    );
    assert_eq!(
        history_count(
            &e,
            "lobby",
            12,
            HistoryRequest {
                max_chars: Some(0),
                ..Default::default()
            }
        )
        .await,
        0
    );
    // Each message costs its body plus envelope (~180 chars here): 400 chars fit two.
    assert_eq!(
        history_count(
            &e,
            "lobby",
            13,
            HistoryRequest {
                max_chars: Some(400),
                ..Default::default()
            }
        )
        .await,
        2
    );
    assert_eq!(
        history_count(
            &e,
            "lobby",
            14,
            HistoryRequest {
                seconds: Some(3600),
                ..Default::default()
            }
        )
        .await,
        8
    );
    assert_eq!(
        history_count(
            &e,
            "lobby",
            15,
            HistoryRequest {
                since: Some(first_ts + 3_600_000),
                ..Default::default()
            }
        )
        .await,
        0
    );
    assert_eq!(
        history_count(
            &e,
            "lobby",
            16,
            HistoryRequest {
                since: Some(first_ts),
                max_stanzas: Some(5),
                ..Default::default()
            }
        )
        .await,
        5
    );
}

/// Rooms created at the same moment are loaded in parallel (one gate per room name), and two
/// creating joins racing for the same new room still make one room: the second one joins it.
#[tokio::test]
async fn concurrent_creating_joins_make_each_room_once() {
    let e = engine().await;
    let clients: Vec<Client> = (0..40)
        .map(|i| client(i, &format!("u{i}@localhost")))
        .collect();
    // Client 2k and 2k+1 both join room k: 20 rooms, two racing creators each.
    let joins = clients.iter().enumerate().map(|(i, c)| {
        let e = e.clone();
        async move { join(&e, &format!("race{}", i / 2), c, &format!("n{i}"), true).await }
    });
    for (i, result) in futures::future::join_all(joins)
        .await
        .into_iter()
        .enumerate()
    {
        assert!(result.is_ok(), "join {i}: {result:?}");
    }
    let rooms = e.list_rooms().await.expect("list");
    for k in 0..20 {
        let info = rooms
            .iter()
            .find(|r| r.name == format!("race{k}"))
            .unwrap_or_else(|| panic!("race{k} exists"));
        assert_eq!(info.occupants, 2, "both racers are in race{k}");
    }
}
