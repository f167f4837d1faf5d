//! The data manager (after DIET's Data Tree Manager): data that stays on a
//! node under a [`DataId`], so that callers pass the id instead of sending
//! the bytes again.
//!
//! - [`Persistence`] says how long data lives and whether it may move.
//! - A [`Locator`] is the location service (the LocManager role): data id ->
//!   owner node. The name server provides one; rpc-core only calls it.
//!
//! See `docs/data.md` (included below) for the whole design.
#![doc = include_str!("docs/data.md")]

mod catalogue;
mod handle;
mod reference;
mod remote;
mod store;

pub use handle::DataHandle;
pub use reference::DataRef;
pub use remote::{DataManager, DataManagerClientProxy, DataManagerRef, DataManagerServerProxy};
pub use store::{BOOTSTRAP_NAME, DataConfig, DataStore, VOLATILE_TTL, manager_at};

use crate::dispatch::BoxFuture;
use crate::error::RpcError;
use crate::ids::{ComHandle, DataId, NodeId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What can go wrong with data kept under an id, besides the call that
/// carried the request ([`DataError::Rpc`]). Plain data (serde): the data
/// manager's remote methods return it, so callers match on the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// No data manager keeps data under this id (never stored, deleted, a
    /// volatile value already used, or not found by the location service).
    #[error("no such data {id}")]
    NoSuchData {
        /// The id asked for.
        id: DataId,
    },
    /// Sticky data stays on the node that stores it: it cannot be moved.
    #[error("data {id} is {mode} and cannot be moved")]
    NotMovable {
        /// The data asked for.
        id: DataId,
        /// Its persistence mode (sticky or sticky_return).
        mode: Persistence,
    },
    /// The data manager's storage failed (disk full, unreadable file, a
    /// damaged catalogue entry, a checksum that does not match).
    #[error("data storage failed: {reason}")]
    Storage {
        /// What failed.
        reason: String,
    },
    /// The caller may not do this to this data: only the node that stored
    /// it, the node keeping it or an administrator may remove or move it,
    /// and only a move its owner handed over may be received.
    #[error("permission denied{}: {reason}", id.map(|i| format!(" for data {i}")).unwrap_or_default())]
    PermissionDenied {
        /// The data refused, when one is concerned.
        id: Option<DataId>,
        /// Why.
        reason: String,
    },
    /// The node has no data manager (see [`DataStore::enable`]).
    #[error("this node keeps no data (no data manager enabled)")]
    NoDataManager,
    /// The call itself failed: transport, deadline, transfer.
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

impl DataError {
    /// A storage failure: `what` failed because of `e`.
    pub(crate) fn storage(what: &str, e: impl fmt::Display) -> DataError {
        DataError::Storage {
            reason: format!("{what}: {e}"),
        }
    }
}

impl From<DataError> for RpcError {
    /// Where a data error crosses a call whose error type is [`RpcError`]:
    /// a call failure stays itself, a data failure becomes
    /// [`RpcError::Remote`] with its message (use [`DataError`] as the
    /// method's error type to keep the kind).
    fn from(e: DataError) -> RpcError {
        match e {
            DataError::Rpc(e) => e,
            other => RpcError::Remote {
                message: other.to_string(),
            },
        }
    }
}

/// How long data lives on the node that stores it, whether it may be moved
/// to another node, and whether the caller gets a copy back (the seed's
/// persistence modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Persistence {
    /// Used by one call (one read), then dropped; never registered, never
    /// kept across a restart.
    #[serde(rename = "volatile")]
    Volatile,
    /// Stored on the node, movable.
    #[serde(rename = "persistent")]
    Persistent,
    /// Stored on the node, movable, and copied back to the caller.
    #[serde(rename = "persistent_return")]
    PersistentReturn,
    /// Stored on the node, not movable.
    #[serde(rename = "sticky")]
    Sticky,
    /// Stored on the node, not movable, and copied back to the caller.
    #[serde(rename = "sticky_return")]
    StickyReturn,
}

impl Persistence {
    /// Every mode, in the order of the seed's table (volatile first).
    pub const ALL: [Persistence; 5] = [
        Persistence::Volatile,
        Persistence::Persistent,
        Persistence::PersistentReturn,
        Persistence::Sticky,
        Persistence::StickyReturn,
    ];

    /// True when the data is kept after its first use (and across restarts).
    pub fn is_stored(self) -> bool {
        self != Persistence::Volatile
    }

    /// True when the data mover may move the data to another node.
    pub fn is_movable(self) -> bool {
        matches!(
            self,
            Persistence::Persistent | Persistence::PersistentReturn
        )
    }

