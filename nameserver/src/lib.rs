//! The name server: a tree of naming contexts in the spirit of CORBA naming,
//! with a class registry for class-based creation and leased bindings, so
//! that a node that dies disappears from the tree instead of leaving stale
//! entries behind.
//!
//! The root holds one context per node that offers objects or classes
//! (`nameserver`, `dbserver`, `client-<id>`); paths such as `dbserver/db`
//! name objects. Everything a node binds is tied to its lease, which the
//! [`client::NameClient`] helper renews in the background and restores when
//! the name server restarts.
//!
//! # Layout
//! - [`api`]: the [`api::NameContext`] remote trait, [`api::NameError`] and
//!   the values that cross the wire; what other crates depend on.
//! - [`name`]: path parsing and validation (pure).
//! - `context`: the naming tree and the leases (pure, explicit time).
//! - [`server`]: the tree served as remote objects; [`server::run`] for the
//!   binary and the tests.
//! - [`client`]: the typed client helper.
//!
//! # Example
//! ```no_run
//! use nameserver::{NameClient, NameError};
//! use rpc_core::{Config, Node, RpcError, remote};
//!
//! #[remote]
//! pub trait Greeter {
//!     async fn greet(&self, who: String) -> Result<String, RpcError>;
//! }
//! struct Hello;
//! impl Greeter for Hello {
//!     async fn greet(&self, who: String) -> Result<String, RpcError> {
//!         Ok(format!("hello, {who}"))
//!     }
//! }
//!
//! # async fn demo(ns_addr: &str) -> Result<(), NameError> {
//! // A server node: registers its context `greeters`, binds an object in it,
//! // and keeps both alive (and restores them after a name server restart).
//! let server = Node::new(Config::default());
//! server.listen("127.0.0.1:0").await.expect("bind");
//! let names = NameClient::connect_as(&server, ns_addr, "greeters").await?;
//! names.bind("greeters/hello", &GreeterRef::new(Hello)).await?;
//!
//! // Any node: a typed reference, class-checked before the first call.
//! let client = Node::new(Config::default());
//! let lookup = NameClient::connect(&client, ns_addr).await?;
//! let greeter: GreeterRef = lookup.resolve("greeters/hello").await?;
//! assert_eq!(greeter.greet("ada".into()).await?, "hello, ada");
//!
//! names.close().await?; // unbinds at once
//! # Ok(()) }
//! ```

pub mod api;
pub mod client;
mod context;
pub mod name;
pub mod server;

pub use api::{Entry, EntryKind, NameContext, NameContextRef, NameError};
pub use client::NameClient;
pub use server::{NameServer, ServerConfig};
