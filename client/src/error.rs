//! Errors of the client library, each with the failing layer kept apart.
//! Every message is one line: the binary prints it as is.

use dbserver::DbError;
use nameserver::api::NameError;
use rpc_core::RpcError;
use std::path::PathBuf;

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
    /// A data manager refused or failed (no such data, not movable, storage).
    #[error("data: {0}")]
    Data(rpc_core::data::DataError),
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
    /// A file given on the command line could not be read.
    #[error("cannot read {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The command needs a name server and none was given.
    #[error("no name server given: pass --nameserver HOST:PORT or set NAMESERVER")]
    NoNameServer,
    /// Bad input found before anything was sent (a column spec, a CSV file).
    #[error("{0}")]
    Input(String),
    /// The command did not finish within `--timeout`.
    #[error("no answer within {secs} s (see --timeout)")]
    Timeout {
        /// The time limit, in seconds.
        secs: u64,
    },
    /// A method called by `call` returned its own error (as JSON).
    #[error("{method} failed: {error}")]
    Remote {
        /// The method.
        method: String,
        /// Its error value, as JSON.
        error: String,
    },
    /// Something the demo or a benchmark worker expected did not happen.
    #[error("check failed: {0}")]
    Check(String),
}

impl From<rpc_core::data::DataError> for ClientError {
    /// A call failure stays [`ClientError::Rpc`].
    fn from(e: rpc_core::data::DataError) -> ClientError {
        match e {
            rpc_core::data::DataError::Rpc(e) => ClientError::Rpc(e),
            other => ClientError::Data(other),
        }
    }
}
