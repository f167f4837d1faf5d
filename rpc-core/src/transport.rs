//! Tokio I/O: the only code that touches sockets.

pub(crate) mod connection;
