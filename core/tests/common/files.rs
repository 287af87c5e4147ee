//! Suite tests of the files share of the store: file metadata written once the bytes are
//! stored, tied to the room it is first posted to, listed per room, deleted with the room,
//! shared blobs counted, an uploader's bytes summed.

use super::*;

/// A file of `uploader`, `size` bytes of blob `sha` (a short tag, padded to 64 hex digits).
pub fn file(uploader: &str, name: &str, size: u64, sha: &str, at: Millis) -> FileRecord {
    FileRecord {
        id: uuid::Uuid::new_v4(),
        room: None,
        uploader: uid(uploader),
        name: name.to_string(),
        mime: "text/plain; charset=utf-8".into(),
        size,
        sha256: format!("{sha:0>64}"),
        created_at: at,
    }
}

pub async fn files_metadata(cx: &Ctx) {
    let s = &*cx.store;
    let posted = s.create_room(&room("files-room")).await.expect("room");
    let other = s.create_room(&room("other-room")).await.expect("room");
    // Names that would be dangerous in a path are just text here.
    let a = file("alice@example.com", "../../etc/passwd", 10, "aa", 1_000);
    let b = file("alice@example.com", "CON", 20, "bb", 2_000);
    let c = file("bob@example.com", "Ünïcode name.txt", 30, "aa", 3_000);
    for f in [&a, &b, &c] {
        s.insert_file(f).await.expect("insert");
    }
    assert!(matches!(
        s.insert_file(&a).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(s.get_file(a.id).await.expect("get"), Some(a.clone()));
    assert_eq!(s.get_file(uuid::Uuid::new_v4()).await.expect("get"), None);

    // Posted: tied to the first room only.
    assert!(s.set_file_room(a.id, posted).await.expect("set"));
    assert!(!s.set_file_room(a.id, other).await.expect("set again"));
    assert!(s.set_file_room(b.id, posted).await.expect("set"));
    assert!(s.set_file_room(c.id, other).await.expect("set"));
    assert_eq!(
        s.get_file(a.id).await.expect("get").and_then(|f| f.room),
        Some(posted)
    );
    let listed: Vec<_> = s
        .room_files(posted, 10)
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(listed, vec![b.id, a.id], "newest first");
    assert_eq!(s.room_files(posted, 1).await.expect("list").len(), 1);

    assert_eq!(s.blob_refs(&a.sha256).await.expect("refs"), 2);
    assert_eq!(
        s.uploader_bytes(&uid("alice@example.com"))
            .await
            .expect("sum"),
        30
    );
    assert_eq!(
        s.uploader_bytes(&uid("nobody@example.com"))
            .await
            .expect("sum"),
        0
    );

    let gone = s.delete_file(a.id).await.expect("delete");
    assert_eq!(gone.map(|f| f.id), Some(a.id));
    assert_eq!(s.delete_file(a.id).await.expect("delete again"), None);
    assert_eq!(s.blob_refs(&a.sha256).await.expect("refs"), 1);

    // Deleting a room deletes its files' metadata.
    assert!(s.delete_room(other).await.expect("delete room"));
    assert_eq!(s.get_file(c.id).await.expect("get"), None);
    assert_eq!(s.blob_refs(&c.sha256).await.expect("refs"), 0);
}

pub async fn shared_secrets(cx: &Ctx) {
    let s = &*cx.store;
    let first = s
        .shared_secret("files", b"first value")
        .await
        .expect("secret");
    assert_eq!(first, b"first value");
    // Another node asking later gets the stored one, not its own.
    let again = s
        .shared_secret("files", b"second value")
        .await
        .expect("secret");
    assert_eq!(again, b"first value");
    let other = s.shared_secret("other", b"x").await.expect("secret");
    assert_eq!(other, b"x");
}
