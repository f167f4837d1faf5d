//! The DataManager role: the data one node keeps, on disk under its data
//! directory (or in memory when asked), with a catalogue that survives a
//! restart for stored modes.
//!
//! Disk layout under the directory:
//! - `items/<id>.bin`: the bytes of a stored item; `items/<id>.meta`: its
//!   [`DataInfo`] in CBOR. An item exists once its `.meta` is in place; the
//!   `.bin` is renamed in first, so a crash leaves at worst an orphan `.bin`,
//!   removed at the next start.
//! - `tmp/`: values being received, volatile items, one-use copies of other
//!   nodes' data. Emptied at every start: nothing in it is persistent.
//!
//! Items never change once stored (a computation that produces new bytes
//! stores them under a new id), so readers need no lock beyond the
//! catalogue's: a file removed while it is being sent stays readable through
//! the open handle.

use crate::data::DataError;
use crate::data::reference::DataRef;
use crate::data::remote::{DataManager, DataManagerRef};
use crate::data::{DataInfo, Locator, Persistence};
use crate::error::RpcError;
use crate::ids::{ComHandle, DataId};
use crate::node::{Node, NodeInner};
use crate::transfer::Blob;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Name of the data manager in every node's bootstrap registry:
/// `node.lookup::<DataManagerRef>(addr, BOOTSTRAP_NAME)`.
pub const BOOTSTRAP_NAME: &str = "data";

/// Default time a volatile item waits for its one use before it is dropped.
pub const VOLATILE_TTL: Duration = Duration::from_secs(600);

/// Version of the `.meta` record format.
const META_VERSION: u32 = 1;

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

/// Where an item's bytes are.
#[derive(Clone, Debug)]
enum Body {
    /// In a file of the store.
    File(PathBuf),
    /// In memory (memory stores).
    Memory(Arc<Vec<u8>>),
}

/// One item of the catalogue.
#[derive(Debug)]
struct Item {
    info: DataInfo,
    body: Body,
}

/// The items a node keeps, and when its unused volatile ones expire.
#[derive(Debug, Default)]
struct Catalogue {
    items: HashMap<DataId, Item>,
    /// Expiry of each volatile item, apart from `items` so that expiring
    /// them (on every access) looks at the few volatile items only.
    volatile: HashMap<DataId, Instant>,
}

impl Catalogue {
    fn insert(&mut self, item: Item, expires: Option<Instant>) {
        let id = item.info.id;
        match expires {
            Some(t) => self.volatile.insert(id, t),
            None => self.volatile.remove(&id),
        };
        self.items.insert(id, item);
    }

    fn remove(&mut self, id: &DataId) -> Option<Item> {
        self.volatile.remove(id);
        self.items.remove(id)
    }

    /// Drops volatile items whose time ran out by `now`; returns their
    /// bodies, to be deleted outside the lock.
    fn expire(&mut self, now: Instant) -> Vec<Body> {
        let dead: Vec<DataId> = self
            .volatile
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(id, _)| *id)
            .collect();
        dead.iter()
            .filter_map(|id| self.remove(id))
            .map(|it| it.body)
            .collect()
    }
}

/// The `.meta` record of a stored item.
#[derive(Serialize, Deserialize)]
struct Meta {
    version: u32,
    info: DataInfo,
}

/// State of one node's data manager.
pub(crate) struct DataInner {
    /// The node it belongs to; weak, because the node owns this.
    node: Weak<NodeInner>,
    /// Directory and volatile lifetime.
    config: DataConfig,
    /// The catalogue. Short critical sections (no I/O, no await) only,
    /// hence a parking_lot lock.
    items: Mutex<Catalogue>,
    /// The location service told about stored items, once set; read on
    /// every change, written once or twice in a node's life.
    locator: RwLock<Option<Arc<dyn Locator>>>,
}

impl std::fmt::Debug for DataInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataInner")
            .field("dir", &self.config.dir)
            .field("items", &self.items.lock().items.len())
            .finish_non_exhaustive()
    }
}

fn storage(what: &str, e: impl std::fmt::Display) -> DataError {
    DataError::Storage {
        reason: format!("{what}: {e}"),
    }
}

