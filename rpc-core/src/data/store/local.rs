//! What one node keeps: the catalogue behind its lock, storing a value
//! (pulled straight into `tmp/`, then placed), removing it, one use of it,
//! one-use copies pulled from another owner, and the notices to the
//! location service.

use super::{DataConfig, manager_at};
use crate::data::catalogue::{self, Body, Catalogue, Item, Layout};
use crate::data::handle::DataHandle;
use crate::data::remote::DataManager;
use crate::data::{DataError, DataInfo, Locator, Persistence};
use crate::error::RpcError;
use crate::ids::{Capability, ComHandle, DataId};
use crate::node::{Extension, Node, NodeStats, WeakNode};
use crate::transfer::Blob;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
// tokio's clock, so that tests can run on a paused clock.
use tokio::time::Instant;

/// State of one node's data manager.
pub(crate) struct DataInner {
    /// The node it belongs to; weak, because the node holds this as an extension.
    node: WeakNode,
    /// Directory and volatile lifetime.
    pub(super) config: DataConfig,
    /// Paths of a disk store; `None` for a memory store.
    layout: Option<Layout>,
    /// The catalogue. Short critical sections (no I/O, no await) only,
    /// hence a parking_lot lock.
    items: Mutex<Catalogue>,
    /// The location service told about stored items, once set; read on
    /// every change, written once or twice in a node's life.
    pub(super) locator: RwLock<Option<Arc<dyn Locator>>>,
    /// The remote data manager's capability, once bound.
    pub(super) manager: OnceLock<Capability>,
}

impl std::fmt::Debug for DataInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataInner")
            .field("dir", &self.config.dir)
            .field("items", &self.items.lock().items.len())
            .finish_non_exhaustive()
    }
}

impl Extension for DataInner {
    fn add_stats(&self, stats: &mut NodeStats) {
        stats.data_items = self.items.lock().items.len();
    }
}

/// Runs blocking file work off the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DataError> + Send + 'static,
) -> Result<T, DataError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DataError::storage("file task failed", e))?
}

impl DataInner {
    /// Opens the store `config` names for `node`: loads the catalogue of a
    /// disk store, drops what an interrupted write left behind.
    pub(super) async fn open(node: &Node, config: DataConfig) -> Result<Arc<DataInner>, DataError> {
        let layout = config.dir.as_ref().map(Layout::new);
        let items = match &layout {
            Some(l) => {
                let l = l.clone();
                blocking(move || catalogue::load(&l)).await?
            }
            None => HashMap::new(),
        };
        Ok(Arc::new(DataInner {
            node: node.downgrade(),
            config,
            layout,
            items: Mutex::new(Catalogue::new(items)),
            locator: RwLock::new(None),
            manager: OnceLock::new(),
        }))
    }

    pub(super) fn node(&self) -> Result<Node, DataError> {
        self.node
            .upgrade()
            .ok_or(DataError::Rpc(RpcError::Shutdown))
    }

    /// Runs `f` on the catalogue after dropping expired volatile items,
    /// whose files are deleted once the lock is released.
    pub(super) fn with_catalogue<T>(&self, f: impl FnOnce(&mut Catalogue) -> T) -> T {
        let (r, dead) = {
            let mut c = self.items.lock();
            let dead = c.expire(Instant::now());
            (f(&mut c), dead)
        };
        catalogue::delete_bodies(dead);
        r
    }

    /// Who stored `id` (the certificate name of the node, over TLS).
    pub(super) fn stored_by(&self, id: &DataId) -> Result<Option<String>, DataError> {
        self.with_catalogue(|c| c.items.get(id).map(|it| it.stored_by.clone()))
            .ok_or(DataError::NoSuchData { id: *id })
    }

    /// What `name` stored, sorted by id.
    pub(super) fn list_stored_by(&self, name: Option<&str>) -> Vec<DataInfo> {
        let mut all: Vec<DataInfo> = self.with_catalogue(|c| {
            c.items
                .values()
                .filter(|it| it.stored_by.as_deref() == name)
                .map(|it| it.info.clone())
                .collect()
        });
        all.sort_by_key(|i| i.id);
        all
    }

    /// The bytes of stored item `id` as a blob, for a copy sent back with
    /// a reference (see [`DataRef`]). Volatile items are not offered:
    /// reading them is their one use.
    pub(super) fn stored_blob(&self, id: &DataId) -> Option<Blob> {
        let (info, body) = {
            let c = self.items.lock();
            let it = c.items.get(id)?;
            if !it.info.mode.is_stored() {
                return None;
            }
            (it.info.clone(), it.body.clone())
        };
        match body {
            Body::File(p) => match Blob::from_file(&p) {
                Ok(b) => Some(b.with_checksum(info.checksum)),
                Err(e) => {
                    tracing::warn!(%id, error = %e, "cannot open data to copy it back");
                    None
                }
            },
            Body::Memory(b) => Some(Blob::from_shared(b)),
        }
    }

