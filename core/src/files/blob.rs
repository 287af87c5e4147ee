//! Blob identities: [`BlobId`] (the SHA-256 of the contents, shown as 64 lowercase hex digits),
//! its place in a store (`sha256/ab/cd/<hex>`), [`Blob`] (id and size) and the byte stream
//! type uploads and downloads use.

use bytes::Bytes;
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use std::fmt;

/// A stream of byte chunks (an upload's body, a download).
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// The SHA-256 of a blob's contents.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobId([u8; 32]);

/// A stored blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob {
    pub id: BlobId,
    pub size: u64,
}

impl BlobId {
    /// The id of `data`.
    pub fn of(data: &[u8]) -> BlobId {
        BlobId(Sha256::digest(data).into())
    }

    /// The id a finished hasher gives.
    pub fn from_hasher(hasher: Sha256) -> BlobId {
        BlobId(hasher.finalize().into())
    }

    /// Parses 64 hex digits (either case); anything else is `None`.
    pub fn from_hex(s: &str) -> Option<BlobId> {
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(BlobId(out))
    }

    /// 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The blob's path below a store's root: `sha256/ab/cd/<hex>`. Built only from the hash,
    /// so it is the same on every filesystem and object store.
    pub fn relative_path(&self) -> String {
        let hex = self.hex();
        format!("sha256/{}/{}/{hex}", &hex[0..2], &hex[2..4])
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.hex())
    }
}
