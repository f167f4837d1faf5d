//! The contract between the runtime and `#[remote]`-generated code.
//!
//! - `skeleton`: server side: a [`ServerProxy`] receives an
//!   [`IncomingCall`] whose arguments are still opaque bytes.
//! - `handle`: client side: a [`RemoteHandle`] sends calls for one
//!   capability; a reference type implements [`RemoteRef`].
//! - `codec`: encoding and decoding on behalf of a node: references
//!   serialize as capabilities, exported when sent, resolved when received.
//! - `context`: what a task serving a request knows ([`caller`],
//!   [`call_deadline`]).
//! - `core`: the node state all of it works on.

pub(crate) mod bytes;
pub(crate) mod codec;
pub(crate) mod context;
pub(crate) mod core;
pub(crate) mod handle;
pub(crate) mod skeleton;

pub use bytes::ByteValue;
pub use codec::{deserialize_ref, serialize_local, serialize_remote};
pub use context::{call_deadline, caller, caller_identity};
pub use handle::{RemoteHandle, RemoteRef, Reply};
pub use skeleton::{BoxFuture, IncomingCall, ServerProxy};
