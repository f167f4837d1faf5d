//! The wire contract of the name server: the [`NameContext`] remote trait, its
//! error type [`NameError`] and the values its methods return. Free of server
//! internals, so that any node can depend on it cheaply.
//!
//! Paths are relative to the context called and made of components separated
//! by `/` (see [`crate::name`]). Every binding, context and class offer made
//! through a remote call belongs to the calling node and lives as long as that
//! node's lease (see [`NameContext::renew`]).

use rpc_core::{Capability, ComHandle, RpcError, remote};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Name under which the root context is bound in the name server node's
/// bootstrap registry: `node.lookup::<NameContextRef>(addr, ROOT_NAME)`.
pub const ROOT_NAME: &str = "root";

/// Name of the name server's own context under the root.
pub const NAMESERVER_CONTEXT: &str = "nameserver";

/// A naming context: a directory of objects, child contexts and class offers.
#[remote(name = "nameserver.NameContext")]
pub trait NameContext {
    /// Binds `object` (of any class) under `path`; the last component must be free.
    async fn bind(&self, path: String, object: Capability) -> Result<(), NameError>;

    /// Binds `object` under `path`, replacing an object bound there.
    async fn rebind(&self, path: String, object: Capability) -> Result<(), NameError>;

    /// Removes the object, class or empty context bound under `path`.
    async fn unbind(&self, path: String) -> Result<(), NameError>;

    /// The capability bound under `path`: an object, or a context (the empty
    /// path names this context itself).
    async fn resolve(&self, path: String) -> Result<Capability, NameError>;

    /// The entries of the context at `path` (the empty path: this context),
    /// sorted by name.
    async fn list(&self, path: String) -> Result<Vec<Entry>, NameError>;

    /// Creates a child context under `path` and returns it.
    async fn create_context(&self, path: String) -> Result<NameContextRef, NameError>;

    /// Removes the empty context at `path`.
    async fn destroy_context(&self, path: String) -> Result<(), NameError>;

    /// Records that the node `offer` makes instances of the class named by the
    /// last component of `path`; several nodes may offer one class.
    async fn register_class(&self, path: String, offer: ComHandle) -> Result<(), NameError>;

    /// Every node offering `class` in this context or any context below it.
    async fn find_class(&self, class: String) -> Result<Vec<ComHandle>, NameError>;

    /// Renews the caller's lease; tells whether the name server still holds
    /// the caller's registrations (if not, the caller must make them again).
    async fn renew(&self) -> Result<Lease, NameError>;

    /// Removes everything the caller bound and ends its lease (a clean
    /// shutdown); returns how many entries were removed.
    async fn release(&self) -> Result<u64, NameError>;
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
