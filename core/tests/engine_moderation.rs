//! Room engine moderation: members-only, password, kick and ban, moderated rooms and voice,
//! destruction, and removal of occupants whose sinks overflow.

mod engine_common;

use engine_common::*;
use palaver_core::engine::*;
use palaver_core::*;
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn members_only_password_ban_and_kick() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    let bob = client(2, "bob@localhost");
    let carol = client(3, "carol@localhost");
    join(&e, "club", &alice, "alice", true).await.expect("join");
    let mut cfg = RoomConfig {
        members_only: true,
        ..Default::default()
    };
    e.ask("club", |reply| RoomCommand::SetConfig {
        actor_user: alice.r.user.clone(),
        config: cfg.clone(),
        reply,
    })
    .await
    .expect("config");
    assert_eq!(
        join(&e, "club", &bob, "bob", false).await,
        Err(RoomError::RegistrationRequired)
    );
    e.ask("club", |reply| RoomCommand::SetAffiliation {
        client: 1,
        actor_user: alice.r.user.clone(),
        user: bob.r.user.clone(),
        affiliation: Affiliation::Member,
        reason: None,
        reply,
    })
    .await
    .expect("member");
    join(&e, "club", &bob, "bob", false)
        .await
        .expect("member joins");
    cfg.members_only = false;
    cfg.password = Some("pw".into());
    e.ask("club", |reply| RoomCommand::SetConfig {
        actor_user: alice.r.user.clone(),
        config: cfg,
        reply,
    })
    .await
    .expect("config");
    assert_eq!(
        join(&e, "club", &carol, "carol", false).await,
        Err(RoomError::NotAuthorized)
    );
    // Bob (member, participant) may not kick; alice (owner) kicks bob with 307.
    assert!(matches!(
        e.ask("club", |reply| RoomCommand::SetRole {
            client: 2,
            nick: "alice".into(),
            role: Role::None,
            reason: None,
            reply,
        })
        .await,
        Err(RoomError::NotAllowed(_))
    ));
    bob.sink.take();
    e.ask("club", |reply| RoomCommand::SetRole {
        client: 1,
        nick: "bob".into(),
        role: Role::None,
        reason: Some("bye".into()),
        reply,
    })
    .await
    .expect("kick");
    let p = presences(&bob.sink.take());
    assert_eq!(
        p,
        vec![("bob".into(), PresenceKind::Unavailable, vec![307], true)]
    );
    // Ban keeps him out.
    e.ask("club", |reply| RoomCommand::SetAffiliation {
        client: 1,
        actor_user: alice.r.user.clone(),
        user: bob.r.user.clone(),
        affiliation: Affiliation::Outcast,
        reason: None,
        reply,
    })
    .await
    .expect("ban");
    assert_eq!(
        join(&e, "club", &bob, "bob", false).await,
        Err(RoomError::Forbidden)
    );
}

#[tokio::test]
async fn moderated_room_visitors_cannot_post_until_voiced() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    let bob = client(2, "bob@localhost");
    join(&e, "stage", &alice, "alice", true)
        .await
        .expect("join");
    e.ask("stage", |reply| RoomCommand::SetConfig {
        actor_user: alice.r.user.clone(),
        config: RoomConfig {
            moderated: true,
            ..Default::default()
        },
        reply,
    })
    .await
    .expect("config");
    join(&e, "stage", &bob, "bob", false).await.expect("join");
    assert_eq!(
        post(&e, "stage", &bob, "hi").await.map(|_| ()),
        Err(RoomError::Forbidden)
    );
    e.ask("stage", |reply| RoomCommand::SetRole {
        client: 1,
        nick: "bob".into(),
        role: Role::Participant,
        reason: None,
        reply,
    })
    .await
    .expect("voice");
    post(&e, "stage", &bob, "hi").await.expect("voiced post");
}

#[tokio::test]
async fn destroy_removes_room_and_tells_occupants() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    let bob = client(2, "bob@localhost");
    join(&e, "tmp", &alice, "alice", true).await.expect("join");
    join(&e, "tmp", &bob, "bob", false).await.expect("join");
    bob.sink.take();
    assert_eq!(
        e.ask("tmp", |reply| RoomCommand::Destroy {
            actor_user: bob.r.user.clone(),
            reason: String::new(),
            alternate: None,
            reply,
        })
        .await,
        Err(RoomError::Forbidden)
    );
    e.ask("tmp", |reply| RoomCommand::Destroy {
        actor_user: alice.r.user.clone(),
        reason: "done".into(),
        alternate: None,
        reply,
    })
    .await
    .expect("destroy");
    assert!(bob.sink.take().iter().any(
        |(e, _)| matches!(&e.kind, RoomEventKind::Destroyed { reason, .. } if reason == "done")
    ));
    assert!(e.store().get_room("tmp").await.expect("store").is_none());
    assert!(e.room_info("tmp").await.is_none());
}

/// A sink that refuses everything after `room` events, like a full session queue.
struct Full {
    accepted: Mutex<usize>,
    limit: usize,
}

impl EventSink for Full {
    fn deliver(&self, _event: &Arc<RoomEvent>, _flags: DeliveryFlags) -> Result<(), SinkClosed> {
        let mut n = self.accepted.lock().map_err(|_| SinkClosed)?;
        if *n >= self.limit {
            return Err(SinkClosed);
        }
        *n += 1;
        Ok(())
    }
}

#[tokio::test]
async fn an_occupant_whose_sink_overflows_is_removed_and_others_are_told() {
    let e = engine().await;
    let alice = client(1, "alice@localhost");
    join(&e, "lobby", &alice, "alice", true)
        .await
        .expect("join");
    let slow = ClientRef {
        id: 9,
        user: UserId::parse("slow@localhost").expect("user"),
        resource: Arc::from("x"),
        protocol: ClientProtocol::Xmpp,
        sink: Arc::new(Full {
            accepted: Mutex::new(0),
            limit: 5,
        }),
    };
    let req = JoinRequest {
        client: slow,
        nick: "slow".into(),
        password: None,
        history: HistoryRequest::default(),
        payload: None,
        create: false,
        instant: false,
    };
    e.ask("lobby", |reply| RoomCommand::Join { req, reply })
        .await
        .expect("join");
    alice.sink.take();
    for i in 0..10 {
        post(&e, "lobby", &alice, &format!("m{i}"))
            .await
            .expect("post");
    }
    // The next command runs after the room has reaped the dead sink.
    let info = e.room_info("lobby").await.expect("room");
    assert_eq!(info.occupants, 1);
    let p = presences(&alice.sink.take());
    assert!(
        p.contains(&("slow".into(), PresenceKind::Unavailable, vec![], false)),
        "{p:?}"
    );
    let stored = e
        .store()
        .count_messages(1, &HistoryQuery::default())
        .await
        .expect("count");
    assert_eq!(stored, 10);
}
