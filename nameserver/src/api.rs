//! The wire contract of the name server: the [`NameContext`] remote trait, its
//! error type [`NameError`] and the values its methods return. Free of server
//! internals, so that any node can depend on it cheaply.
//!
//! Paths are relative to the context called and made of components separated
//! by `/` (see [`crate::name`]). Every binding, context and class offer made
//! through a remote call belongs to the calling node and lives as long as that
//! node's lease (see [`NameContext::renew`]).
//!
//! The tree is also the location service (the LocManager role of DIET's Data
//! Tree Manager): each context may hold data entries, data id -> owner node,
//! recorded by the nodes that keep the data ([`NameContext::add_data`]) and
//! found from any context of the tree ([`NameContext::locate`]). A data id has
//! one location at a time: adding it again, from anywhere, moves the entry.

use rpc_core::{Capability, ComHandle, DataId, NodeId, RpcError, remote};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Name under which the root context is bound in the name server node's
/// bootstrap registry: `node.lookup::<NameContextRef>(addr, ROOT_NAME)`.
pub const ROOT_NAME: &str = "root";

/// Name of the name server's own context under the root.
pub const NAMESERVER_CONTEXT: &str = "nameserver";

/// Most data ids one [`NameContext::add_data`] call may carry, so that one
/// request stays well below the frame limit and holds the tree's lock only
/// briefly; more is refused with
/// [`NameError::TooManyIds`]. [`crate::NameClient::add_data`] splits larger
/// sets into batches of this size.
pub const MAX_DATA_IDS_PER_CALL: usize = 1024;

/// A naming context: a directory of objects, child contexts and class offers.
#[remote(name = "nameserver.NameContext")]
pub trait NameContext {
    /// Binds `object` (of any class) under `path`; the last component must be free.
    async fn bind(&self, path: String, object: Capability) -> Result<(), NameError>;

    /// Binds `object` under `path`, replacing an object bound there.
    async fn rebind(&self, path: String, object: Capability) -> Result<(), NameError>;

    /// Removes the object, class or empty context bound under `path` (a
    /// context holding data entries is not empty).
    async fn unbind(&self, path: String) -> Result<(), NameError>;

    /// The capability bound under `path`: an object, or a context (the empty
    /// path names this context itself).
    async fn resolve(&self, path: String) -> Result<Capability, NameError>;

    /// The entries of the context at `path` (the empty path: this context),
    /// sorted by name.
    async fn list(&self, path: String) -> Result<Vec<Entry>, NameError>;

    /// Creates a child context under `path` and returns it.
    async fn create_context(&self, path: String) -> Result<NameContextRef, NameError>;

    /// Removes the empty context at `path` (no entries, no data entries).
    async fn destroy_context(&self, path: String) -> Result<(), NameError>;

    /// Records that the node `offer` makes instances of the class named by the
    /// last component of `path`; several nodes may offer one class.
    async fn register_class(&self, path: String, offer: ComHandle) -> Result<(), NameError>;

    /// Every node offering `class` in this context or any context below it.
    async fn find_class(&self, class: String) -> Result<Vec<ComHandle>, NameError>;

    /// Renews the caller's lease; tells whether the name server still holds
    /// the caller's registrations (if not, the caller must make them again).
    async fn renew(&self) -> Result<Lease, NameError>;

    /// Removes everything the caller bound (data entries included) and ends
    /// its lease (a clean shutdown); returns how many entries were removed.
    async fn release(&self) -> Result<u64, NameError>;

    /// Records that `owner` keeps the data `ids`, in the context at `path`
    /// (normally the owner's own context; `""`: this context). An id recorded
    /// anywhere else is moved here with its new owner, if the caller may
    /// change that entry or it is being handed over to the caller (see
    /// [`NameContext::hand_over`]): that is how a move updates the
    /// location. The entries belong to the caller and live as long as its
    /// lease. At most [`MAX_DATA_IDS_PER_CALL`] ids per call.
    async fn add_data(
        &self,
        path: String,
        ids: Vec<DataId>,
        owner: ComHandle,
    ) -> Result<(), NameError>;

    /// Removes the entry of `id` if the node it names as owner is the caller
    /// (so that the source of a finished move leaves the destination's entry
    /// alone); tells whether an entry was removed. An unknown id is not an error.
    async fn remove_data(&self, id: DataId) -> Result<bool, NameError>;

    /// Where `id` is recorded, wherever in the tree that is.
    async fn locate(&self, id: DataId) -> Result<DataLocation, NameError>;

    /// Lets node `to` record `ids` in place of their entries: what the data
    /// mover of the node keeping them does before moving them to `to`. Only
    /// that node, the node that recorded them or an administrator may.
    async fn hand_over(&self, ids: Vec<DataId>, to: NodeId) -> Result<(), NameError>;

    /// Every data entry in the context at `path` and the contexts below it,
    /// sorted by id.
    async fn list_data(&self, path: String) -> Result<Vec<DataLocation>, NameError>;
}

/// One entry of a context, as [`NameContext::list`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The entry's name within its context.
    pub name: String,
    /// What is bound there.
    pub kind: EntryKind,
}

/// What a name is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// A remote object (a capability of any class).
    Object,
    /// A child naming context.
    Context,
    /// A class offered by one or more nodes for class-based creation.
    Class,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::Object => "object",
            EntryKind::Context => "context",
            EntryKind::Class => "class",
        })
    }
}

/// One data entry of the location service: which node keeps a piece of data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataLocation {
    /// The data's id.
    pub id: DataId,
    /// The node keeping the data.
    pub owner: ComHandle,
    /// Absolute path of the context holding the entry (`""`: the root).
    pub context: String,
    /// The node the data is being handed over to (a move under way): it
    /// may record the id in place of the owner.
    #[serde(default)]
    pub handover: Option<NodeId>,
}

