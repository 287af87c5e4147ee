//! Observing rooms from outside: the occupant list (with each occupant's protocol) and its
//! access rules, and watchers that follow presence, subject and destruction but not messages.

mod engine_common;

use engine_common::*;
use palaver_core::engine::*;
use palaver_core::*;
use std::sync::Arc;

fn user(s: &str) -> UserId {
    UserId::parse(s).expect("user")
}

async fn occupants(e: &Engine, room: &str, actor: &str) -> Result<Vec<RosterEntry>, RoomError> {
    e.ask(room, |reply| RoomCommand::Occupants {
        actor_user: user(actor),
        reply,
    })
    .await
}

async fn watch(
    e: &Engine,
    room: &str,
    watcher: ClientId,
    who: &str,
    sink: Arc<dyn EventSink>,
) -> Result<RoomSnapshot, RoomError> {
    e.ask(room, |reply| RoomCommand::Watch {
        watcher,
        user: user(who),
        sink,
        reply,
    })
    .await
}

async fn set_config(e: &Engine, room: &str, owner: &Client, config: RoomConfig) {
    e.ask(room, |reply| RoomCommand::SetConfig {
        actor_user: owner.r.user.clone(),
        config,
        reply,
    })
    .await
    .expect("config");
}

async fn set_affiliation(e: &Engine, room: &str, owner: &Client, who: &str, a: Affiliation) {
    e.ask(room, |reply| RoomCommand::SetAffiliation {
        client: owner.r.id,
        actor_user: owner.r.user.clone(),
        user: user(who),
        affiliation: a,
        reason: None,
        reply,
    })
    .await
    .expect("affiliation");
}

async fn set_subject(e: &Engine, room: &str, c: &Client, subject: &str) {
    e.ask(room, |reply| RoomCommand::SetSubject {
        client: c.r.id,
        subject: subject.into(),
        reply,
    })
    .await
    .expect("subject");
}

fn entry(nick: &str, who: &str, role: Role, aff: Affiliation, p: ClientProtocol) -> RosterEntry {
    RosterEntry {
        nick: nick.into(),
        user: user(who),
        role,
        affiliation: aff,
        protocol: p,
    }
}

/// What a watcher saw, in order: presences as (nick, kind, new nick), subjects, destruction.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Presence(String, PresenceKind, Option<String>),
    Subject(String),
    Destroyed(String),
    Other,
}

fn seen(events: &[(Arc<RoomEvent>, DeliveryFlags)]) -> Vec<Seen> {
    events
        .iter()
        .map(|(e, _)| match &e.kind {
            RoomEventKind::Presence(p) => {
                Seen::Presence(p.nick.clone(), p.kind, p.new_nick.clone())
            }
            RoomEventKind::Subject { subject, .. } => Seen::Subject(subject.clone()),
            RoomEventKind::Destroyed { reason, .. } => Seen::Destroyed(reason.clone()),
            _ => Seen::Other,
        })
        .collect()
}

fn available(nick: &str) -> Seen {
    Seen::Presence(nick.into(), PresenceKind::Available, None)
}

fn unavailable(nick: &str) -> Seen {
    Seen::Presence(nick.into(), PresenceKind::Unavailable, None)
}

#[tokio::test]
async fn occupants_lists_xmpp_and_sip_clients_with_their_protocol() {
    let e = engine().await;
    let alice = client_on(1, "alice@localhost", ClientProtocol::Xmpp);
    let bob = client_on(2, "bob@localhost", ClientProtocol::Sip);
    join(&e, "mix", &bob, "zed", true).await.expect("join");
    join(&e, "mix", &alice, "amy", false).await.expect("join");
    let want = vec![
        entry(
            "amy",
            "alice@localhost",
            Role::Participant,
            Affiliation::None,
            ClientProtocol::Xmpp,
        ),
        entry(
            "zed",
            "bob@localhost",
            Role::Moderator,
            Affiliation::Owner,
            ClientProtocol::Sip,
        ),
    ];
    // An occupant and a user who is not in the room both get the list, sorted by nick.
    assert_eq!(
        occupants(&e, "mix", "alice@localhost").await,
        Ok(want.clone())
    );
    assert_eq!(occupants(&e, "mix", "carol@localhost").await, Ok(want));
    // Occupants see the protocol in presence too.
    let bob_presence = alice
        .sink
        .take()
        .into_iter()
        .find_map(|(ev, _)| match &ev.kind {
            RoomEventKind::Presence(p) if p.nick == "zed" => Some(p.protocol),
            _ => None,
        });
    assert_eq!(bob_presence, Some(ClientProtocol::Sip));
    // The role lists stay for moderators only.
    assert_eq!(
        e.ask("mix", |reply| RoomCommand::GetRoles {
            actor_user: alice.r.user.clone(),
            role: Role::Participant,
            reply,
        })
        .await,
        Err(RoomError::Forbidden)
    );
    assert_eq!(
        occupants(&e, "nowhere", "alice@localhost").await,
        Err(RoomError::ItemNotFound)
    );
}

