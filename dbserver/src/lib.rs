//! The database server library: an embedded, crash-safe table store today,
//! and the remote objects that expose it over RPC later. Everything here is
//! synchronous; async callers run store operations on a blocking thread.

pub mod error;
pub mod store;
pub mod value;

pub use error::DbError;
pub use store::{Column, Store, TableMeta};
pub use value::{Value, ValueType};
