//! The same behaviour checked on both backends: the local directory store and the object
//! store (its local-filesystem implementation): round trips, ranges, dedup, limits, aborted
//! uploads leaving nothing behind, and paths that only ever come from hashes.

use super::*;
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use std::sync::Arc;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn chunks(parts: &[&[u8]]) -> ByteStream {
    let owned: Vec<std::io::Result<Bytes>> = parts
        .iter()
        .map(|p| Ok(Bytes::copy_from_slice(p)))
        .collect();
    futures::stream::iter(owned).boxed()
}

fn failing_after(part: &'static [u8]) -> ByteStream {
    futures::stream::iter(vec![
        Ok(Bytes::from_static(part)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ])
    .boxed()
}

async fn read_all(s: ByteStream) -> std::io::Result<Vec<u8>> {
    let parts: Vec<Bytes> = s.try_collect().await?;
    Ok(parts.concat())
}

/// Every regular file below `dir`.
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

async fn stores(dir: &std::path::Path) -> Result<Vec<Box<dyn FileStore>>, FileError> {
    let local = LocalFileStore::open(dir.join("local")).await?;
    std::fs::create_dir_all(dir.join("object"))?;
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir.join("object"))?;
    let object = ObjectFileStore::new(Arc::new(fs), "palaver/files");
    Ok(vec![Box::new(local), Box::new(object)])
}

#[tokio::test]
async fn round_trip_range_and_dedup() -> TestResult {
    let dir = tempfile::tempdir()?;
    for store in stores(dir.path()).await? {
        let name = store.backend();
        let blob = store.put(chunks(&[b"hello ", b"world"]), 1024).await?;
        assert_eq!(blob.size, 11, "{name}");
        assert_eq!(blob.id, BlobId::of(b"hello world"), "{name}");
        assert_eq!(
            read_all(store.get(&blob.id, None).await?).await?,
            b"hello world"
        );
        assert_eq!(
            read_all(store.get(&blob.id, Some(6..11)).await?).await?,
            b"world"
        );
        assert_eq!(
            read_all(store.get(&blob.id, Some(0..1)).await?).await?,
            b"h"
        );
        assert!(matches!(
            store.get(&blob.id, Some(5..12)).await,
            Err(FileError::BadRange { .. })
        ));
        assert_eq!(store.size(&blob.id).await?, Some(11));
        // The same bytes again, in other chunks: one blob.
        let again = store.put(chunks(&[b"hello", b" world"]), 1024).await?;
        assert_eq!(again, blob, "{name}");
        assert!(store.delete(&blob.id).await?, "{name}");
        assert!(!store.delete(&blob.id).await?, "{name}");
        assert!(matches!(
            store.get(&blob.id, None).await,
            Err(FileError::NotFound)
        ));
        assert_eq!(store.size(&blob.id).await?, None);
    }
    Ok(())
}

#[tokio::test]
async fn empty_and_large_blobs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    for store in stores(dir.path()).await? {
        let empty = store.put(chunks(&[]), 10).await?;
        assert_eq!(empty.size, 0);
        assert!(read_all(store.get(&empty.id, None).await?)
            .await?
            .is_empty());
        let parts: Vec<&[u8]> = big.chunks(100_000).collect();
        let blob = store.put(chunks(&parts), big.len() as u64).await?;
        assert_eq!(blob.id, BlobId::of(&big), "{}", store.backend());
        assert_eq!(read_all(store.get(&blob.id, None).await?).await?, big);
        let mid = read_all(store.get(&blob.id, Some(1_000_000..1_000_010)).await?).await?;
        assert_eq!(mid, &big[1_000_000..1_000_010]);
    }
    Ok(())
}

#[tokio::test]
async fn over_limit_and_aborted_uploads_leave_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    for store in stores(dir.path()).await? {
        let name = store.backend();
        let r = store.put(chunks(&[b"12345", b"67890", b"x"]), 10).await;
        assert!(
            matches!(r, Err(FileError::TooLarge { limit: 10 })),
            "{name}: {r:?}"
        );
        let r = store.put(failing_after(b"partial"), 100).await;
        assert!(matches!(r, Err(FileError::Aborted(_))), "{name}: {r:?}");
        assert_eq!(store.size(&BlobId::of(b"partial")).await?, None);
        // Exactly the limit is fine.
        store.put(chunks(&[b"1234567890"]), 10).await?;
    }
    let left: Vec<_> = files_below(dir.path())
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("/sha256/"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    Ok(())
}

#[tokio::test]
async fn blobs_live_only_under_hash_paths() -> TestResult {
    let dir = tempfile::tempdir()?;
    for store in stores(dir.path()).await? {
        store.put(chunks(&[b"../../etc/passwd"]), 100).await?;
    }
    let files = files_below(dir.path());
    assert_eq!(files.len(), 2);
    let hex = BlobId::of(b"../../etc/passwd").hex();
    for f in &files {
        let tail = f.strip_prefix(dir.path())?.to_string_lossy().to_string();
        assert!(
            tail.ends_with(&format!("sha256/{}/{}/{hex}", &hex[0..2], &hex[2..4])),
            "{tail}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn reopening_removes_unfinished_uploads() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("files");
    let store = LocalFileStore::open(&root).await?;
    let kept = store.put(chunks(&[b"kept"]), 100).await?;
    // What a process killed mid-upload leaves behind.
    std::fs::write(root.join("tmp").join("0123.part"), b"half an upl")?;
    drop(store);
    let store = LocalFileStore::open(&root).await?;
    assert_eq!(std::fs::read_dir(root.join("tmp"))?.count(), 0);
    assert_eq!(store.size(&kept.id).await?, Some(4));
    Ok(())
}

#[test]
fn blob_ids_parse_and_print() {
    let id = BlobId::of(b"abc");
    assert_eq!(
        id.hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(BlobId::from_hex(&id.hex().to_uppercase()), Some(id));
    assert_eq!(BlobId::from_hex("ba78"), None);
    assert_eq!(BlobId::from_hex(&"g".repeat(64)), None);
    assert_eq!(BlobId::from_hex(&"é".repeat(32)), None);
    assert!(id.relative_path().starts_with("sha256/ba/78/ba7816"));
}
