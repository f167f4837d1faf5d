//! [`DataHandle`]: the bytes of one piece of data, for one use.

use crate::data::catalogue::Body;
use crate::data::{DataError, DataInfo};
use crate::transfer::Blob;
use std::path::Path;
use std::sync::Arc;

/// The bytes of one piece of data, for one use: a stored item of this node,
/// or a copy pulled from its owner (deleted when the handle is dropped, never
/// registered anywhere).
#[derive(Debug)]
pub struct DataHandle {
    info: DataInfo,
    body: Body,
    /// The bytes are this handle's alone (a copy, or a used volatile item):
    /// its file is removed on drop.
    temporary: bool,
}

impl DataHandle {
    /// A handle on `body`; a `temporary` body is this handle's alone and is
    /// deleted with it.
    pub(crate) fn new(info: DataInfo, body: Body, temporary: bool) -> DataHandle {
        DataHandle {
            info,
            body,
            temporary,
        }
    }

    /// Id, mode, size and checksum of the data.
    pub fn info(&self) -> &DataInfo {
        &self.info
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.info.size
    }

    /// True for empty data.
    pub fn is_empty(&self) -> bool {
        self.info.size == 0
    }

    /// True when these bytes are a one-use copy or a used volatile item,
    /// not an item the node keeps.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// The file holding the bytes (disk stores), valid while the handle lives.
    pub fn path(&self) -> Option<&Path> {
        match &self.body {
            Body::File(p) => Some(p),
            Body::Memory(_) => None,
        }
    }

    /// All bytes, in memory.
    ///
    /// # Errors
    /// [`DataError::Storage`] when the file cannot be read.
    pub async fn read(&self) -> Result<Vec<u8>, DataError> {
        match &self.body {
            Body::File(p) => tokio::fs::read(p)
                .await
                .map_err(|e| DataError::storage(&format!("cannot read {}", p.display()), e)),
            Body::Memory(b) => Ok(b.to_vec()),
        }
    }

    /// The bytes as a [`Blob`], to send on (read from the file chunk by
    /// chunk as the receiver pulls; it stays readable after the handle is gone).
    ///
    /// # Errors
    /// [`DataError::Storage`] when the file cannot be opened.
    pub fn blob(&self) -> Result<Blob, DataError> {
        match &self.body {
            Body::File(p) => Blob::from_file(p)
                .map_err(|e| DataError::storage(&format!("cannot open {}", p.display()), e)),
            Body::Memory(b) => Ok(Blob::from_shared(Arc::clone(b))),
        }
    }
}

impl Drop for DataHandle {
    fn drop(&mut self) {
        // An empty path allocates nothing, unlike an empty `Arc`.
        match std::mem::replace(&mut self.body, Body::File(std::path::PathBuf::new())) {
            Body::File(p) if self.temporary => crate::transfer::unlink_off_runtime(p),
            Body::Memory(b) => crate::transfer::free_shared(b),
            Body::File(_) => {}
        }
    }
}
