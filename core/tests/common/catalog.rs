//! Suite tests of the catalogue: users, categories, rooms (with their configuration) and
//! affiliations, including what deleting a room or a category does to what hangs off it.

use super::*;

pub async fn users_crud(cx: &Ctx) {
    let s = &*cx.store;
    assert!(s.list_users().await.expect("list").is_empty());
    for (name, tag) in [
        ("bob@example.com", 2),
        ("alice@example.com", 1),
        ("carol@other.org", 3),
    ] {
        s.create_user(&user(name, tag)).await.expect("create");
    }
    let alice = user("alice@example.com", 1);
    assert_eq!(
        s.get_user(&alice.user).await.expect("get"),
        Some(alice.clone())
    );
    assert!(matches!(
        s.create_user(&user("alice@example.com", 9)).await,
        Err(StoreError::AlreadyExists)
    ));
    let names: Vec<String> = s
        .list_users()
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.0)
        .collect();
    assert_eq!(
        names,
        ["alice@example.com", "bob@example.com", "carol@other.org"]
    );

    // update replaces credentials, keeps created_at
    let mut changed = user("alice@example.com", 50);
    changed.created_at = 1;
    s.update_user(&changed).await.expect("update");
    let got = s
        .get_user(&alice.user)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.scram_sha1, changed.scram_sha1);
    assert_eq!(got.scram_sha256, changed.scram_sha256);
    assert_eq!(got.sip_digest, changed.sip_digest);
    assert_eq!(got.created_at, alice.created_at);
    assert!(matches!(
        s.update_user(&user("nobody@example.com", 1)).await,
        Err(StoreError::NotFound)
    ));

    assert!(s.delete_user(&alice.user).await.expect("delete"));
    assert!(!s.delete_user(&alice.user).await.expect("delete again"));
    assert_eq!(s.get_user(&alice.user).await.expect("get"), None);
    assert_eq!(s.list_users().await.expect("list").len(), 2);
}

pub async fn users_bulk_create(cx: &Ctx) {
    let s = &*cx.store;
    let kept = user("bob@example.com", 2);
    s.create_user(&kept).await.expect("create");
    let batch = [
        user("alice@example.com", 1),
        user("bob@example.com", 7),
        user("carol@other.org", 3),
    ];
    let added = s.create_users(&batch).await.expect("bulk create");
    assert_eq!(added, [true, false, true]);
    // the existing account keeps its own credentials
    let bob = s.get_user(&kept.user).await.expect("get").expect("bob");
    assert_eq!(bob, kept);
    assert_eq!(
        s.get_user(&batch[2].user).await.expect("get"),
        Some(batch[2].clone())
    );
    assert_eq!(s.list_users().await.expect("list").len(), 3);
    assert_eq!(
        s.create_users(&[]).await.expect("empty"),
        Vec::<bool>::new()
    );
}

