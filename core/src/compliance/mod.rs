//! The compliance archive: every room event (joins, leaves, messages, subject and configuration
//! changes, role and affiliation changes, file uploads and downloads) recorded in a separate,
//! append-only database whose rows form a SHA-256 hash chain, so tampering shows.
//!
//! - [`event`]: the event model and its stable kind names;
//! - [`chain`]: the hash of a row;
//! - [`db`]: the compliance database (append, verify, purge, streaming reads);
//! - [`export`]: JSON lines / CSV / XML export;
//! - [`sink`]: capture (rooms → outbox writer, never blocking a room);
//! - [`drain`]: the drainer from the main store's outbox to the compliance database.

pub mod chain;
pub mod db;
pub mod drain;
pub mod event;
pub mod export;
pub mod sink;

pub use db::{ComplianceDb, Filter, Verdict};
pub use drain::{source_id, Drainer};
pub use event::{ComplianceEvent, EventKind, StoredEvent};
pub use export::{export, Format};
pub use sink::ComplianceSink;

/// Errors of the compliance archive.
#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    #[error(
        "unsupported compliance url {0:?} (use sqlite://PATH, sqlite::memory: or postgres://...)"
    )]
    BadUrl(String),
    #[error("compliance database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("compliance migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt compliance row: {0}")]
    Corrupt(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}
