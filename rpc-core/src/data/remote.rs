//! The remote interface of a node's data manager: what other nodes (clients,
//! the data mover of another node) call. Each node that keeps data binds it
//! as [`BOOTSTRAP_NAME`](crate::data::BOOTSTRAP_NAME) in its bootstrap
//! registry; servers also bind it in the name server (`<context>/data`).

use crate::data::reference::DataRef;
use crate::data::store::DataStore;
use crate::data::{DataError, DataInfo, Persistence};
use crate::ids::DataId;
use crate::remote;
use crate::transfer::Blob;

/// A node's data manager (the seed's DataManager role).
#[remote(name = "rpc.DataManager")]
pub trait DataManager {
    /// Stores the bytes of `data` under a new id with `mode` (pulled in
    /// chunks, straight to disk on a disk store) and returns the reference.
    /// With a `*_return` mode the reference carries a copy of the stored
    /// bytes back ([`DataRef::take_copy`]).
    async fn put(&self, data: Blob, mode: Persistence) -> Result<DataRef, DataError>;

    /// The bytes of `id` as a blob the caller pulls, with their size and
    /// checksum. One use: volatile data is gone after it.
    async fn get(&self, id: DataId) -> Result<(DataInfo, Blob), DataError>;

    /// What this node keeps under `id` (not a use).
    #[idempotent]
    async fn info(&self, id: DataId) -> Result<DataInfo, DataError>;

    /// Everything this node keeps, sorted by id (over TLS, a node other
    /// than an administrator sees only what it stored).
    #[idempotent]
    async fn list(&self) -> Result<Vec<DataInfo>, DataError>;

    /// Deletes `id` here and from the location service; returns what it was.
    /// Over TLS only the node that stored it or an administrator may.
    async fn remove(&self, id: DataId) -> Result<DataInfo, DataError>;

    /// The data mover: moves `id` from this node to `dest` directly (node to
    /// node), then updates the location service. Sticky data fails with
    /// [`DataError::NotMovable`].
    async fn move_to(&self, id: DataId, dest: DataManagerRef) -> Result<DataRef, DataError>;

    /// Stores data moved here by another node's data mover, under its own id
    /// (`stored_by`: the certificate name of the node that stored it first);
    /// the bytes must match `info`'s size and checksum, and the move must be
    /// one the node keeping the data started (the location service knows of
    /// the handover).
    async fn receive(
        &self,
        info: DataInfo,
        stored_by: Option<String>,
        data: Blob,
    ) -> Result<DataInfo, DataError>;
}

/// The data manager as other nodes call it (the object bound as
/// [`BOOTSTRAP_NAME`](crate::data::BOOTSTRAP_NAME)).
pub(crate) struct DataManagerObj {
    pub(crate) store: DataStore,
}

impl DataManager for DataManagerObj {
    async fn put(&self, data: Blob, mode: Persistence) -> Result<DataRef, DataError> {
        let by = crate::caller_identity().and_then(|who| who.name);
        self.store.put_as(data, mode, by).await
    }

    async fn get(&self, id: DataId) -> Result<(DataInfo, Blob), DataError> {
        let h = self.store.use_local(&id)?;
        let blob = h.blob()?;
        Ok((h.info().clone(), blob))
    }

    async fn info(&self, id: DataId) -> Result<DataInfo, DataError> {
        self.store.info(id)
    }

    async fn list(&self) -> Result<Vec<DataInfo>, DataError> {
        Ok(self.store.list_for_caller())
    }

    async fn remove(&self, id: DataId) -> Result<DataInfo, DataError> {
        self.store.authorize(id, "remove")?;
        self.store.remove(id).await
    }

    async fn move_to(&self, id: DataId, dest: DataManagerRef) -> Result<DataRef, DataError> {
        self.store.authorize(id, "move")?;
        self.store.move_to(id, &dest).await
    }

    async fn receive(
        &self,
        info: DataInfo,
        stored_by: Option<String>,
        data: Blob,
    ) -> Result<DataInfo, DataError> {
        self.store.authorize_receive(info.id).await?;
        self.store.receive_as(info, data, stored_by).await
    }
}
