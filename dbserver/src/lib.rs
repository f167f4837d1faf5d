//! The database server: an embedded, crash-safe table store ([`store`]) and
//! the remote objects that expose it ([`api`]: Database -> Table -> Cell), a
//! client-side in-memory table ([`memtable`]) and the server runtime
//! ([`server`]). Store operations are synchronous; the remote objects run
//! them on blocking threads.

pub mod api;
pub mod databases;
pub mod error;
pub mod memtable;
mod objects;
pub mod server;
pub mod store;
pub mod value;
mod watch;

pub use error::DbError;
pub use store::{Column, Store, TableMeta};
pub use value::{Value, ValueType};