#[tokio::test]
async fn occupants_and_watch_are_refused_to_outcasts_and_non_members() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    join(&e, "club", &alice, "alice", true).await.expect("join");
    set_affiliation(
        &e,
        "club",
        &alice,
        "mallory@localhost",
        Affiliation::Outcast,
    )
    .await;
    assert_eq!(
        occupants(&e, "club", "mallory@localhost").await,
        Err(RoomError::Forbidden)
    );
    let sink = Arc::new(Collect::default());
    assert_eq!(
        watch(&e, "club", 50, "mallory@localhost", sink.clone()).await,
        Err(RoomError::Forbidden)
    );
    set_config(
        &e,
        "club",
        &alice,
        RoomConfig {
            members_only: true,
            ..Default::default()
        },
    )
    .await;
    set_affiliation(&e, "club", &alice, "dave@localhost", Affiliation::Member).await;
    assert_eq!(
        occupants(&e, "club", "carol@localhost").await,
        Err(RoomError::RegistrationRequired)
    );
    assert_eq!(
        watch(&e, "club", 51, "carol@localhost", sink.clone()).await,
        Err(RoomError::RegistrationRequired)
    );
    // A member who is not in the room, and the occupant, may look.
    assert_eq!(
        occupants(&e, "club", "dave@localhost")
            .await
            .map(|v| v.len()),
        Ok(1)
    );
    assert_eq!(
        occupants(&e, "club", "alice@localhost")
            .await
            .map(|v| v.len()),
        Ok(1)
    );
    // The refused watchers were never registered.
    join(&e, "club", &client(4, "dave@localhost"), "dave", false)
        .await
        .expect("member joins");
    assert!(sink.take().is_empty());
}

#[tokio::test]
async fn a_watcher_follows_presence_and_subject_but_not_messages() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    let bob = client_on(2, "bob@localhost", ClientProtocol::Sip);
    join(&e, "lobby", &alice, "alice", true)
        .await
        .expect("join");
    set_subject(&e, "lobby", &alice, "welcome").await;
    post(&e, "lobby", &alice, "before").await.expect("post");
    let w = Arc::new(Collect::default());
    let snap = watch(&e, "lobby", 100, "wendy@localhost", w.clone())
        .await
        .expect("watch");
    assert_eq!(
        snap,
        RoomSnapshot {
            name: "lobby".into(),
            title: String::new(),
            subject: "welcome".into(),
            non_anonymous: false,
            occupants: vec![entry(
                "alice",
                "alice@localhost",
                Role::Moderator,
                Affiliation::Owner,
                ClientProtocol::Xmpp,
            )],
        }
    );
    // No history, no presence replay: the snapshot is the starting state.
    assert!(w.take().is_empty());

    join(&e, "lobby", &bob, "bob", false).await.expect("join");
    e.ask("lobby", |reply| RoomCommand::ChangeNick {
        client: bob.r.id,
        nick: "robert".into(),
        reply,
    })
    .await
    .expect("nick");
    post(&e, "lobby", &alice, "hello").await.expect("post");
    e.ask("lobby", |reply| RoomCommand::Private {
        client: bob.r.id,
        to_nick: "alice".into(),
        body: "psst".into(),
        extra: None,
        origin_id: String::new(),
        reply,
    })
    .await
    .expect("private");
    set_subject(&e, "lobby", &alice, "news").await;
    e.send(
        "lobby",
        RoomCommand::Leave {
            client: bob.r.id,
            status: None,
        },
    )
    .await;
    // Watchers are not occupants (this also waits for the leave).
    assert_eq!(e.room_info("lobby").await.map(|i| i.occupants), Some(1));

    let events = w.take();
    assert_eq!(
        seen(&events),
        vec![
            available("bob"),
            Seen::Presence(
                "bob".into(),
                PresenceKind::Unavailable,
                Some("robert".into())
            ),
            available("robert"),
            Seen::Subject("news".into()),
            unavailable("robert"),
        ]
    );
    assert!(events.iter().all(|(_, f)| *f == DeliveryFlags::default()));
    let joined = events.first().and_then(|(ev, _)| match &ev.kind {
        RoomEventKind::Presence(p) => Some(p.protocol),
        _ => None,
    });
    assert_eq!(joined, Some(ClientProtocol::Sip));
    // The occupants never heard of the watcher.
    assert!(presences(&alice.sink.take())
        .iter()
        .all(|(nick, ..)| nick == "alice" || nick == "bob" || nick == "robert"));
}

