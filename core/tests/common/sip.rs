//! Suite tests of the SIP share of the store: users' digest credentials (with and without, and
//! how a password change sets them) and the registrar's location service (registrations).

use super::*;
use palaver_core::credentials::{new_user_record, sip_digest, sip_ha1, DigestAlgo};

/// A binding of `user` for `contact`, expiring at `expires_at`; other fields derived from them.
pub fn registration(user: &str, contact: &str, expires_at: Millis) -> Registration {
    Registration {
        user: uid(user),
        contact: contact.to_string(),
        instance: format!("<urn:uuid:{}>", uuid::Uuid::new_v4()),
        transport: "tcp".into(),
        source: "192.0.2.10:50600".into(),
        node: String::new(),
        call_id: format!("call-{contact}"),
        cseq: 1,
        expires_at,
        user_agent: "Linphone/5.2 (ü)".into(),
    }
}

fn contacts(list: &[Registration]) -> Vec<(&str, &str)> {
    list.iter()
        .map(|r| (r.user.as_str(), r.contact.as_str()))
        .collect()
}

pub async fn users_sip_digest(cx: &Ctx) {
    let s = &*cx.store;
    let with = user("alice@example.com", 1);
    let without = legacy_user("bob@example.com", 2);
    assert!(with.sip_digest.is_some());
    s.create_user(&with).await.expect("create");
    s.create_user(&without).await.expect("create");
    assert_eq!(
        s.get_user(&with.user).await.expect("get"),
        Some(with.clone())
    );
    assert_eq!(
        s.get_user(&without.user).await.expect("get"),
        Some(without.clone())
    );

    // update sets, replaces and clears the digest, keeping created_at
    for update in [
        user("bob@example.com", 30),
        user("bob@example.com", 31),
        legacy_user("bob@example.com", 32),
    ] {
        s.update_user(&update).await.expect("update");
        let got = s
            .get_user(&update.user)
            .await
            .expect("get")
            .expect("present");
        assert_eq!(got.sip_digest, update.sip_digest);
        assert_eq!(got.scram_sha256, update.scram_sha256);
        assert_eq!(got.created_at, without.created_at);
    }
    // the other user is untouched
    assert_eq!(s.get_user(&with.user).await.expect("get"), Some(with));
}

/// What `palaver user add` then `palaver user passwd` do: the digest is the HA1 of the new
/// password for the user's domain, with the local part as digest username.
pub async fn passwd_sets_sip_digest(cx: &Ctx) {
    let s = &*cx.store;
    let alice = uid("alice@example.com");
    let added = new_user_record(alice.clone(), "first", 1_700_000_000_000);
    s.create_user(&added).await.expect("create");
    let got = s.get_user(&alice).await.expect("get").expect("present");
    assert_eq!(got, added);

    let changed = new_user_record(alice.clone(), "second", got.created_at);
    s.update_user(&changed).await.expect("passwd");
    let got = s.get_user(&alice).await.expect("get").expect("present");
    let digest = got.sip_digest.expect("digest");
    assert_eq!(digest, sip_digest(&alice, "second"));
    assert_eq!(digest.realm, "example.com");
    assert_eq!(
        digest.ha1_md5,
        sip_ha1(DigestAlgo::Md5, "alice", "example.com", "second")
    );
    assert_eq!(
        digest.ha1_sha256,
        sip_ha1(DigestAlgo::Sha256, "alice", "example.com", "second")
    );
    assert_ne!(Some(digest), added.sip_digest);

    // a legacy account gets its digest from the password change
    let bob = uid("bob@example.com");
    s.create_user(&legacy_user(bob.as_str(), 3))
        .await
        .expect("create");
    s.update_user(&new_user_record(bob.clone(), "pw", 0))
        .await
        .expect("passwd");
    let got = s.get_user(&bob).await.expect("get").expect("present");
    assert_eq!(got.sip_digest, Some(sip_digest(&bob, "pw")));
}