pub async fn categories_crud(cx: &Ctx) {
    let s = &*cx.store;
    let eng = category("Engineering");
    s.create_category(&eng).await.expect("create");
    assert!(matches!(
        s.create_category(&category("engineering")).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        s.get_category_by_name("ENGINEERING")
            .await
            .expect("by name"),
        Some(eng.clone())
    );
    assert_eq!(
        s.get_category(eng.id).await.expect("by id"),
        Some(eng.clone())
    );
    assert_eq!(
        s.get_category(uuid::Uuid::new_v4()).await.expect("by id"),
        None
    );
    assert_eq!(s.get_category_by_name("nope").await.expect("by name"), None);

    let mut sales = category("Sales");
    sales.creators = vec![];
    sales.members = vec![
        Principal::Domain("sales.example.com".into()),
        Principal::User(uid("x@y.z")),
    ];
    s.create_category(&sales).await.expect("create");
    let mut admin = category("admin");
    admin.description = String::new();
    s.create_category(&admin).await.expect("create");
    let list = s.list_categories().await.expect("list");
    assert_eq!(
        list,
        vec![eng.clone(), sales.clone(), admin.clone()],
        "byte order: uppercase first"
    );

    // update: rename (case-insensitively free) and replace rules
    let mut renamed = eng.clone();
    renamed.name = "R&D".into();
    renamed.description = "research".into();
    renamed.creators = vec![Principal::Anyone];
    s.update_category(&renamed).await.expect("update");
    assert_eq!(
        s.get_category_by_name("engineering")
            .await
            .expect("old name"),
        None
    );
    assert_eq!(
        s.get_category_by_name("r&d").await.expect("new name"),
        Some(renamed.clone())
    );
    let mut clash = renamed.clone();
    clash.name = "SALES".into();
    assert!(matches!(
        s.update_category(&clash).await,
        Err(StoreError::AlreadyExists)
    ));
    let mut same_key = renamed.clone();
    same_key.name = "r&D".into();
    s.update_category(&same_key)
        .await
        .expect("case change of own name");
    assert!(matches!(
        s.update_category(&category("ghost")).await,
        Err(StoreError::NotFound)
    ));

    assert!(s.delete_category(sales.id).await.expect("delete"));
    assert!(!s.delete_category(sales.id).await.expect("delete again"));
    assert_eq!(s.list_categories().await.expect("list").len(), 2);
}

pub async fn rooms_crud(cx: &Ctx) {
    let s = &*cx.store;
    let lobby = s.create_room(&room("lobby")).await.expect("create");
    assert!(matches!(
        s.create_room(&room("lobby")).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        s.create_room(&room("LOBBY")).await,
        Err(StoreError::AlreadyExists)
    ));
    let attic = s.create_room(&room("Attic")).await.expect("create");
    assert_ne!(lobby, attic);

    let got = s.get_room("LoBbY").await.expect("get").expect("present");
    let mut want = room("lobby");
    want.id = lobby;
    assert_eq!(got, want);
    assert_eq!(
        s.get_room_by_id(lobby).await.expect("by id"),
        Some(want.clone())
    );
    assert_eq!(
        s.get_room("attic").await.expect("get").map(|r| r.name),
        Some("attic".into()),
        "stored lowercase"
    );
    assert_eq!(s.get_room("nowhere").await.expect("get"), None);
    assert_eq!(
        s.get_room_by_id(lobby + attic + 1000).await.expect("by id"),
        None
    );
    let names: Vec<String> = s
        .list_rooms()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["attic", "lobby"]);

    // update: rename, subject, lock
    let mut upd = want.clone();
    upd.name = "hall".into();
    upd.subject = "Welcome".into();
    upd.subject_nick = "alice".into();
    upd.locked = true;
    upd.created_at = 5; // not part of an update
    s.update_room(&upd).await.expect("update");
    let got = s.get_room("hall").await.expect("get").expect("present");
    assert_eq!(
        (
            got.id,
            got.subject.as_str(),
            got.subject_nick.as_str(),
            got.locked
        ),
        (lobby, "Welcome", "alice", true)
    );
    assert_eq!(got.created_at, want.created_at);
    assert_eq!(s.get_room("lobby").await.expect("get"), None);
    upd.name = "attic".into();
    assert!(matches!(
        s.update_room(&upd).await,
        Err(StoreError::AlreadyExists)
    ));
    let mut ghost = room("ghost");
    ghost.id = lobby + attic + 1000;
    assert!(matches!(
        s.update_room(&ghost).await,
        Err(StoreError::NotFound)
    ));

    // a category that does not exist
    let mut orphan = room("orphan");
    orphan.category = Some(uuid::Uuid::new_v4());
    assert!(matches!(
        s.create_room(&orphan).await,
        Err(StoreError::NotFound)
    ));

    assert!(s.delete_room(attic).await.expect("delete"));
    assert!(!s.delete_room(attic).await.expect("delete again"));
    let again = s.create_room(&room("attic")).await.expect("re-create");
    assert!(again != attic && again != lobby, "ids are never reused");
}

pub async fn room_config_round_trip(cx: &Ctx) {
    let s = &*cx.store;
    let cat = category("Cat");
    s.create_category(&cat).await.expect("category");
    let mut r = room("configured");
    r.category = Some(cat.id);
    r.subject = "topic 'quoted' \"double\" ☃".into();
    r.subject_nick = "nick".into();
    r.locked = true;
    r.config = RoomConfig {
        title: "Title".into(),
        description: "Desc\nwith newline".into(),
        persistent: false,
        public: false,
        members_only: true,
        moderated: true,
        password: Some("s3cret".into()),
        max_users: u32::MAX,
        whois: Whois::Anyone,
        allow_private_messages: false,
        allow_invites: false,
        occupants_may_change_subject: true,
        logged: false,
        history_length: 7,
    };
    r.id = s.create_room(&r).await.expect("create");
    assert_eq!(s.get_room_by_id(r.id).await.expect("get"), Some(r.clone()));

    // flip every field back
    let mut back = r.clone();
    back.config = RoomConfig {
        title: "T2".into(),
        max_users: 0,
        history_length: 0,
        ..RoomConfig::default()
    };
    back.category = None;
    back.locked = false;
    s.update_room(&back).await.expect("update");
    assert_eq!(
        s.get_room_by_id(r.id).await.expect("get"),
        Some(back.clone())
    );
    assert_eq!(s.list_rooms().await.expect("list"), vec![back]);
}

