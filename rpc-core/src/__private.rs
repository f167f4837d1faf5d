//! Used by `#[remote]`-generated code; not public API.

pub use crate::dispatch::{
    BoxFuture, ByteValue, IncomingCall, RemoteHandle, RemoteRef, Reply, ServerProxy,
    deserialize_ref, serialize_local, serialize_remote,
};
pub use crate::error::RpcError;
pub use crate::registry::classes::{ClassDoc, ClassEntry, ClassInfo, MethodDoc};
pub use crate::wire::{Payload, ResponseBody};
pub use inventory;
pub use serde;
pub use std::any::Any;
pub use std::sync::Arc;
pub use std::time::Duration;

/// Identity key of a shared object, for the ObjectRegistry.
pub fn object_key<T: ?Sized>(obj: &Arc<T>) -> usize {
    Arc::as_ptr(obj) as *const () as usize
}
