//! [`LocalFileStore`]: blobs under a directory. An upload is written to `tmp/<random>.part`
//! while it is hashed, fsynced, then renamed to `sha256/ab/cd/<hex>` and the directory fsynced,
//! so a blob is visible whole or not at all, even across a crash; leftovers in `tmp/` (a
//! process killed mid-upload) are removed when the store opens. Only names built from hashes
//! and random numbers are ever created, so it behaves the same on ext4, XFS, NTFS, FAT or a
//! network share.

use super::{check_range, Blob, BlobId, ByteStream, FileError, FileResult, FileStore};
use futures::StreamExt as _;
use sha2::{Digest, Sha256};
use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};
use tokio::fs;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

/// Read size of downloads.
const CHUNK: usize = 64 * 1024;

/// Blobs in a local directory.
pub struct LocalFileStore {
    root: PathBuf,
}

impl LocalFileStore {
    /// Opens (creating) the store at `root` and removes unfinished uploads left in `tmp/`.
    pub async fn open(root: impl Into<PathBuf>) -> FileResult<LocalFileStore> {
        let root = root.into();
        let tmp = root.join("tmp");
        fs::create_dir_all(root.join("sha256")).await?;
        match fs::remove_dir_all(&tmp).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        fs::create_dir_all(&tmp).await?;
        Ok(LocalFileStore { root })
    }

    fn path_of(&self, id: &BlobId) -> PathBuf {
        self.root.join(id.relative_path())
    }

    /// Writes `data` to `tmp`, returning the blob it makes; on error the caller removes `tmp`.
    async fn write_temp(tmp: &Path, mut data: ByteStream, limit: u64) -> FileResult<Blob> {
        let mut file = fs::File::create(tmp).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| FileError::Aborted(e.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(FileError::TooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        Ok(Blob {
            id: BlobId::from_hasher(hasher),
            size,
        })
    }
}

/// fsyncs a directory so a rename in it survives a crash (a no-op where directories can't be
/// opened, as on Windows).
async fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
}

#[async_trait::async_trait]
impl FileStore for LocalFileStore {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn put(&self, data: ByteStream, limit: u64) -> FileResult<Blob> {
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{:032x}.part", rand::random::<u128>()));
        let blob = match LocalFileStore::write_temp(&tmp, data, limit).await {
            Ok(blob) => blob,
            Err(e) => {
                let _ = fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let dest = self.path_of(&blob.id);
        let placed = async {
            let dir = dest.parent().unwrap_or(&self.root);
            fs::create_dir_all(dir).await?;
            if fs::try_exists(&dest).await? {
                // The same bytes are stored already.
                fs::remove_file(&tmp).await?;
            } else {
                fs::rename(&tmp, &dest).await?;
                sync_dir(dir).await;
            }
            Ok::<_, std::io::Error>(())
        }
        .await;
        if let Err(e) = placed {
            let _ = fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        Ok(blob)
    }

    async fn get(&self, id: &BlobId, range: Option<Range<u64>>) -> FileResult<ByteStream> {
        let mut file = match fs::File::open(self.path_of(id)).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FileError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let size = file.metadata().await?.len();
        let range = range.unwrap_or(0..size);
        if size > 0 || range != (0..0) {
            check_range(&range, size)?;
        }
        file.seek(SeekFrom::Start(range.start)).await?;
        let reader = file.take(range.end - range.start);
        Ok(futures::stream::try_unfold(reader, |mut r| async move {
            let mut buf = bytes::BytesMut::with_capacity(CHUNK);
            match r.read_buf(&mut buf).await? {
                0 => Ok(None),
                _ => Ok(Some((buf.freeze(), r))),
            }
        })
        .boxed())
    }

    async fn size(&self, id: &BlobId) -> FileResult<Option<u64>> {
        match fs::metadata(self.path_of(id)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, id: &BlobId) -> FileResult<bool> {
        match fs::remove_file(self.path_of(id)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
