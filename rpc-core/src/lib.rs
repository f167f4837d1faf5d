//! Distributed objects for Rust, in the manner of Java RMI: annotate a trait
//! with [`remote`], export an object, look it up from another node, call it as
//! if it were local, and pass references around (callbacks included).
//!
//! # Layout
//! One-way layers: each module imports only the ones above it in this list.
//! - `positional`, `ids`, `error`, `config`, `credentials`, [`pki`],
//!   `budget`: identifiers and the [`Capability`] (with the positional CBOR
//!   they travel in), the [`RpcError`] every call can fail with, limits and
//!   timeouts ([`Config`]), TLS credentials ([`TlsCredentials`]) and the
//!   making of them, and the per-peer / per-node budgets of what peers may
//!   make a node hold.
//! - [`wire`]: the pure protocol (frames, envelope); no I/O, no tokio.
//! - `transport`: the only code touching sockets: one multiplexed connection
//!   per peer over any byte stream, the handshake, accepting and dialing.
//! - `registry`: tables: classes (link-time, via `inventory`), exports, imports, leases.
//! - `transfer`: the large message proxy and [`Blob`].
//! - `dispatch`: what `#[remote]`-generated code targets (skeletons,
//!   handles, references) and the encoding of call values on behalf of a node.
//! - `node`: the runtime: [`Node`] listens, connects, serves, shuts down;
//!   services attach to it as extensions.
//! - [`data`]: the data manager, an extension: data kept under a
//!   [`DataId`] with a persistence mode, fetched, moved and located by id.
//! - `shutdown`: the Ctrl-C / SIGTERM future server binaries stop on.
//! - `cli` (feature `cli`): the network, TLS and limit flags the binaries
//!   share.
//!
//! # Example
//! ```no_run
//! use rpc_core::{remote, Node, Config, RpcError};
//!
//! #[remote]
//! pub trait Greeter {
//!     async fn greet(&self, name: String) -> Result<String, RpcError>;
//! }
//!
//! struct Hello;
//! impl Greeter for Hello {
//!     async fn greet(&self, name: String) -> Result<String, RpcError> {
//!         Ok(format!("hello, {name}"))
//!     }
//! }
//!
//! # async fn demo() -> Result<(), RpcError> {
//! let server = Node::new(Config::default());
//! let addr = server.listen("127.0.0.1:0").await.expect("bind");
//! server.bind_bootstrap("greeter", &GreeterRef::new(Hello))?;
//!
//! let client = Node::new(Config::default());
//! let greeter: GreeterRef = client.lookup(&addr.to_string(), "greeter").await?;
//! assert_eq!(greeter.greet("ada".into()).await?, "hello, ada");
//! # Ok(()) }
//! ```
//!
//! # Bytes
//! - A whole argument or result of type `Vec<u8>`, `Box<[u8]>` or
//!   `bytes::Bytes` (written so in the signature) travels as one CBOR byte
//!   string, built in the value's own buffer: no copy on either side beyond
//!   the socket's. Above `Config::large_threshold` it goes through the large
//!   message proxy like any large value.
//! - Bytes inside your own types (a field, an `Option<Vec<u8>>`, a tuple):
//!   mark the field `#[serde(with = "serde_bytes")]` or use
//!   `serde_bytes::ByteBuf`. A plain `Vec<u8>` field is what serde makes of
//!   it, an array of integers: up to twice the size and decoded byte by byte
//!   (about 16 MB/s for a large value).
//! - [`Blob`] for large values: sent from memory, a file or any reader, and
//!   received into memory or straight into a file, with bounded memory on
//!   both sides; small in-memory blobs go inline.

// `#[remote]`-generated code names `::rpc_core`; the data manager's own
// remote trait expands inside this crate.
extern crate self as rpc_core;

mod budget;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
mod credentials;
pub mod data;
mod dispatch;
mod error;
mod ids;
mod node;
pub mod pki;
mod positional;
mod registry;
mod shutdown;
mod telemetry;
mod transfer;
mod transport;
pub mod wire;

#[doc(hidden)]
pub mod __private;

pub use config::Config;
pub use credentials::{CertIdentity, TLS_SERVER_NAME, TlsCredentials};
pub use dispatch::{
    BoxFuture, IncomingCall, RemoteHandle, RemoteRef, ServerProxy, call_deadline, caller,
    caller_identity,
};
pub use error::{Result, RpcError};
pub use ids::{
    CallId, Capability, ClassId, ClassVersion, ComHandle, DataId, Identity, NodeId, ObjectId,
    TransferId,
};
pub use node::{BOOTSTRAP_OBJECT, Extension, Node, NodeStats, PeerStats, WeakNode};
pub use registry::classes::{
    ClassDescription, ClassDoc, ClassInfo, ClassRegistry, MethodDescription, MethodDoc,
    class_registry,
};
pub use rpc_macros::remote;
pub use shutdown::shutdown_signal;
pub use telemetry::enable_call_metrics;
pub use transfer::{Blob, ChunkSink, ReadAt, free_bytes};
