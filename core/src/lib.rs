//! palaver-core: the room engine, the durable store (SQLite and PostgreSQL), credentials and
//! the pool (membership rules, room-home placement, the 8011 wire protocol).
//! Nothing here knows a client protocol or opens a socket.

pub mod compliance;
pub mod credentials;
pub mod engine;
pub mod files;
pub mod model;
pub mod pool;
pub mod store;

pub use model::*;
pub use store::{open_store, Store, StoreError, StoreResult};