/// Runs blocking file work off the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DataError> + Send + 'static,
) -> Result<T, DataError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| storage("file task failed", e))?
}

impl DataInner {
    /// Opens the store `config` names for `node`: loads the catalogue of a
    /// disk store, drops what an interrupted write left behind.
    pub(crate) async fn open(
        node: &Arc<NodeInner>,
        config: DataConfig,
    ) -> Result<Arc<DataInner>, DataError> {
        let items = match &config.dir {
            Some(dir) => {
                let dir = dir.clone();
                blocking(move || load(&dir)).await?
            }
            None => HashMap::new(),
        };
        Ok(Arc::new(DataInner {
            node: Arc::downgrade(node),
            config,
            items: Mutex::new(Catalogue {
                items,
                volatile: HashMap::new(),
            }),
            locator: RwLock::new(None),
        }))
    }

    /// Items in the catalogue (volatile ones included).
    pub(crate) fn len(&self) -> usize {
        self.items.lock().items.len()
    }

    fn node(&self) -> Result<Arc<NodeInner>, RpcError> {
        self.node.upgrade().ok_or(RpcError::Shutdown)
    }

    fn items_dir(&self) -> Option<PathBuf> {
        self.config.dir.as_ref().map(|d| d.join("items"))
    }

    fn tmp_path(&self, name: &str) -> Option<PathBuf> {
        self.config.dir.as_ref().map(|d| d.join("tmp").join(name))
    }

    /// Runs `f` on the catalogue after dropping expired volatile items,
    /// whose files are deleted once the lock is released.
    fn with_catalogue<T>(&self, f: impl FnOnce(&mut Catalogue) -> T) -> T {
        let (r, dead) = {
            let mut c = self.items.lock();
            let dead = c.expire(Instant::now());
            (f(&mut c), dead)
        };
        delete_bodies(dead);
        r
    }

    /// The local body of a stored item, for a copy sent back with a
    /// reference (see `DataRef`'s serializer). Volatile items are not
    /// offered: reading them is their one use.
    pub(crate) fn stored_body(&self, id: &DataId) -> Option<(DataInfo, BodyRef)> {
        let c = self.items.lock();
        let it = c.items.get(id)?;
        if !it.info.mode.is_stored() {
            return None;
        }
        Some((it.info.clone(), BodyRef(it.body.clone())))
    }

    /// The catalogue entry of `id`, without using it.
    fn info(&self, id: &DataId) -> Result<DataInfo, DataError> {
        self.with_catalogue(|c| c.items.get(id).map(|it| it.info.clone()))
            .ok_or(DataError::NoSuchData { id: *id })
    }

    /// Everything kept here, sorted by id.
    fn list(&self) -> Vec<DataInfo> {
        let mut all: Vec<DataInfo> =
            self.with_catalogue(|c| c.items.values().map(|it| it.info.clone()).collect());
        all.sort_by_key(|i| i.id);
        all
    }

    /// One use of local item `id`: a handle on its bytes. A volatile item
    /// leaves the catalogue here; its file goes when the handle is dropped.
    fn use_local(&self, id: &DataId) -> Result<DataHandle, DataError> {
        self.with_catalogue(|c| match c.items.get(id) {
            Some(it) if it.info.mode.is_stored() => Some(DataHandle {
                info: it.info.clone(),
                body: it.body.clone(),
                temporary: false,
            }),
            Some(_) => c.remove(id).map(|it| DataHandle {
                info: it.info,
                body: it.body,
                temporary: true,
            }),
            None => None,
        })
        .ok_or(DataError::NoSuchData { id: *id })
    }

