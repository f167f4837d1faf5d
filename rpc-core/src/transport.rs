//! The only code that touches sockets: connections over any byte stream,
//! the handshake, accepting and dialing.
//!
//! - `address`: the address a node advertises (never an unspecified one).
//! - `stream`: the seam between a connection and its byte stream (TCP's
//!   non-blocking write path, any other stream through a lock).
//! - `handshake`: the `hello` exchange.
//! - `connection`: one multiplexed connection: framing, the write path,
//!   the reader, calls waiting for answers, the peer's calls running here.
//! - `peers`: a node's open connections, dialing by address.
//! - `listener`: the accept loop.
//! - `tls`: mutual TLS over any stream, and why a handshake was refused.

pub(crate) mod address;
pub(crate) mod connection;
pub(crate) mod handshake;
pub(crate) mod listener;
pub(crate) mod peers;
pub(crate) mod stream;
pub(crate) mod tls;
