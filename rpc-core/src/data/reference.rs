//! [`DataRef`]: what a caller passes instead of the bytes of stored data.

use crate::data::DataInfo;
use crate::ids::{ComHandle, DataId};
use crate::transfer::Blob;
use crate::transfer::blob::WireBlob;
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
    /// On the owner, for `*_return` data: makes the blob of the copy to send
    /// back when this reference is the result of a call.
    source: Option<CopySource>,
}

/// Makes the blob of a copy to send back (the owner's stored bytes), or
/// `None` once the data is gone.
pub(crate) type CopySource = Arc<dyn Fn() -> Option<Blob> + Send + Sync>;

impl DataRef {
    /// A reference to `info`'s data kept by `owner`.
    pub fn new(info: DataInfo, owner: ComHandle) -> DataRef {
        DataRef {
            info,
            owner,
            copy: Arc::default(),
            source: None,
        }
    }

    /// A reference made by the owner of `*_return` data, whose copy back
    /// comes from `source`.
    pub(crate) fn with_copy_source(
        info: DataInfo,
        owner: ComHandle,
        source: CopySource,
    ) -> DataRef {
        DataRef {
            source: Some(source),
            ..DataRef::new(info, owner)
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

    /// The copy to send when this reference is serialized: only by its
    /// owner, in the reply to a call, for a `*_return` mode.
    fn copy_to_send(&self) -> Option<Blob> {
        if !self.info.mode.copies_back() || !crate::dispatch::codec::replying() {
            return None;
        }
        self.source.as_ref().and_then(|make| make())
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
        (&self.info, &self.owner, self.copy_to_send()).serialize(s)
    }
}

impl<'de> Deserialize<'de> for DataRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (info, owner, copy): (DataInfo, ComHandle, Option<WireBlob>) =
            Deserialize::deserialize(d)?;
        // A copy is meant for the node decoding the reply; elsewhere (a
        // reference read back from storage, say) it is ignored.
        let copy = copy.and_then(WireBlob::here);
        Ok(DataRef {
            info,
            owner,
            copy: Arc::new(Mutex::new(copy)),
            source: None,
        })
    }
}
