//! palaver-core: the room engine, the durable store (SQLite and PostgreSQL) and credentials.
//! Nothing here knows a wire protocol or opens a client socket.

pub mod credentials;
pub mod engine;
pub mod model;
pub mod store;

pub use model::*;
pub use store::{open_store, Store, StoreError, StoreResult};