#[tokio::test]
async fn unwatch_stops_delivery_and_watch_again_replaces_the_sink() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    join(&e, "lobby", &alice, "alice", true)
        .await
        .expect("join");
    let first = Arc::new(Collect::default());
    let second = Arc::new(Collect::default());
    watch(&e, "lobby", 7, "wendy@localhost", first.clone())
        .await
        .expect("watch");
    watch(&e, "lobby", 7, "wendy@localhost", second.clone())
        .await
        .expect("watch again");
    join(&e, "lobby", &client(2, "bob@localhost"), "bob", false)
        .await
        .expect("join");
    assert!(first.take().is_empty());
    assert_eq!(seen(&second.take()), vec![available("bob")]);

    e.send("lobby", RoomCommand::Unwatch { watcher: 7 }).await;
    join(&e, "lobby", &client(3, "carol@localhost"), "carol", false)
        .await
        .expect("join");
    set_subject(&e, "lobby", &alice, "quiet").await;
    assert!(second.take().is_empty());
    // Unwatching a room that isn't loaded (or doesn't exist) is harmless.
    e.send("elsewhere", RoomCommand::Unwatch { watcher: 7 })
        .await;
    assert!(e.room_info("elsewhere").await.is_none());
}

#[tokio::test]
async fn destroying_the_room_tells_the_watcher() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    join(&e, "doomed", &alice, "alice", true)
        .await
        .expect("join");
    let w = Arc::new(Collect::default());
    watch(&e, "doomed", 9, "wendy@localhost", w.clone())
        .await
        .expect("watch");
    e.ask("doomed", |reply| RoomCommand::Destroy {
        actor_user: alice.r.user.clone(),
        reason: "bye".into(),
        alternate: None,
        reply,
    })
    .await
    .expect("destroy");
    assert_eq!(seen(&w.take()), vec![Seen::Destroyed("bye".into())]);
    assert!(e.room_info("doomed").await.is_none());
}

#[tokio::test]
async fn an_emptied_temporary_room_stays_while_watched() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    join(&e, "tmp", &alice, "alice", true).await.expect("join");
    set_config(
        &e,
        "tmp",
        &alice,
        RoomConfig {
            persistent: false,
            ..Default::default()
        },
    )
    .await;
    let w = Arc::new(Collect::default());
    watch(&e, "tmp", 5, "wendy@localhost", w.clone())
        .await
        .expect("watch");
    let leave = RoomCommand::Leave {
        client: alice.r.id,
        status: None,
    };
    e.send("tmp", leave).await;
    assert_eq!(e.room_info("tmp").await.map(|i| i.occupants), Some(0));
    assert_eq!(seen(&w.take()), vec![unavailable("alice")]);
    e.send("tmp", RoomCommand::Unwatch { watcher: 5 }).await;
    assert!(e.room_info("tmp").await.is_none());
    assert!(e.store().get_room("tmp").await.expect("store").is_none());
}

/// A sink that is always full or gone.
struct Closed;

impl EventSink for Closed {
    fn deliver(&self, _event: &Arc<RoomEvent>, _flags: DeliveryFlags) -> Result<(), SinkClosed> {
        Err(SinkClosed)
    }
}

#[tokio::test]
async fn a_watcher_whose_sink_fails_is_dropped_silently() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    join(&e, "tmp", &alice, "alice", true).await.expect("join");
    set_config(
        &e,
        "tmp",
        &alice,
        RoomConfig {
            persistent: false,
            ..Default::default()
        },
    )
    .await;
    watch(&e, "tmp", 5, "wendy@localhost", Arc::new(Closed))
        .await
        .expect("watch");
    alice.sink.take();
    join(&e, "tmp", &client(2, "bob@localhost"), "bob", false)
        .await
        .expect("join");
    // Alice only hears of bob: the dropped watcher was never an occupant.
    assert_eq!(
        presences(&alice.sink.take()),
        vec![("bob".into(), PresenceKind::Available, vec![], false)]
    );
    assert_eq!(e.room_info("tmp").await.map(|i| i.occupants), Some(2));
    // With the watcher gone, the emptied temporary room goes as before.
    for id in [2, 1] {
        e.send(
            "tmp",
            RoomCommand::Leave {
                client: id,
                status: None,
            },
        )
        .await;
    }
    assert!(e.room_info("tmp").await.is_none());
}

#[tokio::test]
async fn shutdown_drops_watchers_without_events() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    join(&e, "lobby", &alice, "alice", true)
        .await
        .expect("join");
    let w = Arc::new(Collect::default());
    watch(&e, "lobby", 3, "wendy@localhost", w.clone())
        .await
        .expect("watch");
    e.shutdown().await;
    assert!(w.take().is_empty());
    // The occupant still gets its 332.
    assert!(presences(&alice.sink.take())
        .iter()
        .any(|(nick, kind, codes, is_self)| nick == "alice"
            && *kind == PresenceKind::Unavailable
            && codes.contains(&332)
            && *is_self));
}
