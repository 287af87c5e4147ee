//! The file store: the bytes of files posted to rooms, kept content-addressed by their SHA-256
//! ([`BlobId`]) so that identical uploads are stored once and no user-supplied text (a file
//! name, a MIME type) ever becomes part of a path. [`FileStore`] is what the rest of palaver
//! uses; [`LocalFileStore`] keeps blobs under a directory (`sha256/ab/cd/<hex>`, written to a
//! temporary name, fsynced, renamed), [`ObjectFileStore`] in any `object_store` backend
//! (S3-compatible storage, or its local-filesystem implementation), so a pool can share one.
//! Who may read a file is decided by its metadata in the SQL store, never by the file store.

mod blob;
mod local;
mod object;

pub use blob::{Blob, BlobId, ByteStream};
pub use local::LocalFileStore;
pub use object::ObjectFileStore;

use std::ops::Range;

/// Errors of a file store.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// More bytes arrived than the caller allowed; nothing was kept.
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The upload stream failed (the client went away); nothing was kept.
    #[error("the upload was cut short: {0}")]
    Aborted(String),
    #[error("no such blob")]
    NotFound,
    /// The range does not lie within the blob.
    #[error("range {start}..{end} is not within the blob of {size} bytes")]
    BadRange { start: u64, end: u64, size: u64 },
    #[error("file store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
}

pub type FileResult<T> = Result<T, FileError>;

/// Where file contents live. Every method is safe to call from many tasks and many pool nodes
/// at once: a blob appears whole or not at all, and two uploads of the same bytes end in one
/// blob.
#[async_trait::async_trait]
pub trait FileStore: Send + Sync + 'static {
    /// Short name of the backend ("local" or "object").
    fn backend(&self) -> &'static str;

    /// Reads `data` to its end into the store and returns its hash and size. Fails with
    /// `TooLarge` as soon as more than `limit` bytes have arrived (the rest is not read), and
    /// with `Aborted` when `data` yields an error; in both cases nothing is kept.
    async fn put(&self, data: ByteStream, limit: u64) -> FileResult<Blob>;

    /// The blob's bytes, all of them or `range` (which must lie within the blob).
    async fn get(&self, id: &BlobId, range: Option<Range<u64>>) -> FileResult<ByteStream>;

    /// The blob's size, or `None` when it is not stored.
    async fn size(&self, id: &BlobId) -> FileResult<Option<u64>>;

    /// Removes the blob; false when it was not there. The caller checks that no file metadata
    /// refers to it any more.
    async fn delete(&self, id: &BlobId) -> FileResult<bool>;
}

/// Checks `range` against a blob of `size` bytes.
fn check_range(range: &Range<u64>, size: u64) -> FileResult<()> {
    if range.start >= range.end || range.end > size {
        return Err(FileError::BadRange {
            start: range.start,
            end: range.end,
            size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
