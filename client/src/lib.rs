//! The client side of the demo database: what the `client` binary runs.
//!
//! # Layout
//! - [`demo`]: the all-in-one walk-through, with an embedded name server and
//!   database server on loopback.
//! - [`error`]: [`ClientError`], the one error type of the client.

pub mod demo;
pub mod error;

pub use error::ClientError;
