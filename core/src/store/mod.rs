//! The `Store` trait: everything palaver keeps durably (users, categories, rooms, affiliations,
//! messages, SIP registrations, file metadata), and `open_store`, which picks the SQLite or PostgreSQL backend
//! from a URL.

#[macro_use]
mod shared_impl;
pub(crate) mod postgres;
mod rows;
mod rows_compliance;
mod rows_files;
mod rows_sip;
mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::compliance::ComplianceEvent;
use crate::model::*;
use std::sync::Arc;

/// Errors from a store backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    AlreadyExists,
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unsupported store url {0:?} (use sqlite://PATH, sqlite::memory: or postgres://...)")]
    BadUrl(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Durable state. Both backends have identical semantics; tests run the same suite on each.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Short name of the backend ("sqlite" or "postgres").
    fn backend(&self) -> &'static str;

    // ---- users ----
    /// Fails with `AlreadyExists` when the user exists.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Creates many users in one transaction (bulk import); a user that exists already is
    /// left as it is. Returns, per input record, whether it was added.
    async fn create_users(&self, users: &[UserRecord]) -> StoreResult<Vec<bool>>;
    /// Replaces credentials (SCRAM keys and SIP digest; a `None` digest clears the stored one),
    /// keeps `created_at`; `NotFound` when absent.
    async fn update_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Returns false when there was no such user. Deletes the user's registrations too.
    async fn delete_user(&self, user: &UserId) -> StoreResult<bool>;
    async fn get_user(&self, user: &UserId) -> StoreResult<Option<UserRecord>>;
    /// All users, sorted.
    async fn list_users(&self) -> StoreResult<Vec<UserId>>;

    // ---- categories ----
    /// `AlreadyExists` when the name (case-insensitive) is taken.
    async fn create_category(&self, category: &Category) -> StoreResult<()>;
    /// Replaces a category by id; `NotFound` when absent.
    async fn update_category(&self, category: &Category) -> StoreResult<()>;
    /// Rooms in it keep existing with no category. False when absent.
    async fn delete_category(&self, id: uuid::Uuid) -> StoreResult<bool>;
    /// Case-insensitive lookup by name.
    async fn get_category_by_name(&self, name: &str) -> StoreResult<Option<Category>>;
    async fn get_category(&self, id: uuid::Uuid) -> StoreResult<Option<Category>>;
    /// Sorted by name.
    async fn list_categories(&self) -> StoreResult<Vec<Category>>;

    // ---- rooms ----
    /// Inserts a room and returns its new id (the `id` field of the argument is ignored).
    /// `AlreadyExists` when the name is taken (names are lowercase).
    async fn create_room(&self, room: &RoomRecord) -> StoreResult<RoomId>;
    /// Replaces name/category/config/subject/locked of the room with `room.id`; `NotFound` if absent.
    async fn update_room(&self, room: &RoomRecord) -> StoreResult<()>;
    /// Deletes the room with its affiliations and messages. False when absent.
    async fn delete_room(&self, id: RoomId) -> StoreResult<bool>;
    async fn get_room(&self, name: &str) -> StoreResult<Option<RoomRecord>>;
    async fn get_room_by_id(&self, id: RoomId) -> StoreResult<Option<RoomRecord>>;
    /// Sorted by name.
    async fn list_rooms(&self) -> StoreResult<Vec<RoomRecord>>;

    // ---- affiliations ----
    /// Sets a user's affiliation; `Affiliation::None` removes the row.
    async fn set_affiliation(
        &self,
        room: RoomId,
        user: &UserId,
        affiliation: Affiliation,
        reason: &str,
    ) -> StoreResult<()>;
    /// Every non-`None` affiliation of the room, sorted by user.
    async fn affiliations(&self, room: RoomId) -> StoreResult<Vec<AffiliationRecord>>;

    // ---- messages ----
    /// Appends a batch (possibly several rooms) in ONE transaction. A duplicate (room_id, seq)
    /// fails the whole batch with `Conflict` and nothing is written.
    async fn append_messages(&self, batch: &[StoredMessage]) -> StoreResult<()>;
    /// [`Store::append_messages`], and `outbox` pushed to the compliance outbox in the same
    /// transaction: a message is never committed without its compliance event, nor the reverse.
    async fn append_messages_recorded(
        &self,
        batch: &[StoredMessage],
        outbox: &[ComplianceEvent],
    ) -> StoreResult<()>;
    /// Highest seq of the room, 0 when it has no message.
    async fn last_seq(&self, room: RoomId) -> StoreResult<i64>;
    /// See `HistoryQuery`. Always ascending seq.
    async fn history(&self, room: RoomId, query: &HistoryQuery) -> StoreResult<Vec<StoredMessage>>;
    /// Looks a message up by its stanza-id within a room (for RSM paging by id).
    async fn message_by_stanza_id(
        &self,
        room: RoomId,
        stanza_id: &str,
    ) -> StoreResult<Option<StoredMessage>>;
    /// Number of messages in the room matching the query's bounds (limit/from_end ignored).
    /// Exact up to `EXACT_COUNT_LIMIT` candidates; above it, without a sender filter, the
    /// span of matching seqs (exact unless seqs have gaps).
    async fn count_messages(&self, room: RoomId, query: &HistoryQuery) -> StoreResult<u64>;

    // ---- SIP registrations (the location service) ----
    /// Adds the binding, or replaces every field of the existing one with the same
    /// (`user`, `contact`). `NotFound` when the user does not exist.
    async fn upsert_registration(&self, registration: &Registration) -> StoreResult<()>;
    /// Removes one binding; false when there was none.
    async fn remove_registration(&self, user: &UserId, contact: &str) -> StoreResult<bool>;
    /// The user's unexpired bindings (`expires_at > now`), sorted by contact. Expired rows that
    /// are still stored are left out (and left in place).
    async fn registrations(&self, user: &UserId, now: Millis) -> StoreResult<Vec<Registration>>;
    /// Deletes every expired binding (`expires_at <= now`) and returns them, sorted by
    /// (user, contact), so the caller can make those contacts' occupants leave. Atomic: each
    /// row is returned by exactly one call, also with several callers (pool nodes).
    async fn expire_registrations(&self, now: Millis) -> StoreResult<Vec<Registration>>;

    // ---- files posted to rooms (metadata; the bytes are in the file store) ----
    /// Records a stored upload; `AlreadyExists` when the id is taken (a slot used twice).
    async fn insert_file(&self, file: &FileRecord) -> StoreResult<()>;
    async fn get_file(&self, id: uuid::Uuid) -> StoreResult<Option<FileRecord>>;
    /// Ties a file to the room it is first posted to; false when it has a room already (or
    /// does not exist). `NotFound` never: the caller reads the file to tell which.
    async fn set_file_room(&self, id: uuid::Uuid, room: RoomId) -> StoreResult<bool>;
    /// The room's files, newest first, at most `limit`.
    async fn room_files(&self, room: RoomId, limit: u32) -> StoreResult<Vec<FileRecord>>;
    /// Deletes a file's metadata and returns it (its blob may be shared: see
    /// [`Store::blob_refs`]).
    async fn delete_file(&self, id: uuid::Uuid) -> StoreResult<Option<FileRecord>>;
    /// How many files use the blob with this SHA-256 (hex).
    async fn blob_refs(&self, sha256: &str) -> StoreResult<u64>;
    /// The bytes of every file the user uploaded (the quota's measure).
    async fn uploader_bytes(&self, user: &UserId) -> StoreResult<u64>;

    // ---- secrets shared by a pool ----
    /// The secret called `name`: the stored one, or `fresh` stored now when there is none
    /// (when several nodes race, every one gets the value that won).
    async fn shared_secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>>;

    // ---- the compliance outbox (events waiting for the compliance database) ----
    /// Appends events in order, in one transaction (all or none).
    async fn outbox_push(&self, events: &[ComplianceEvent]) -> StoreResult<()>;
    /// The oldest `limit` events with their outbox ids, ascending.
    async fn outbox_peek(&self, limit: u32) -> StoreResult<Vec<(i64, ComplianceEvent)>>;
    /// Deletes the events with these ids (exactly these: with several writers an id below the
    /// highest peeked one may commit later and must stay); returns how many went.
    async fn outbox_delete(&self, ids: &[i64]) -> StoreResult<u64>;
}

/// Opens (creating when needed) and migrates the store named by `url`:
/// `sqlite://path/to/file.db`, `sqlite::memory:`, or `postgres://...` / `postgresql://...`.
/// A PostgreSQL URL may carry `?options=-csearch_path%3Dschema` style options; `open_store`
/// also accepts a `schema=NAME` query parameter that creates the schema and uses it (tests).
pub async fn open_store(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::open(url).await?))
    } else {
        Err(StoreError::BadUrl(url.to_string()))
    }
}
