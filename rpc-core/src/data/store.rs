//! The DataManager role on one node: [`DataStore`] stores data under ids
//! (pulled straight to disk by a disk store), hands out one use of it (its
//! own item, or a copy pulled from the owner), removes and moves it, and
//! keeps the location service told. It attaches to its node through the
//! node's public API (an extension), and is bound as [`BOOTSTRAP_NAME`] in
//! the node's bootstrap registry.
//!
//! Items never change once stored (a computation that produces new bytes
//! stores them under a new id), so readers need no lock beyond the
//! catalogue's: a file removed while it is being sent stays readable through
//! the open handle.

use crate::data::handle::DataHandle;
use crate::data::reference::{CopySource, DataRef};
use crate::data::remote::{DataManager, DataManagerObj, DataManagerRef};
use crate::data::{DataError, DataInfo, Locator, Persistence};
use crate::error::RpcError;
use crate::ids::{ComHandle, DataId};
use crate::node::Node;
use crate::transfer::Blob;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Name of the data manager in every node's bootstrap registry:
/// `node.lookup::<DataManagerRef>(addr, BOOTSTRAP_NAME)`.
pub const BOOTSTRAP_NAME: &str = "data";

/// Default time a volatile item waits for its one use before it is dropped.
pub const VOLATILE_TTL: Duration = Duration::from_secs(600);

/// Where a data manager keeps its data, and for how long unused volatile data.
#[derive(Debug, Clone)]
pub struct DataConfig {
    /// Directory of the store (created if missing); `None` keeps everything
    /// in memory, and nothing survives the process.
    pub dir: Option<PathBuf>,
    /// A volatile item nobody used within this time is dropped.
    pub volatile_ttl: Duration,
}

impl DataConfig {
    /// A store on disk under `dir`.
    pub fn on_disk(dir: impl Into<PathBuf>) -> DataConfig {
        DataConfig {
            dir: Some(dir.into()),
            volatile_ttl: VOLATILE_TTL,
        }
    }

    /// A store in memory only.
    pub fn in_memory() -> DataConfig {
        DataConfig {
            dir: None,
            volatile_ttl: VOLATILE_TTL,
        }
    }
}

/// The data manager of the node `owner` names, looked up by `node` in that
/// node's bootstrap registry.
///
/// # Errors
/// [`RpcError::Unreachable`] when `owner` does not listen; the lookup's errors.
pub async fn manager_at(node: &Node, owner: &ComHandle) -> Result<DataManagerRef, RpcError> {
    let Some(addr) = &owner.addr else {
        return Err(RpcError::Unreachable {
            peer: format!("{:?}", owner.node),
            reason: "the node keeping the data does not listen".into(),
        });
    };
    node.lookup(addr, BOOTSTRAP_NAME).await
}

/// A node's data manager, as its own code uses it: store data, use it (or a
/// copy of another node's), remove it, move it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DataStore {
    inner: Arc<DataInner>,
}

mod local;

use local::DataInner;

impl DataStore {
    /// Starts the data manager of `node` over `config` (a directory, or
    /// memory): loads what a disk store kept, attaches it to the node, and
    /// binds the remote data manager as [`BOOTSTRAP_NAME`] in the node's
    /// bootstrap registry. Call it after the node listens, so that
    /// references carry its address.
    ///
    /// # Errors
    /// [`DataError::Storage`] when the store cannot be opened, or when the
    /// node has a data manager already.
    pub async fn enable(node: &Node, config: DataConfig) -> Result<DataStore, DataError> {
        let already = || DataError::storage("cannot enable a data manager", "the node has one");
        if node.extension::<DataInner>().is_some() {
            return Err(already());
        }
        let inner = DataInner::open(node, config).await?;
        node.attach(Arc::clone(&inner)).map_err(|_| already())?;
        let store = DataStore { inner };
        let obj = DataManagerRef::new(DataManagerObj {
            store: store.clone(),
        });
        let cap = node.bind_bootstrap(BOOTSTRAP_NAME, &obj)?;
        let _ = store.inner.manager.set(cap);
        Ok(store)
    }

    /// The data manager of `node`.
    ///
    /// # Errors
    /// [`DataError::NoDataManager`] before [`DataStore::enable`].
    pub fn of(node: &Node) -> Result<DataStore, DataError> {
        node.extension::<DataInner>()
            .map(|inner| DataStore { inner })
            .ok_or(DataError::NoDataManager)
    }

