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
//! The tree is also the location service for data kept by nodes' data
//! managers (the LocManager role of DIET's Data Tree Manager): a node records
//! the data ids it keeps in its own context ([`NameClient::add_data`]), and
//! any node finds the owner of an id from anywhere in the tree
//! ([`NameClient::locate`]). Data entries share the lease of the node that
//! recorded them; [`NameClient::locator`] adapts the service to rpc-core's
//! [`rpc_core::data::Locator`].
//!
//! # Layout
//! - [`api`]: the [`api::NameContext`] remote trait, [`api::NameError`] and
//!   the values that cross the wire (entries, data locations); what other
//!   crates depend on.
//! - [`name`]: path parsing and validation (pure).
//! - `context`: the naming tree, its data entries and the leases (pure,
//!   explicit time).
//! - [`server`]: the tree served as remote objects; [`server::start`] (ready
//!   when it returns) and [`server::run`] for the binary and the tests.
//! - [`client`]: the typed client helper, and the [`rpc_core::data::Locator`]
//!   adapter.
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
//! // The location service: the server records data it keeps, anybody finds it.
//! let id = rpc_core::DataId::random();
//! names.add_data(vec![id], server.com_handle()).await?;
//! let found = lookup.locate(id).await?;
//! assert_eq!((found.owner, found.context.as_str()), (server.com_handle(), "greeters"));
//!
//! names.close().await?; // unbinds at once
//! # Ok(()) }
//! ```

pub mod api;
pub mod client;
mod context;
pub mod name;
pub mod server;

pub use api::{DataLocation, Entry, EntryKind, NameContext, NameContextRef, NameError};
pub use client::NameClient;
pub use server::{NameServer, ServerConfig};
