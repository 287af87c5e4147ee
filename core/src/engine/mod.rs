//! The room engine: one task per loaded room serializes that room (joins, roles, seq), a shared
//! commit queue batches message inserts from every room into one transaction, and each occupant's
//! session receives `RoomEvent`s through an `EventSink` without any lock or allocation per recipient.

mod commands;
mod commit;
mod compliance_map;
mod events;
mod handle;
mod occupants;
mod permissions;
mod remote;
mod room;
mod room_admin;
mod room_join;
mod watchers;

pub use commands::*;
pub use events::*;
pub use handle::{validate_room_name, Engine, EngineConfig, EngineError, HistoryRewriter};
pub use remote::{Peer, PoolRouter, Route, REPLY_TIMEOUT};