    /// Stores `bytes` under a new id with `mode`.
    ///
    /// # Errors
    /// [`DataError::Storage`] when the store cannot write.
    pub async fn put_bytes(&self, bytes: Vec<u8>, mode: Persistence) -> Result<DataRef, DataError> {
        self.put_blob(Blob::from_bytes(bytes), mode).await
    }

    /// Stores the file at `path` (copied in chunks) under a new id with `mode`.
    ///
    /// # Errors
    /// [`DataError::Storage`] when the file cannot be read or the store cannot write.
    pub async fn put_file(
        &self,
        path: impl AsRef<Path>,
        mode: Persistence,
    ) -> Result<DataRef, DataError> {
        let p = path.as_ref();
        let blob = Blob::from_file(p)
            .map_err(|e| DataError::storage(&format!("cannot read {}", p.display()), e))?;
        self.put_blob(blob, mode).await
    }

    /// Stores the bytes of `blob` under a new id with `mode`; a remote blob
    /// is pulled in chunks, straight into the store's file.
    ///
    /// # Errors
    /// [`RpcError::TransferFailed`] when the pull fails; [`DataError::Storage`].
    pub async fn put_blob(&self, blob: Blob, mode: Persistence) -> Result<DataRef, DataError> {
        self.put_as(blob, mode, None).await
    }

    /// [`DataStore::put_blob`] for the node whose certificate name is
    /// `stored_by` (it may remove and move the data).
    pub(crate) async fn put_as(
        &self,
        blob: Blob,
        mode: Persistence,
        stored_by: Option<String>,
    ) -> Result<DataRef, DataError> {
        let info = self
            .inner
            .store_blob(DataId::random(), mode, blob, None, stored_by)
            .await?;
        self.reference(info)
    }

    /// A reference to `info`'s data, owned by this node. A reference to
    /// `*_return` data carries a copy of the bytes when it is sent as the
    /// result of a call.
    fn reference(&self, info: DataInfo) -> Result<DataRef, DataError> {
        let owner = self.inner.node()?.com_handle();
        if !info.mode.copies_back() {
            return Ok(DataRef::new(info, owner));
        }
        let store = Arc::downgrade(&self.inner);
        let id = info.id;
        let copy: CopySource = Arc::new(move || Weak::upgrade(&store)?.stored_blob(&id));
        Ok(DataRef::with_copy_source(info, owner, copy))
    }

    /// What this node keeps under `id`.
    ///
    /// # Errors
    /// [`DataError::NoSuchData`].
    pub fn info(&self, id: DataId) -> Result<DataInfo, DataError> {
        self.inner.info(&id)
    }

    /// A reference to data this node keeps.
    ///
    /// # Errors
    /// [`DataError::NoSuchData`].
    pub fn reference_to(&self, id: DataId) -> Result<DataRef, DataError> {
        self.reference(self.inner.info(&id)?)
    }

    /// One use of local item `id` (what the remote `get` hands out).
    pub(crate) fn use_local(&self, id: &DataId) -> Result<DataHandle, DataError> {
        self.inner.use_local(id)
    }

    /// Everything this node keeps, sorted by id.
    pub fn list(&self) -> Vec<DataInfo> {
        self.inner.list()
    }

    /// True when this node keeps `id`.
    pub fn contains(&self, id: DataId) -> bool {
        self.inner.info(&id).is_ok()
    }

    /// The bytes of `r` for one use: this node's item, or else a copy pulled
    /// from the owner `r` names, or from the owner the location service
    /// knows (the data moved). A copy is not kept, not registered, and
    /// deleted with the handle; a volatile item is used up.
    ///
    /// # Errors
    /// [`DataError::NoSuchData`] when no owner has it; transport and
    /// [`DataError::Storage`] errors (a copy whose checksum does not match).
    pub async fn fetch(&self, r: &DataRef) -> Result<DataHandle, DataError> {
        self.fetch_from(r.id(), Some(r.owner())).await
    }

    /// [`DataStore::fetch`] by id alone: this node, or the owner the location
    /// service knows.
    ///
    /// # Errors
    /// As [`DataStore::fetch`].
    pub async fn fetch_id(&self, id: DataId) -> Result<DataHandle, DataError> {
        self.fetch_from(id, None).await
    }

