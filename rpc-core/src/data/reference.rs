//! [`DataRef`]: what a caller passes instead of the bytes of stored data.

use crate::data::DataInfo;
use crate::ids::{ComHandle, DataId};
use crate::transfer::Blob;
use crate::wire::TransferMeta;
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// A reference to data a data manager keeps: its id, mode, size and checksum,
/// and the node that owned it when the reference was made (a hint: after a
/// move the location service knows the new owner). Cheap to clone; passing
/// it in a call sends a few dozen bytes, never the data.
///
/// A reference to `*_return` data that its owner sends back as the result of
/// a call carries a copy of the bytes: [`DataRef::take_copy`] gets it (once,
/// for all clones), to read or save in chunks. A copy nobody takes is
/// released when the last clone is dropped, without being transferred.
#[derive(Clone)]
pub struct DataRef {
    info: DataInfo,
    owner: ComHandle,
    /// The copy sent back with this reference, until taken; shared by clones.
    copy: Arc<Mutex<Option<Blob>>>,
}

impl DataRef {
    /// A reference to `info`'s data kept by `owner`.
    pub fn new(info: DataInfo, owner: ComHandle) -> DataRef {
        DataRef {
            info,
            owner,
            copy: Arc::default(),
        }
    }

    /// The data's id.
    pub fn id(&self) -> DataId {
        self.info.id
    }

    /// Id, mode, size and checksum.
    pub fn info(&self) -> &DataInfo {
        &self.info
    }

    /// The persistence mode.
    pub fn mode(&self) -> crate::data::Persistence {
        self.info.mode
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.info.size
    }

    /// The node that kept the data when this reference was made.
    pub fn owner(&self) -> &ComHandle {
        &self.owner
    }

    /// The copy of the bytes sent back with this reference (`*_return`
    /// modes), if there is one and no clone took it yet.
    pub fn take_copy(&self) -> Option<Blob> {
        self.copy.lock().take()
    }

    /// True while a copy sent back with this reference waits to be taken.
    pub fn has_copy(&self) -> bool {
        self.copy.lock().is_some()
    }

    /// The copy to announce when this reference is serialized: only by its
    /// owner, in the reply to a call, for a `*_return` mode.
    fn copy_offer(&self) -> Option<TransferMeta> {
        if !self.info.mode.copies_back() || !crate::dispatch::replying() {
            return None;
        }
        let (node, peer) = crate::dispatch::current_node_and_peer().ok()?;
        let peer = peer?;
        if self.owner.node != node.id {
            return None;
        }
        let (info, body) = node.data.get()?.stored_body(&self.info.id)?;
        let source = match body.source() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(id = %info.id, error = %e, "cannot open data to copy it back");
                return None;
            }
        };
        Some(
            node.transfers
                .offer(node.id, peer, source, info.size, Some(info.checksum), None),
        )
    }
}

impl PartialEq for DataRef {
    /// Equal references name the same data at the same owner; a pending copy
    /// does not count.
    fn eq(&self, other: &Self) -> bool {
        self.info == other.info && self.owner == other.owner
    }
}

impl Eq for DataRef {}

impl fmt::Debug for DataRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataRef")
            .field("id", &self.info.id)
            .field("mode", &self.info.mode)
            .field("size", &self.info.size)
            .field("owner", &self.owner)
            .field("copy", &self.has_copy())
            .finish()
    }
}

impl Serialize for DataRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.info, &self.owner, self.copy_offer()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for DataRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (info, owner, copy): (DataInfo, ComHandle, Option<TransferMeta>) =
            Deserialize::deserialize(d)?;
        // A copy is meant for the node decoding the reply; elsewhere (a
        // reference read back from storage, say) it is ignored.
        let copy = copy.and_then(|meta| {
            let (node, _) = crate::dispatch::current_node_and_peer().ok()?;
            (meta.receiver == node.id).then(|| Blob::announced(meta, node))
        });
        Ok(DataRef {
            info,
            owner,
            copy: Arc::new(Mutex::new(copy)),
        })
    }
}