    /// True when the caller gets a copy of the bytes back with the reference.
    pub fn copies_back(self) -> bool {
        matches!(
            self,
            Persistence::PersistentReturn | Persistence::StickyReturn
        )
    }

    /// The name used on the command line and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Persistence::Volatile => "volatile",
            Persistence::Persistent => "persistent",
            Persistence::PersistentReturn => "persistent_return",
            Persistence::Sticky => "sticky",
            Persistence::StickyReturn => "sticky_return",
        }
    }
}

impl fmt::Display for Persistence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Persistence {
    type Err = String;

    /// Parses a mode name, case-insensitively, with `-` or `_` (`sticky-return`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let want = s.trim().to_ascii_lowercase().replace('-', "_");
        Persistence::ALL
            .into_iter()
            .find(|m| m.name() == want)
            .ok_or_else(|| {
                format!(
                    "unknown persistence mode `{s}` (one of: {})",
                    Persistence::ALL.map(Persistence::name).join(", ")
                )
            })
    }
}

/// What a data manager knows of one piece of data: identity, mode, size and
/// checksum. Plain data; it never carries the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataInfo {
    /// The data's id.
    pub id: DataId,
    /// Its persistence mode.
    pub mode: Persistence,
    /// Its size in bytes.
    pub size: u64,
    /// CRC-32 of all its bytes, computed when it was stored.
    pub checksum: u32,
}

/// The location service as the data manager uses it (the seed's LocManager
/// role): it learns where data is added and removed, and finds the owner of
/// an id from anywhere. The name server implements it over its tree of
/// contexts (`nameserver::NameClient::locator`).
pub trait Locator: Send + Sync + 'static {
    /// `owner` now keeps `ids` (stored there, or moved there).
    fn add(&self, ids: Vec<DataId>, owner: ComHandle) -> BoxFuture<'_, Result<(), RpcError>>;

    /// The calling node no longer keeps `id`. An entry that another node
    /// has taken over since (the data moved there) stays.
    fn remove(&self, id: DataId) -> BoxFuture<'_, Result<(), RpcError>>;

    /// The node keeping `id`, or `None` when no node registered it.
    fn locate(&self, id: DataId) -> BoxFuture<'_, Result<Option<ComHandle>, RpcError>>;

    /// Lets node `to` register `ids` in place of the calling node (its
    /// data mover is about to move them there). A location service without
    /// authority over its entries does nothing.
    fn hand_over(&self, ids: Vec<DataId>, to: NodeId) -> BoxFuture<'_, Result<(), RpcError>> {
        let _ = (ids, to);
        Box::pin(async { Ok(()) })
    }

    /// The node keeping `id` and the node it is being handed over to, if
    /// any; `None` when no node registered it. A location service without
    /// handovers answers with [`Locator::locate`] and no handover.
    fn handed_over(
        &self,
        id: DataId,
    ) -> BoxFuture<'_, Result<Option<(ComHandle, Option<NodeId>)>, RpcError>> {
        Box::pin(async move { Ok(self.locate(id).await?.map(|h| (h, None))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_have_the_seeds_meaning() {
        use Persistence::*;
        assert!(!Volatile.is_stored() && !Volatile.is_movable() && !Volatile.copies_back());
        assert!(Persistent.is_stored() && Persistent.is_movable() && !Persistent.copies_back());
        assert!(PersistentReturn.is_stored() && PersistentReturn.is_movable());
        assert!(PersistentReturn.copies_back());
        assert!(Sticky.is_stored() && !Sticky.is_movable() && !Sticky.copies_back());
        assert!(StickyReturn.is_stored() && !StickyReturn.is_movable());
        assert!(StickyReturn.copies_back());
    }

    #[test]
    fn modes_parse_from_their_names() {
        for m in Persistence::ALL {
            assert_eq!(m.name().parse::<Persistence>().unwrap(), m);
        }
        assert_eq!(
            "Sticky-Return".parse::<Persistence>().unwrap(),
            Persistence::StickyReturn
        );
        let e = "forever".parse::<Persistence>().unwrap_err();
        assert!(e.contains("volatile, persistent"), "{e}");
    }

    #[test]
    fn modes_keep_their_wire_names() {
        let mut buf = Vec::new();
        ciborium::into_writer(&Persistence::StickyReturn, &mut buf).unwrap();
        let back: String = ciborium::from_reader(&buf[..]).unwrap();
        assert_eq!(back, "sticky_return");
    }
}