    async fn fetch_from(
        &self,
        id: DataId,
        hint: Option<&ComHandle>,
    ) -> Result<DataHandle, DataError> {
        match self.inner.use_local(&id) {
            Err(DataError::NoSuchData { .. }) => {}
            found => return found,
        }
        let me = self.inner.node()?.id();
        let mut tried: Vec<ComHandle> = Vec::new();
        let mut last = DataError::NoSuchData { id };
        if let Some(h) = hint.filter(|h| h.node != me) {
            match self.inner.pull_copy(id, h).await {
                Ok(copy) => return Ok(copy),
                Err(e) => {
                    tracing::debug!(%id, owner = ?h, error = %e, "the named owner did not have the data");
                    tried.push(h.clone());
                    last = e;
                }
            }
        }
        // The data moved, or only its id is known: ask the location service.
        if let Some(owner) = self.inner.locate_remote(id).await?
            && owner.node != me
            && !tried.contains(&owner)
        {
            return self.inner.pull_copy(id, &owner).await;
        }
        Err(last)
    }

    /// The node keeping `id`: this one, or the one the location service knows.
    ///
    /// # Errors
    /// [`DataError::NoSuchData`] when neither knows it; location service errors.
    pub async fn locate(&self, id: DataId) -> Result<ComHandle, DataError> {
        if self.contains(id) {
            return Ok(self.inner.node()?.com_handle());
        }
        self.inner
            .locate_remote(id)
            .await?
            .ok_or(DataError::NoSuchData { id })
    }

    /// What is known of `id` and which node keeps it: this one, or the owner
    /// the location service knows (asked for the data's info). Not a use.
    ///
    /// # Errors
    /// As [`DataStore::locate`]; the owner's errors.
    pub async fn describe(&self, id: DataId) -> Result<(DataInfo, ComHandle), DataError> {
        if let Ok(info) = self.inner.info(&id) {
            return Ok((info, self.inner.node()?.com_handle()));
        }
        let owner = self.locate(id).await?;
        let dm = manager_at(&self.inner.node()?, &owner).await?;
        Ok((dm.info(id).await?, owner))
    }

    /// Removes `id` from this node (and from the location service). Its
    /// file is set aside at once and unlinked off the caller's time.
    ///
    /// # Errors
    /// [`DataError::NoSuchData`]; [`DataError::Storage`].
    pub async fn remove(&self, id: DataId) -> Result<DataInfo, DataError> {
        self.inner.remove(id).await
    }

    /// The data mover: sends `id` to the data manager `dest` directly (it
    /// pulls the bytes from here in chunks and checks them), then removes it
    /// here. The destination registers it with the location service before
    /// this node unregisters it, so a lookup always finds a node that has
    /// it. Returns the reference to the moved data.
    ///
    /// # Errors
    /// [`DataError::NotMovable`] for sticky or volatile data (nothing moves);
    /// [`DataError::NoSuchData`]; the destination's errors (the data then
    /// stays here).
    pub async fn move_to(&self, id: DataId, dest: &DataManagerRef) -> Result<DataRef, DataError> {
        let info = self.inner.info(&id)?;
        if !info.mode.is_movable() {
            return Err(DataError::NotMovable {
                id,
                mode: info.mode,
            });
        }
        let Some(cap) = dest.capability() else {
            // The destination is this node's own data manager.
            return self.reference(info);
        };
        let dest_home = cap.home.clone();
        // The location service lets the destination take the entry over.
        let locator = self.inner.locator.read().clone();
        if let Some(l) = locator {
            l.hand_over(vec![id], dest_home.node).await?;
        }
        let handle = self.inner.use_local(&id)?;
        let stored_by = self.inner.stored_by(&id)?;
        let received = dest
            .receive(info.clone(), stored_by, handle.blob()?)
            .await?;
        if received.id != id || received.size != info.size || received.checksum != info.checksum {
            return Err(DataError::Rpc(RpcError::protocol(format!(
                "the destination stored {received:?} for {info:?}"
            ))));
        }
        drop(handle);
        match self.inner.remove(id).await {
            Ok(_) | Err(DataError::NoSuchData { .. }) => {}
            Err(e) => tracing::warn!(%id, error = %e, "moved data could not be removed here"),
        }
        tracing::info!(%id, to = ?dest_home, size = info.size, "data moved");
        Ok(DataRef::new(info, dest_home))
    }

    /// Stores data another node's mover sends here under its own id.
    /// Receiving the same data again is not an error (a retried move).
    ///
    /// # Errors
    /// [`DataError::NotMovable`] for a mode that may not move;
    /// [`DataError::Storage`] when other bytes are kept under that id, or the
    /// bytes do not match `info`.
    pub async fn receive(&self, info: DataInfo, blob: Blob) -> Result<DataInfo, DataError> {
        self.receive_as(info, blob, None).await
    }

