//! Distributed objects for Rust, in the manner of Java RMI: annotate a trait
//! with [`remote`], export an object, look it up from another node, call it as
//! if it were local, and pass references around (callbacks included).
//!
//! # Layout
//! - [`ids`]: node, object and class ids; the [`Capability`] naming a remote object.
//! - [`error`]: [`RpcError`], the one error type, also sent over the wire.
//! - [`wire`]: the pure protocol (frames, envelope); no I/O.
//! - `transport`: the only code touching sockets: one multiplexed connection per peer.
//! - [`registry`]: classes (link-time, via `inventory`), exports, imports.
//! - [`dispatch`]: what `#[remote]`-generated code targets (skeletons, handles, references).
//! - [`node`]: the runtime: listen, connect, serve, shut down.
//! - [`config`]: limits and timeouts.
//! - [`transfer`]: the large message proxy and [`Blob`].
//! - [`data`]: the data manager: data kept under a [`DataId`] with a
//!   [`Persistence`] mode, fetched, moved and located by id.
//! - [`shutdown`]: the Ctrl-C / SIGTERM future server binaries stop on.
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

// `#[remote]`-generated code names `::rpc_core`; the data manager's own
// remote trait expands inside this crate.
extern crate self as rpc_core;

pub mod config;
pub mod data;
pub mod dispatch;
pub mod error;
pub mod ids;
pub mod node;
mod positional;
pub mod registry;
pub mod shutdown;
pub mod transfer;
pub(crate) mod transport;
pub mod wire;

#[doc(hidden)]
pub mod __private;

pub use config::Config;
pub use data::{DataConfig, DataInfo, DataManagerRef, DataRef, DataStore, Persistence};
pub use dispatch::{RemoteHandle, RemoteRef, call_deadline, caller};
pub use error::{Result, RpcError};
pub use ids::{Capability, ClassId, ClassVersion, ComHandle, DataId, NodeId, ObjectId, TransferId};
pub use node::{Node, NodeStats};
pub use registry::classes::{ClassInfo, class_registry};
pub use rpc_macros::remote;
pub use shutdown::shutdown_signal;
pub use transfer::Blob;
