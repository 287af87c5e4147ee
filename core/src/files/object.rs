//! [`ObjectFileStore`]: blobs in an `object_store` backend — S3-compatible storage shared by a
//! pool, or the crate's local-filesystem implementation. An upload goes to `tmp/<random>` as a
//! multipart upload while it is hashed, is then copied to `sha256/ab/cd/<hex>` (unless the same
//! bytes are there already) and the temporary object deleted; readers only ever look at
//! `sha256/…`, where an object appears whole.

use super::{check_range, Blob, BlobId, ByteStream, FileError, FileResult, FileStore};
use futures::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt as _, WriteMultipart};
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::sync::Arc;

/// Blobs in an object store, below an optional prefix.
pub struct ObjectFileStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl ObjectFileStore {
    /// Blobs of `store` below `prefix` (e.g. `palaver/files`; empty for the bucket's root).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> ObjectFileStore {
        ObjectFileStore {
            store,
            prefix: Path::from(prefix),
        }
    }

    fn path(&self, relative: &str) -> Path {
        Path::from_iter(self.prefix.parts().chain(Path::from(relative).parts()))
    }

    /// Streams `data` into a multipart upload of `tmp`; aborts it on error.
    async fn upload_temp(&self, tmp: &Path, mut data: ByteStream, limit: u64) -> FileResult<Blob> {
        let mut upload = WriteMultipart::new(self.store.put_multipart(tmp).await?);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let failure = loop {
            match data.next().await {
                None => break None,
                Some(Err(e)) => break Some(FileError::Aborted(e.to_string())),
                Some(Ok(chunk)) => {
                    size += chunk.len() as u64;
                    if size > limit {
                        break Some(FileError::TooLarge { limit });
                    }
                    hasher.update(&chunk);
                    if let Err(e) = upload.wait_for_capacity(4).await {
                        break Some(e.into());
                    }
                    upload.put(chunk);
                }
            }
        };
        if let Some(e) = failure {
            let _ = upload.abort().await;
            return Err(e);
        }
        upload.finish().await?;
        Ok(Blob {
            id: BlobId::from_hasher(hasher),
            size,
        })
    }
}

#[async_trait::async_trait]
impl FileStore for ObjectFileStore {
    fn backend(&self) -> &'static str {
        "object"
    }

    async fn put(&self, data: ByteStream, limit: u64) -> FileResult<Blob> {
        let tmp = self.path(&format!("tmp/{:032x}", rand::random::<u128>()));
        let blob = self.upload_temp(&tmp, data, limit).await?;
        let dest = self.path(&blob.id.relative_path());
        let copied = match self.store.copy_if_not_exists(&tmp, &dest).await {
            Ok(()) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            // Stores without an atomic conditional copy (plain S3): the destination's content
            // is fixed by its name, so overwriting it with the same bytes is harmless.
            Err(object_store::Error::NotImplemented { .. })
            | Err(object_store::Error::NotSupported { .. }) => self.store.copy(&tmp, &dest).await,
            Err(e) => Err(e),
        };
        let _ = self.store.delete(&tmp).await;
        copied?;
        Ok(blob)
    }

    async fn get(&self, id: &BlobId, range: Option<Range<u64>>) -> FileResult<ByteStream> {
        let path = self.path(&id.relative_path());
        let mut options = GetOptions::default();
        if let Some(r) = &range {
            let size = self.size(id).await?.ok_or(FileError::NotFound)?;
            check_range(r, size)?;
            options.range = Some(GetRange::Bounded(r.clone()));
        }
        let result = match self.store.get_opts(&path, options).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(FileError::NotFound),
            Err(e) => return Err(e.into()),
        };
        Ok(result
            .into_stream()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .boxed())
    }

    async fn size(&self, id: &BlobId) -> FileResult<Option<u64>> {
        match self.store.head(&self.path(&id.relative_path())).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, id: &BlobId) -> FileResult<bool> {
        if self.size(id).await?.is_none() {
            return Ok(false);
        }
        match self.store.delete(&self.path(&id.relative_path())).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
