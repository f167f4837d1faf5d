//! The one error type of the runtime. Its variants follow what a caller can do
//! about a failure; it is plain data (serde), so it also crosses the wire
//! unchanged and can be a remote method's own error type.

use crate::ids::ObjectId;
use serde::{Deserialize, Serialize};

/// Result alias with [`RpcError`].
pub type Result<T, E = RpcError> = std::result::Result<T, E>;

/// Everything that can go wrong with a remote call, other than the method's own
/// application error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The request never left this node (no connection could be made): safe to retry.
    #[error("peer {peer} unreachable, request not sent: {reason}")]
    Unreachable {
        /// Address or node id of the peer.
        peer: String,
        /// What failed.
        reason: String,
    },
    /// The connection broke after the request was sent: the call may or may not
    /// have executed.
    #[error("connection to {peer} lost, the call may have executed: {reason}")]
    ConnectionLost {
        /// Address or node id of the peer.
        peer: String,
        /// What failed.
        reason: String,
    },
    /// The call's deadline passed before an answer arrived; the server was told to stop.
    #[error("deadline of {after_ms} ms exceeded calling `{method}`")]
    DeadlineExceeded {
        /// Method that was called.
        method: String,
        /// The deadline that passed, in milliseconds.
        after_ms: u64,
    },
    /// The call was cancelled by its caller.
    #[error("call cancelled")]
    Cancelled,
    /// The target object does not exist (never did, or no longer does).
    #[error("no such object {object}")]
    NoSuchObject {
        /// The id the caller asked for.
        object: ObjectId,
    },
    /// No object is bound under this name in the node's bootstrap registry.
    #[error("nothing bound under `{name}`")]
    NotBound {
        /// The name looked up.
        name: String,
    },
    /// The object's class has no method of that name.
    #[error("class `{class}` has no method `{method}`")]
    NoSuchMethod {
        /// Class of the target object.
        class: String,
        /// The unknown method name.
        method: String,
    },
    /// The arguments did not fit the method: wrong count or a value of the wrong type.
    #[error("bad arguments for `{method}`: {reason}")]
    BadArguments {
        /// Method that was called.
        method: String,
        /// Which argument and what was wrong with it.
        reason: String,
    },
    /// Caller and object speak different versions of the same class.
    #[error(
        "version mismatch for class `{class}`: caller has {local:016x}, object has {remote:016x}"
    )]
    VersionMismatch {
        /// Class name.
        class: String,
        /// Version the caller was compiled with.
        local: u64,
        /// Version of the object.
        remote: u64,
    },
    /// A reference of one class was used where another class was expected.
    #[error("wrong class: expected `{expected}`, found `{found}`")]
    WrongClass {
        /// The class the caller expected.
        expected: String,
        /// The class the reference names.
        found: String,
    },
    /// The peer broke the protocol (malformed or oversized frame, bad handshake);
    /// the connection is closed.
    #[error("protocol error: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// The peer refused the call because it has too much work: back off and retry.
    #[error("peer overloaded: {reason}")]
    Overloaded {
        /// Which limit was hit.
        reason: String,
    },
    /// A value is over a size this node accepts (a frame, a value pulled
    /// into memory): send it another way (a file-backed `Blob`) or smaller.
    #[error("{what} of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in force, in bytes.
        limit: u64,
    },
    /// A quota of the node would be exceeded (disk space kept free, entries
    /// per node): free some, or raise the limit.
    #[error("quota exceeded: {reason}")]
    QuotaExceeded {
        /// Which quota, and how much is in use.
        reason: String,
    },
    /// The remote method failed without a typed error (it panicked, say).
    #[error("remote failure: {message}")]
    Remote {
        /// What the remote side reported.
        message: String,
    },
    /// A value could not be encoded for the wire.
    #[error("could not encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A reply could not be decoded into the expected type.
    #[error("could not decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A large value could not be moved (checksum mismatch, sender gone,
    /// refused chunk, over the size limit, write failure).
    #[error("transfer failed: {reason}")]
    TransferFailed {
        /// What went wrong.
        reason: String,
    },
    /// The local node is shutting down and takes no new calls.
    #[error("node is shutting down")]
    Shutdown,
}

impl RpcError {
    /// True when the request certainly did not run, so that retrying is safe.
    pub fn is_not_sent(&self) -> bool {
        matches!(
            self,
            RpcError::Unreachable { .. } | RpcError::Overloaded { .. }
        )
    }

    /// True for failures of the connection rather than of the call.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            RpcError::Unreachable { .. } | RpcError::ConnectionLost { .. }
        )
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        RpcError::Protocol {
            reason: reason.into(),
        }
    }
}