pub async fn registrations_upsert_and_list(cx: &Ctx) {
    let s = &*cx.store;
    for (name, tag) in [("alice@example.com", 1), ("bob@example.com", 2)] {
        s.create_user(&user(name, tag)).await.expect("user");
    }
    let alice = uid("alice@example.com");
    assert!(s.registrations(&alice, 0).await.expect("list").is_empty());

    let desk = registration("alice@example.com", "sip:alice@192.0.2.1:5060", 2_000);
    let phone = registration(
        "alice@example.com",
        "sip:alice@198.51.100.7:41000;transport=tls;ob",
        3_000,
    );
    let bob = registration("bob@example.com", "sip:alice@192.0.2.1:5060", 9_000);
    for r in [&phone, &desk, &bob] {
        s.upsert_registration(r).await.expect("upsert");
    }
    assert_eq!(
        s.registrations(&alice, 1_000).await.expect("list"),
        vec![desk.clone(), phone.clone()]
    );

    // the same (user, contact) replaces every other field
    let refreshed = Registration {
        instance: String::new(),
        transport: "udp".into(),
        source: "[2001:db8::1]:5062".into(),
        node: "node-b".into(),
        call_id: "another-call".into(),
        cseq: i64::from(u32::MAX) + 1,
        expires_at: 5_000,
        user_agent: String::new(),
        ..desk.clone()
    };
    s.upsert_registration(&refreshed).await.expect("refresh");
    assert_eq!(
        s.registrations(&alice, 1_000).await.expect("list"),
        vec![refreshed.clone(), phone.clone()]
    );

    // expired bindings are left out: a binding is expired once now >= expires_at
    assert_eq!(
        s.registrations(&alice, 2_999).await.expect("list"),
        vec![refreshed.clone(), phone.clone()]
    );
    assert_eq!(
        s.registrations(&alice, 3_000).await.expect("list"),
        vec![refreshed.clone()]
    );
    assert!(s
        .registrations(&alice, 5_000)
        .await
        .expect("list")
        .is_empty());
    // ... but not deleted by listing
    assert_eq!(
        s.registrations(&alice, 0).await.expect("list"),
        vec![refreshed, phone]
    );
    assert_eq!(
        s.registrations(&bob.user, 0).await.expect("list"),
        vec![bob]
    );

    // bindings belong to existing users
    assert!(matches!(
        s.upsert_registration(&registration("nobody@example.com", "sip:x@h", 9))
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn registrations_expire(cx: &Ctx) {
    let s = &*cx.store;
    for (name, tag) in [("alice@example.com", 1), ("bob@example.com", 2)] {
        s.create_user(&user(name, tag)).await.expect("user");
    }
    assert!(s
        .expire_registrations(i64::MAX)
        .await
        .expect("expire")
        .is_empty());
    let rows = [
        registration("bob@example.com", "sip:b1@h", 1_000),
        registration("alice@example.com", "sip:a2@h", 1_500),
        registration("alice@example.com", "sip:a1@h", 1_000),
        registration("alice@example.com", "sip:a3@h", 2_001),
        registration("bob@example.com", "sip:b2@h", 4_000),
    ];
    for r in &rows {
        s.upsert_registration(r).await.expect("upsert");
    }

    assert!(s
        .expire_registrations(999)
        .await
        .expect("expire")
        .is_empty());
    let expired = s.expire_registrations(1_500).await.expect("expire");
    assert_eq!(
        contacts(&expired),
        [
            ("alice@example.com", "sip:a1@h"),
            ("alice@example.com", "sip:a2@h"),
            ("bob@example.com", "sip:b1@h"),
        ]
    );
    // returned whole, as stored
    assert_eq!(expired[0], rows[2]);
    assert_eq!(expired[1], rows[1]);
    assert_eq!(expired[2], rows[0]);
    // and deleted: a second call finds nothing, listing from the past shows the rest only
    assert!(s
        .expire_registrations(1_500)
        .await
        .expect("again")
        .is_empty());
    let alice = uid("alice@example.com");
    assert_eq!(
        s.registrations(&alice, 0).await.expect("list"),
        vec![rows[3].clone()]
    );
    assert_eq!(
        s.registrations(&uid("bob@example.com"), 0)
            .await
            .expect("list"),
        vec![rows[4].clone()]
    );

    // a refreshed binding is not expired at its old time
    let refreshed = Registration {
        expires_at: 10_000,
        cseq: 2,
        ..rows[3].clone()
    };
    s.upsert_registration(&refreshed).await.expect("refresh");
    let expired = s.expire_registrations(4_000).await.expect("expire");
    assert_eq!(expired, vec![rows[4].clone()]);
    assert_eq!(
        s.expire_registrations(i64::MAX).await.expect("expire"),
        vec![refreshed]
    );
}

pub async fn registrations_remove(cx: &Ctx) {
    let s = &*cx.store;
    for (name, tag) in [("alice@example.com", 1), ("bob@example.com", 2)] {
        s.create_user(&user(name, tag)).await.expect("user");
    }
    let (alice, bob) = (uid("alice@example.com"), uid("bob@example.com"));
    let a1 = registration("alice@example.com", "sip:shared@h", 5_000);
    let a2 = registration("alice@example.com", "sip:a2@h", 5_000);
    let b1 = registration("bob@example.com", "sip:shared@h", 5_000);
    for r in [&a1, &a2, &b1] {
        s.upsert_registration(r).await.expect("upsert");
    }

    assert!(s
        .remove_registration(&alice, "sip:shared@h")
        .await
        .expect("remove"));
    assert!(!s
        .remove_registration(&alice, "sip:shared@h")
        .await
        .expect("remove again"));
    assert!(!s
        .remove_registration(&alice, "sip:unknown@h")
        .await
        .expect("remove unknown"));
    assert!(!s
        .remove_registration(&uid("nobody@example.com"), "sip:a2@h")
        .await
        .expect("remove for unknown user"));
    assert_eq!(
        s.registrations(&alice, 0).await.expect("list"),
        vec![a2.clone()]
    );
    assert_eq!(
        s.registrations(&bob, 0).await.expect("list"),
        vec![b1.clone()]
    );

    // deleting a user deletes its bindings
    assert!(s.delete_user(&bob).await.expect("delete"));
    s.create_user(&user(bob.as_str(), 3))
        .await
        .expect("recreate");
    assert!(s.registrations(&bob, 0).await.expect("list").is_empty());
    assert_eq!(
        s.expire_registrations(i64::MAX).await.expect("expire"),
        vec![a2]
    );
}

/// After migrating a database whose users were written before migration 0002: they read back
/// with no SIP digest, and setting the password again adds it. `store` is the migrated store,
/// `legacy` a user the caller inserted under the old schema.
pub async fn legacy_rows_after_upgrade(store: &dyn Store, legacy: &UserId) {
    let got = store.get_user(legacy).await.expect("get").expect("present");
    assert_eq!(got.sip_digest, None);
    store
        .update_user(&new_user_record(legacy.clone(), "pw", got.created_at))
        .await
        .expect("passwd");
    let got = store.get_user(legacy).await.expect("get").expect("present");
    assert_eq!(got.sip_digest, Some(sip_digest(legacy, "pw")));
    store
        .upsert_registration(&registration(legacy.as_str(), "sip:x@h", 10))
        .await
        .expect("registrations table");
}