    /// The catalogue entry of `id`, without using it.
    pub(super) fn info(&self, id: &DataId) -> Result<DataInfo, DataError> {
        self.with_catalogue(|c| c.items.get(id).map(|it| it.info.clone()))
            .ok_or(DataError::NoSuchData { id: *id })
    }

    /// Everything kept here, sorted by id.
    pub(super) fn list(&self) -> Vec<DataInfo> {
        let mut all: Vec<DataInfo> =
            self.with_catalogue(|c| c.items.values().map(|it| it.info.clone()).collect());
        all.sort_by_key(|i| i.id);
        all
    }

    /// One use of local item `id`: a handle on its bytes. A volatile item
    /// leaves the catalogue here; its file goes when the handle is dropped.
    pub(super) fn use_local(&self, id: &DataId) -> Result<DataHandle, DataError> {
        self.with_catalogue(|c| match c.items.get(id) {
            Some(it) if it.info.mode.is_stored() => {
                Some(DataHandle::new(it.info.clone(), it.body.clone(), false))
            }
            Some(_) => c
                .remove(id)
                .map(|it| DataHandle::new(it.info, it.body, true)),
            None => None,
        })
        .ok_or(DataError::NoSuchData { id: *id })
    }

    /// Stores the bytes of `blob` under `id` (pulled straight into a file by
    /// a disk store), as stored by `stored_by`. With `expect`, the bytes must
    /// have that size and checksum (a move), else nothing is stored, and the
    /// location service must take the new location, else nothing is kept.
    pub(super) async fn store_blob(
        self: &Arc<Self>,
        id: DataId,
        mode: Persistence,
        blob: Blob,
        expect: Option<&DataInfo>,
        stored_by: Option<String>,
    ) -> Result<DataInfo, DataError> {
        let moved = expect.is_some();
        let Some(part) = self.layout.as_ref().map(|l| l.scratch("part")) else {
            let max = self.node()?.config().max_large_value;
            if blob.len() > max {
                return Err(DataError::storage(
                    "value too large for a memory store",
                    format!("{} bytes, the limit is {max}", blob.len()),
                ));
            }
            let bytes = blob.into_bytes().await?;
            let info = DataInfo {
                id,
                mode,
                size: bytes.len() as u64,
                checksum: crc32fast::hash(&bytes),
            };
            check_expected(&info, expect)?;
            let body = Body::Memory(Arc::new(bytes));
            return self.commit(info, body, stored_by, moved).await;
        };
        let (size, checksum) = blob.save_checked(&part).await?;
        let info = DataInfo {
            id,
            mode,
            size,
            checksum,
        };
        if let Err(e) = check_expected(&info, expect) {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        self.commit(info, Body::File(part), stored_by, moved).await
    }

    /// Puts a complete value (in `tmp/` or in memory) into the catalogue:
    /// a stored item goes to `items/` with its `.meta`, and is told to the
    /// location service; a volatile one stays in `tmp/` with an expiry.
    /// Data `moved` here is removed again when the location service refuses
    /// the new location (a move its owner did not hand over).
    pub(super) async fn commit(
        self: &Arc<Self>,
        info: DataInfo,
        body: Body,
        stored_by: Option<String>,
        moved: bool,
    ) -> Result<DataInfo, DataError> {
        let id = info.id;
        let body = match body {
            Body::File(part) => {
                let stored = info.mode.is_stored();
                let Some(layout) = &self.layout else {
                    return Err(DataError::storage("file body in a memory store", id));
                };
                let target = if stored {
                    layout.bin(id)
                } else {
                    layout.volatile(id)
                };
                let meta = layout.meta(id);
                let rec = info.clone();
                let by = stored_by.clone();
                let t = target.clone();
                blocking(move || {
                    std::fs::rename(&part, &t)
                        .map_err(|e| DataError::storage("cannot place the value", e))?;
                    if stored {
                        catalogue::write_meta(&meta, &rec, by.as_deref())?;
                    }
                    Ok(())
                })
                .await?;
                Body::File(target)
            }
            memory => memory,
        };
        let expires = (!info.mode.is_stored()).then(|| Instant::now() + self.config.volatile_ttl);
        self.items.lock().insert(
            Item {
                info: info.clone(),
                body,
                stored_by,
            },
            expires,
        );
        if info.mode.is_stored() && moved {
            if let Err(e) = self.tell_added_strictly(vec![id]).await {
                let _ = self.remove(id).await;
                return Err(e);
            }
        } else if info.mode.is_stored() {
            self.tell_added(vec![id]).await;
        }
        Ok(info)
    }

    /// Removes item `id` from the catalogue and from disk, and tells the
    /// location service.
    pub(super) async fn remove(self: &Arc<Self>, id: DataId) -> Result<DataInfo, DataError> {
        let it = self
            .items
            .lock()
            .remove(&id)
            .ok_or(DataError::NoSuchData { id })?;
        if let Some(l) = &self.layout {
            let (meta, aside) = (l.meta(id), l.scratch("gone"));
            let body = it.body.clone();
            let aside = blocking(move || {
                // The `.meta` goes first: without it the item no longer exists.
                catalogue::remove_if_present(&meta)?;
                let Body::File(path) = body else {
                    return Ok(None);
                };
                catalogue::move_aside(&path, &aside)
            })
            .await?;
            if let Some(aside) = aside {
                crate::transfer::unlink_off_runtime(aside);
            }
        }
        if let Body::Memory(b) = it.body {
            crate::transfer::free_shared(b);
        }
        if it.info.mode.is_stored() {
            self.tell_removed(id).await;
        }
        Ok(it.info)
    }

    /// Registers `ids` with the location service, failing when it refuses
    /// (a move it was not told of); without a location service, nothing.
    pub(super) async fn tell_added_strictly(&self, ids: Vec<DataId>) -> Result<(), DataError> {
        let locator = self.locator.read().clone();
        let Some(locator) = locator else {
            return Ok(());
        };
        let me = self.node()?.com_handle();
        locator.add(ids, me).await.map_err(|e| match e {
            RpcError::Remote { message } => DataError::PermissionDenied {
                id: None,
                reason: message,
            },
            other => DataError::Rpc(other),
        })
    }

    pub(super) async fn tell_added(&self, ids: Vec<DataId>) {
        let locator = self.locator.read().clone();
        let (Some(locator), Ok(node)) = (locator, self.node()) else {
            return;
        };
        let n = ids.len();
        if let Err(e) = locator.add(ids, node.com_handle()).await {
            // The data is stored and its references work; only lookups by
            // id alone miss it until the node registers again.
            tracing::warn!(items = n, error = %e, "could not register data with the location service");
        }
    }

    pub(super) async fn tell_removed(&self, id: DataId) {
        let locator = self.locator.read().clone();
        if let Some(locator) = locator
            && let Err(e) = locator.remove(id).await
        {
            tracing::warn!(%id, error = %e, "could not unregister data from the location service");
        }
    }

    /// The owner of `id` according to the location service, if there is one.
    pub(super) async fn locate_remote(&self, id: DataId) -> Result<Option<ComHandle>, DataError> {
        let locator = self.locator.read().clone();
        match locator {
            Some(l) => Ok(l.locate(id).await?),
            None => Ok(None),
        }
    }

    /// A one-use copy of `id` pulled from the node `from`; not put into the
    /// catalogue, not registered, deleted when the handle is dropped.
    pub(super) async fn pull_copy(
        self: &Arc<Self>,
        id: DataId,
        from: &ComHandle,
    ) -> Result<DataHandle, DataError> {
        let dm = manager_at(&self.node()?, from).await?;
        let (info, blob) = dm.get(id).await?;
        if info.id != id {
            return Err(DataError::Rpc(RpcError::protocol(format!(
                "asked for data {id}, got {}",
                info.id
            ))));
        }
        let body = match self.layout.as_ref().map(|l| l.scratch("copy")) {
            Some(path) => {
                let (size, crc) = blob.save_checked(&path).await?;
                let got = DataInfo {
                    size,
                    checksum: crc,
                    ..info.clone()
                };
                if let Err(e) = check_expected(&got, Some(&info)) {
                    let _ = tokio::fs::remove_file(&path).await;
                    return Err(e);
                }
                Body::File(path)
            }
            None => {
                let bytes = blob.into_bytes().await?;
                let got = DataInfo {
                    size: bytes.len() as u64,
                    checksum: crc32fast::hash(&bytes),
                    ..info.clone()
                };
                check_expected(&got, Some(&info))?;
                Body::Memory(Arc::new(bytes))
            }
        };
        Ok(DataHandle::new(info, body, true))
    }
}

/// Fails unless `got` has the size and checksum `expect` announces.
pub(super) fn check_expected(got: &DataInfo, expect: Option<&DataInfo>) -> Result<(), DataError> {
    match expect {
        Some(want) if want.size != got.size || want.checksum != got.checksum => {
            Err(DataError::storage(
                &format!("data {} arrived damaged", want.id),
                format!(
                    "{} bytes with CRC-32 {:08x}, expected {} bytes with {:08x}",
                    got.size, got.checksum, want.size, want.checksum
                ),
            ))
        }
        _ => Ok(()),
    }
}