    /// Stores the bytes of `blob` under `id` (pulled straight into a file by
    /// a disk store). With `expect`, the bytes must have that size and
    /// checksum (a move), else nothing is stored.
    async fn store_blob(
        self: &Arc<Self>,
        id: DataId,
        mode: Persistence,
        blob: Blob,
        expect: Option<&DataInfo>,
    ) -> Result<DataInfo, DataError> {
        let Some(part) = self.tmp_path(&format!("{}.part", DataId::random().0.simple())) else {
            let max = self.node()?.config.max_large_value;
            if blob.len() > max {
                return Err(storage(
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
            return self.commit(info, Body::Memory(Arc::new(bytes))).await;
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
        self.commit(info, Body::File(part)).await
    }

    /// Puts a complete value (in `tmp/` or in memory) into the catalogue:
    /// a stored item goes to `items/` with its `.meta`, and is told to the
    /// location service; a volatile one stays in `tmp/` with an expiry.
    async fn commit(self: &Arc<Self>, info: DataInfo, body: Body) -> Result<DataInfo, DataError> {
        let id = info.id;
        let body = match body {
            Body::File(part) => {
                let stored = info.mode.is_stored();
                let target = if stored {
                    self.items_dir()
                        .map(|d| d.join(format!("{}.bin", id.0.simple())))
                } else {
                    self.tmp_path(&format!("{}.vol", id.0.simple()))
                };
                let Some(target) = target else {
                    return Err(storage("file body in a memory store", id));
                };
                let meta = self
                    .items_dir()
                    .map(|d| d.join(format!("{}.meta", id.0.simple())));
                let rec = Meta {
                    version: META_VERSION,
                    info: info.clone(),
                };
                let t = target.clone();
                blocking(move || {
                    std::fs::rename(&part, &t).map_err(|e| storage("cannot place the value", e))?;
                    if stored && let Some(meta) = meta {
                        write_meta(&meta, &rec)?;
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
            },
            expires,
        );
        if info.mode.is_stored() {
            self.tell_added(vec![id]).await;
        }
        Ok(info)
    }

    /// Removes item `id` from the catalogue and from disk, and tells the
    /// location service.
    async fn remove(self: &Arc<Self>, id: DataId) -> Result<DataInfo, DataError> {
        let it = self
            .items
            .lock()
            .remove(&id)
            .ok_or(DataError::NoSuchData { id })?;
        let meta = self
            .items_dir()
            .map(|d| d.join(format!("{}.meta", id.0.simple())));
        let body = it.body.clone();
        blocking(move || {
            // The `.meta` goes first: without it the item no longer exists.
            if let Some(meta) = meta {
                remove_if_present(&meta)?;
            }
            if let Body::File(path) = body {
                remove_if_present(&path)?;
            }
            Ok(())
        })
        .await?;
        if it.info.mode.is_stored() {
            self.tell_removed(id).await;
        }
        Ok(it.info)
    }

    async fn tell_added(&self, ids: Vec<DataId>) {
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

    async fn tell_removed(&self, id: DataId) {
        let locator = self.locator.read().clone();
        if let Some(locator) = locator
            && let Err(e) = locator.remove(id).await
        {
            tracing::warn!(%id, error = %e, "could not unregister data from the location service");
        }
    }

    /// The owner of `id` according to the location service, if there is one.
    async fn locate_remote(&self, id: DataId) -> Result<Option<ComHandle>, DataError> {
        let locator = self.locator.read().clone();
        match locator {
            Some(l) => Ok(l.locate(id).await?),
            None => Ok(None),
        }
    }

    /// A one-use copy of `id` pulled from the node `from`; not put into the
    /// catalogue, not registered, deleted when the handle is dropped.
    async fn pull_copy(
        self: &Arc<Self>,
        id: DataId,
        from: &ComHandle,
    ) -> Result<DataHandle, DataError> {
        let dm = manager_at(&Node::from_inner(self.node()?), from).await?;
        let (info, blob) = dm.get(id).await?;
        if info.id != id {
            return Err(DataError::Rpc(RpcError::protocol(format!(
                "asked for data {id}, got {}",
                info.id
            ))));
        }
        let body = match self.tmp_path(&format!("{}.copy", DataId::random().0.simple())) {
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
        Ok(DataHandle {
            info,
            body,
            temporary: true,
        })
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

/// A body handed to a `DataRef` serializer: the bytes to offer as a copy.
pub(crate) struct BodyRef(Body);

impl BodyRef {
    /// The transfer source for these bytes (opens the file now).
    pub(crate) fn source(&self) -> std::io::Result<crate::transfer::Source> {
        match &self.0 {
            Body::File(p) => Ok(crate::transfer::Source::File(Arc::new(
                std::fs::File::open(p)?,
            ))),
            Body::Memory(b) => Ok(crate::transfer::Source::Memory(Arc::clone(b))),
        }
    }
}

/// Fails unless `got` has the size and checksum `expect` announces.
fn check_expected(got: &DataInfo, expect: Option<&DataInfo>) -> Result<(), DataError> {
    match expect {
        Some(want) if want.size != got.size || want.checksum != got.checksum => Err(storage(
            &format!("data {} arrived damaged", want.id),
            format!(
                "{} bytes with CRC-32 {:08x}, expected {} bytes with {:08x}",
                got.size, got.checksum, want.size, want.checksum
            ),
        )),
        _ => Ok(()),
    }
}

fn remove_if_present(path: &Path) -> Result<(), DataError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(storage(&format!("cannot remove {}", path.display()), e)),
    }
}

/// Deletes the files of dropped volatile items (best effort: `tmp/` is
/// emptied at the next start anyway).
fn delete_bodies(bodies: Vec<Body>) {
    for b in bodies {
        if let Body::File(p) = b {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes `rec` to `path` through a synced temporary file and a rename, then
/// syncs the directory, so that the record is either whole or absent.
fn write_meta(path: &Path, rec: &Meta) -> Result<(), DataError> {
    use std::io::Write as _;
    let mut buf = Vec::new();
    ciborium::into_writer(rec, &mut buf)
        .map_err(|e| storage("cannot encode a catalogue entry", e))?;
    let tmp = path.with_extension("meta.tmp");
    let io = |e: std::io::Error| storage(&format!("cannot write {}", path.display()), e);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&buf).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Loads the catalogue of the disk store under `dir`, creating its
/// directories; empties `tmp/`, drops orphan or damaged entries.
fn load(dir: &Path) -> Result<HashMap<DataId, Item>, DataError> {
    let items_dir = dir.join("items");
    let tmp = dir.join("tmp");
    for d in [&items_dir, &tmp] {
        std::fs::create_dir_all(d)
            .map_err(|e| storage(&format!("cannot create {}", d.display()), e))?;
    }
    let list = |d: &Path| -> Result<Vec<PathBuf>, DataError> {
        let rd = std::fs::read_dir(d)
            .map_err(|e| storage(&format!("cannot read {}", d.display()), e))?;
        Ok(rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
    };
    for p in list(&tmp)? {
        let _ = std::fs::remove_file(&p);
    }
    let mut items = HashMap::new();
    let files = list(&items_dir)?;
    for meta in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "meta"))
    {
        match load_item(meta) {
            Ok(item) => {
                items.insert(item.info.id, item);
            }
            Err(why) => {
                tracing::warn!(file = %meta.display(), %why, "dropping a damaged data item");
                let _ = std::fs::remove_file(meta);
                let _ = std::fs::remove_file(meta.with_extension("bin"));
            }
        }
    }
    for p in files {
        let keep = match p.extension().and_then(|e| e.to_str()) {
            Some("meta") => true,
            Some("bin") => p
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<DataId>().ok())
                .is_some_and(|id| items.contains_key(&id)),
            _ => false,
        };
        if !keep {
            // A value renamed in before its record was written, or a record
            // being replaced when the process stopped.
            tracing::debug!(file = %p.display(), "removing a leftover data file");
            let _ = std::fs::remove_file(&p);
        }
    }
    tracing::debug!(dir = %dir.display(), items = items.len(), "data store opened");
    Ok(items)
}

fn load_item(meta: &Path) -> Result<Item, String> {
    let bytes = std::fs::read(meta).map_err(|e| e.to_string())?;
    let rec: Meta = ciborium::from_reader(&bytes[..]).map_err(|e| e.to_string())?;
    if rec.version != META_VERSION {
        return Err(format!(
            "record version {} is not {META_VERSION}",
            rec.version
        ));
    }
    let info = rec.info;
    let stem = meta
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem.parse::<DataId>().ok() != Some(info.id) {
        return Err(format!("record names {} but the file is {stem}", info.id));
    }
    if !info.mode.is_stored() {
        return Err("a volatile item has no record".into());
    }
    let bin = meta.with_extension("bin");
    let len = std::fs::metadata(&bin)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .len();
    if len != info.size {
        return Err(format!(
            "{} holds {len} bytes, the record says {}",
            bin.display(),
            info.size
        ));
    }
    Ok(Item {
        info,
        body: Body::File(bin),
    })
}

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
                .map_err(|e| storage(&format!("cannot read {}", p.display()), e)),
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
            Body::File(p) => {
                Blob::from_file(p).map_err(|e| storage(&format!("cannot open {}", p.display()), e))
            }
            Body::Memory(b) => Ok(Blob::from_shared(Arc::clone(b))),
        }
    }
}

impl Drop for DataHandle {
    fn drop(&mut self) {
        if self.temporary
            && let Body::File(p) = &self.body
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A node's data manager, as its own code uses it: store data, use it (or a
/// copy of another node's), remove it, move it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DataStore {
    pub(crate) inner: Arc<DataInner>,
}

impl DataStore {
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
        let blob =
            Blob::from_file(p).map_err(|e| storage(&format!("cannot read {}", p.display()), e))?;
        self.put_blob(blob, mode).await
    }

    /// Stores the bytes of `blob` under a new id with `mode`; a remote blob
    /// is pulled in chunks, straight into the store's file.
    ///
    /// # Errors
    /// [`RpcError::TransferFailed`] when the pull fails; [`DataError::Storage`].
    pub async fn put_blob(&self, blob: Blob, mode: Persistence) -> Result<DataRef, DataError> {
        let info = self
            .inner
            .store_blob(DataId::random(), mode, blob, None)
            .await?;
        self.reference(info)
    }

    /// A reference to `info`'s data, owned by this node.
    fn reference(&self, info: DataInfo) -> Result<DataRef, DataError> {
        Ok(DataRef::new(info, self.inner.node()?.com_handle()))
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
        let me = self.inner.node()?.id;
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
        let dm = manager_at(&Node::from_inner(self.inner.node()?), &owner).await?;
        Ok((dm.info(id).await?, owner))
    }

    /// Removes `id` from this node (and from the location service).
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
        let handle = self.inner.use_local(&id)?;
        let received = dest.receive(info.clone(), handle.blob()?).await?;
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
            return Err(storage(
                &format!("cannot receive data {}", info.id),
                "this node keeps other bytes under that id",
            ));
        }
        self.inner
            .store_blob(info.id, info.mode, blob, Some(&info))
            .await
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
        let cap = node
            .bootstrap_entry(BOOTSTRAP_NAME)
            .ok_or(DataError::NoDataManager)?;
        Ok(crate::dispatch::resolve::<DataManagerRef>(&node, cap)?)
    }

    /// The directory of a disk store.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.config.dir.as_deref()
    }
}

/// The data manager as other nodes call it (the object bound as
/// [`BOOTSTRAP_NAME`]).
pub(crate) struct DataManagerObj {
    pub(crate) store: DataStore,
}

impl DataManager for DataManagerObj {
    async fn put(&self, data: Blob, mode: Persistence) -> Result<DataRef, DataError> {
        self.store.put_blob(data, mode).await
    }

    async fn get(&self, id: DataId) -> Result<(DataInfo, Blob), DataError> {
        let h = self.store.inner.use_local(&id)?;
        let blob = h.blob()?;
        Ok((h.info.clone(), blob))
    }

    async fn info(&self, id: DataId) -> Result<DataInfo, DataError> {
        self.store.info(id)
    }

    async fn list(&self) -> Result<Vec<DataInfo>, DataError> {
        Ok(self.store.list())
    }

    async fn remove(&self, id: DataId) -> Result<DataInfo, DataError> {
        self.store.remove(id).await
    }

    async fn move_to(&self, id: DataId, dest: DataManagerRef) -> Result<DataRef, DataError> {
        self.store.move_to(id, &dest).await
    }

    async fn receive(&self, info: DataInfo, data: Blob) -> Result<DataInfo, DataError> {
        self.store.receive(info, data).await
    }
}