/// The answer to [`NameContext::renew`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Lease time of the name server, in milliseconds: renew well within it.
    pub lease_ms: u64,
    /// False when the name server holds nothing of the caller (it restarted,
    /// or the lease ran out): the caller must register again.
    pub known: bool,
}

/// Everything that can go wrong with a naming operation, transport failures
/// included. Paths in it are relative to the context called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// A component of the path is not bound.
    #[error("`{component}` not found in {}", context_label(context))]
    NotFound {
        /// The first component that is missing.
        component: String,
        /// Path of the context it was looked up in (empty: the context called).
        context: String,
    },
    /// The name is already bound (to anything, for `bind`; to a context or a
    /// class, for `rebind`).
    #[error("`{path}` is already bound to a {kind}")]
    AlreadyBound {
        /// The path asked for.
        path: String,
        /// What it is bound to.
        kind: EntryKind,
    },
    /// A name or path that breaks the naming rules.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The offending name or path.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A context that still has entries cannot be removed.
    #[error("context `{path}` is not empty")]
    NotEmpty {
        /// The context's path.
        path: String,
    },
    /// A context was expected (in the middle of a path, or for `list`,
    /// `destroy_context`), something else is bound there.
    #[error("`{path}` is a {kind}, not a context")]
    NotAContext {
        /// The path up to the offending component.
        path: String,
        /// What is bound there.
        kind: EntryKind,
    },
    /// `resolve` found a class offer, which has no capability.
    #[error("`{path}` is a class offer, not an object: create an instance instead")]
    NotAnObject {
        /// The path asked for.
        path: String,
    },
    /// The bound object is of another interface than the one expected.
    #[error("wrong class: expected `{expected}`, found `{found}`")]
    WrongClass {
        /// The class the caller expected.
        expected: String,
        /// The class of the bound object.
        found: String,
    },
    /// The bound object implements the expected interface with other method
    /// signatures.
    #[error(
        "incompatible version of class `{class}`: caller has {local:016x}, object has {remote:016x}"
    )]
    VersionMismatch {
        /// Class name.
        class: String,
        /// Version the caller was compiled with.
        local: u64,
        /// Version of the bound object.
        remote: u64,
    },
    /// No reachable node offers the class (see [`NameContext::find_class`]).
    #[error("no node offers class `{class}`")]
    ClassNotOffered {
        /// The class asked for.
        class: String,
    },
    /// The location service has no entry for this data id (never added,
    /// removed, or its owner's lease ran out).
    #[error("no location recorded for data {id}")]
    NoSuchData {
        /// The id asked for.
        id: DataId,
    },
    /// One call carried more data ids than [`MAX_DATA_IDS_PER_CALL`]; split
    /// them into several calls.
    #[error("{count} data ids in one call, at most {max} allowed")]
    TooManyIds {
        /// How many ids the call carried.
        count: u64,
        /// The most allowed ([`MAX_DATA_IDS_PER_CALL`]).
        max: u64,
    },
    /// The caller may not change this entry: it belongs to another node
    /// (only its owner or an administrator may rebind, unbind or destroy it),
    /// or a data id is recorded by a node that has not handed it over.
    #[error("permission denied for `{path}`: {reason}")]
    PermissionDenied {
        /// The path (or data id) refused.
        path: String,
        /// Why.
        reason: String,
    },
    /// The caller owns as many entries as a node may (contexts, bindings,
    /// class offers and data entries together): remove some, or ask the
    /// name server's operator to raise `--max-entries`.
    #[error("quota exceeded: this node owns {have} entries, at most {max} allowed")]
    QuotaExceeded {
        /// Entries the caller owns.
        have: u64,
        /// The most allowed.
        max: u64,
    },
    /// Transport or runtime failure.
    #[error(transparent)]
    Rpc(RpcError),
}

fn context_label(context: &str) -> String {
    if context.is_empty() {
        "this context".to_owned()
    } else {
        format!("context `{context}`")
    }
}

impl NameError {
    /// True for failures of the connection rather than of the naming operation.
    pub fn is_transport(&self) -> bool {
        matches!(self, NameError::Rpc(e) if e.is_transport())
    }

    /// True when the request certainly did not reach the name server.
    pub fn is_not_sent(&self) -> bool {
        matches!(self, NameError::Rpc(e) if e.is_not_sent())
    }
}

impl From<RpcError> for NameError {
    /// Class mismatches found while turning a capability into a typed
    /// reference become their own variants; everything else is `Rpc`.
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::WrongClass { expected, found } => NameError::WrongClass { expected, found },
            RpcError::VersionMismatch {
                class,
                local,
                remote,
            } => NameError::VersionMismatch {
                class,
                local,
                remote,
            },
            other => NameError::Rpc(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_errors_of_the_runtime_get_their_own_variants() {
        let e = NameError::from(RpcError::WrongClass {
            expected: "a".into(),
            found: "b".into(),
        });
        assert!(matches!(e, NameError::WrongClass { .. }));
        let e = NameError::from(RpcError::VersionMismatch {
            class: "a".into(),
            local: 1,
            remote: 2,
        });
        assert!(matches!(e, NameError::VersionMismatch { .. }));
        let e = NameError::from(RpcError::Cancelled);
        assert_eq!(e, NameError::Rpc(RpcError::Cancelled));
    }

    #[test]
    fn messages_name_the_missing_component() {
        let e = NameError::NotFound {
            component: "db".into(),
            context: "dbserver".into(),
        };
        assert_eq!(e.to_string(), "`db` not found in context `dbserver`");
        let e = NameError::NotFound {
            component: "db".into(),
            context: String::new(),
        };
        assert_eq!(e.to_string(), "`db` not found in this context");
    }
}