    /// [`DataStore::receive`] of data stored by `stored_by`.
    pub(crate) async fn receive_as(
        &self,
        info: DataInfo,
        blob: Blob,
        stored_by: Option<String>,
    ) -> Result<DataInfo, DataError> {
        if !info.mode.is_movable() {
            return Err(DataError::NotMovable {
                id: info.id,
                mode: info.mode,
            });
        }
        if let Ok(have) = self.inner.info(&info.id) {
            if have == info {
                return Ok(have);
            }
            return Err(DataError::storage(
                &format!("cannot receive data {}", info.id),
                "this node keeps other bytes under that id",
            ));
        }
        self.inner
            .store_blob(info.id, info.mode, blob, Some(&info), stored_by)
            .await
    }

    /// Refuses the caller of the current request a change (`what`: remove,
    /// move) of `id` unless it is this node, the node that stored the data,
    /// or an administrator. Plaintext callers prove no name: a plaintext
    /// cluster trusts its network (see the README), and is not checked.
    pub(crate) fn authorize(&self, id: DataId, what: &str) -> Result<(), DataError> {
        let Some(who) = crate::caller_identity() else {
            return Ok(());
        };
        if who.name.is_none() || who.admin || who.node == self.inner.node()?.id() {
            return Ok(());
        }
        let stored_by = self.inner.stored_by(&id)?;
        if stored_by.is_some() && stored_by == who.name {
            return Ok(());
        }
        Err(DataError::PermissionDenied {
            id: Some(id),
            reason: format!(
                "only the node that stored it ({}), the node keeping it or an administrator may {what} it",
                stored_by.as_deref().unwrap_or("the node keeping it")
            ),
        })
    }

    /// Refuses to receive `id` from the caller of the current request unless
    /// it is a move the owner started: the location service knows the
    /// caller as the node keeping `id` and hands it over to this node (or the
    /// caller is an administrator, or a plaintext peer, see
    /// [`DataStore::authorize`]).
    pub(crate) async fn authorize_receive(&self, id: DataId) -> Result<(), DataError> {
        let Some(who) = crate::caller_identity() else {
            return Ok(());
        };
        if who.name.is_none() || who.admin {
            return Ok(());
        }
        let denied = |reason: &str| DataError::PermissionDenied {
            id: Some(id),
            reason: reason.to_owned(),
        };
        let locator = self.inner.locator.read().clone();
        let Some(locator) = locator else {
            return Err(denied(
                "this node has no location service to check the move against",
            ));
        };
        let me = self.inner.node()?.id();
        match locator.handed_over(id).await? {
            Some((keeper, Some(to))) if keeper.node == who.node && to == me => Ok(()),
            _ => Err(denied(
                "not a move started by the node keeping it (the location service knows no handover of it to this node)",
            )),
        }
    }

    /// What this node keeps, as the caller of the current request may see
    /// it: everything for this node, an administrator or a plaintext peer;
    /// what it stored for any other authenticated node.
    pub(crate) fn list_for_caller(&self) -> Vec<DataInfo> {
        match crate::caller_identity() {
            Some(who) if who.name.is_some() && !who.admin => {
                self.inner.list_stored_by(who.name.as_deref())
            }
            _ => self.list(),
        }
    }

    /// Makes `locator` the location service of this data manager and
    /// registers every stored item with it (after a restart, say).
    pub async fn set_locator(&self, locator: Arc<dyn Locator>) {
        *self.inner.locator.write() = Some(locator);
        let ids: Vec<DataId> = self
            .list()
            .into_iter()
            .filter(|i| i.mode.is_stored())
            .map(|i| i.id)
            .collect();
        if !ids.is_empty() {
            self.inner.tell_added(ids).await;
        }
    }

    /// This data manager as a (local) reference, to hand to other nodes.
    ///
    /// # Errors
    /// [`RpcError::Shutdown`] once the node is gone.
    pub fn manager(&self) -> Result<DataManagerRef, DataError> {
        let node = self.inner.node()?;
        let cap = self
            .inner
            .manager
            .get()
            .cloned()
            .ok_or(DataError::NoDataManager)?;
        Ok(node.resolve::<DataManagerRef>(cap)?)
    }

    /// The directory of a disk store.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.config.dir.as_deref()
    }
}
