//! Errors of the client library, each with the failing layer kept apart.

use dbserver::DbError;
use nameserver::api::NameError;
use rpc_core::RpcError;

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A call to the database failed (including transport failures).
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// A name server operation failed.
    #[error("name server: {0}")]
    Name(#[from] NameError),
    /// The runtime failed outside of a database or naming call.
    #[error("rpc: {0}")]
    Rpc(#[from] RpcError),
    /// A local resource (socket, temporary directory) failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Something the demo expected did not happen.
    #[error("demo check failed: {0}")]
    Check(String),
}