pub async fn delete_room_cascades(cx: &Ctx) {
    let s = &*cx.store;
    let a = new_room(s, "doomed").await;
    let b = new_room(s, "survivor").await;
    let alice = uid("alice@example.com");
    s.set_affiliation(a, &alice, Affiliation::Owner, "")
        .await
        .expect("aff");
    s.set_affiliation(b, &alice, Affiliation::Member, "")
        .await
        .expect("aff");
    let batch: Vec<_> = (1..=5)
        .map(|i| msg(a, i, "alice@example.com"))
        .chain([msg(b, 1, "alice@example.com")])
        .collect();
    s.append_messages(&batch).await.expect("append");

    assert!(s.delete_room(a).await.expect("delete"));
    assert!(s.affiliations(a).await.expect("affs").is_empty());
    assert_eq!(s.last_seq(a).await.expect("last"), 0);
    assert_eq!(
        s.count_messages(a, &HistoryQuery::default())
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        s.message_by_stanza_id(a, &batch[0].stanza_id)
            .await
            .expect("by id"),
        None
    );
    // the other room is untouched
    assert_eq!(s.affiliations(b).await.expect("affs").len(), 1);
    assert_eq!(s.last_seq(b).await.expect("last"), 1);
}

pub async fn delete_category_keeps_rooms(cx: &Ctx) {
    let s = &*cx.store;
    let cat = category("Temporary");
    s.create_category(&cat).await.expect("category");
    let mut r = room("inside");
    r.category = Some(cat.id);
    r.id = s.create_room(&r).await.expect("room");
    assert_eq!(
        s.get_room("inside")
            .await
            .expect("get")
            .and_then(|r| r.category),
        Some(cat.id)
    );
    assert!(s.delete_category(cat.id).await.expect("delete"));
    let got = s.get_room("inside").await.expect("get").expect("room kept");
    assert_eq!(got.category, None);
    assert_eq!(got.config, r.config);
}

pub async fn affiliations(cx: &Ctx) {
    let s = &*cx.store;
    let r = new_room(s, "club").await;
    let (alice, bob, carol, dave) = (
        uid("alice@a.org"),
        uid("bob@b.org"),
        uid("carol@c.org"),
        uid("dave@d.org"),
    );
    s.set_affiliation(r, &carol, Affiliation::Admin, "helps")
        .await
        .expect("set");
    s.set_affiliation(r, &alice, Affiliation::Owner, "")
        .await
        .expect("set");
    s.set_affiliation(r, &bob, Affiliation::Member, "")
        .await
        .expect("set");
    s.set_affiliation(r, &dave, Affiliation::Outcast, "spam")
        .await
        .expect("set");
    let rec = |u: &UserId, a, why: &str| AffiliationRecord {
        user: u.clone(),
        affiliation: a,
        reason: why.into(),
    };
    assert_eq!(
        s.affiliations(r).await.expect("list"),
        vec![
            rec(&alice, Affiliation::Owner, ""),
            rec(&bob, Affiliation::Member, ""),
            rec(&carol, Affiliation::Admin, "helps"),
            rec(&dave, Affiliation::Outcast, "spam"),
        ]
    );
    // replace
    s.set_affiliation(r, &bob, Affiliation::Admin, "promoted")
        .await
        .expect("replace");
    // remove with None (and removing an absent one is fine)
    s.set_affiliation(r, &alice, Affiliation::None, "")
        .await
        .expect("remove");
    s.set_affiliation(r, &alice, Affiliation::None, "")
        .await
        .expect("remove again");
    s.set_affiliation(r, &dave, Affiliation::None, "forgiven")
        .await
        .expect("remove");
    assert_eq!(
        s.affiliations(r).await.expect("list"),
        vec![
            rec(&bob, Affiliation::Admin, "promoted"),
            rec(&carol, Affiliation::Admin, "helps")
        ]
    );
    // another room is separate; an unknown room is NotFound
    let other = new_room(s, "other").await;
    assert!(s.affiliations(other).await.expect("list").is_empty());
    assert!(matches!(
        s.set_affiliation(other + 1000, &bob, Affiliation::Member, "")
            .await,
        Err(StoreError::NotFound)
    ));
}
