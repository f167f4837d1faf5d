//! The catalogue of one data manager: which items it keeps, where their
//! bytes are, and (for a disk store) how they lie on disk and are loaded back
//! after a restart. No network, no node: plain tables and files.
//!
//! Disk layout under the store's directory:
//! - `items/<id>.bin`: the bytes of a stored item; `items/<id>.meta`: its
//!   [`DataInfo`] in CBOR. An item exists once its `.meta` is in place; the
//!   `.bin` is renamed in first, so a crash leaves at worst an orphan `.bin`,
//!   removed at the next start.
//! - `tmp/`: values being received, volatile items, one-use copies of other
//!   nodes' data. Emptied at every start: nothing in it is persistent.

use crate::data::{DataError, DataInfo};
use crate::ids::DataId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
// tokio's clock, so that tests can run on a paused clock.
use tokio::time::Instant;

/// Version of the `.meta` record format.
const META_VERSION: u32 = 1;

/// Where an item's bytes are.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// In a file of the store.
    File(PathBuf),
    /// In memory (memory stores).
    Memory(Arc<Vec<u8>>),
}

/// One item of the catalogue.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) info: DataInfo,
    pub(crate) body: Body,
    /// The certificate name of the node that stored it (over TLS): it may
    /// remove and move it.
    pub(crate) stored_by: Option<String>,
}

/// The items a node keeps, and when its unused volatile ones expire.
#[derive(Debug, Default)]
pub(crate) struct Catalogue {
    pub(crate) items: HashMap<DataId, Item>,
    /// Expiry of each volatile item, apart from `items` so that expiring
    /// them (on every access) looks at the few volatile items only.
    volatile: HashMap<DataId, Instant>,
}

impl Catalogue {
    /// A catalogue holding `items` (loaded from disk), none volatile.
    pub(crate) fn new(items: HashMap<DataId, Item>) -> Catalogue {
        Catalogue {
            items,
            volatile: HashMap::new(),
        }
    }

    pub(crate) fn insert(&mut self, item: Item, expires: Option<Instant>) {
        let id = item.info.id;
        match expires {
            Some(t) => self.volatile.insert(id, t),
            None => self.volatile.remove(&id),
        };
        self.items.insert(id, item);
    }

    pub(crate) fn remove(&mut self, id: &DataId) -> Option<Item> {
        self.volatile.remove(id);
        self.items.remove(id)
    }

    /// Drops volatile items whose time ran out by `now`; returns their
    /// bodies, to be deleted outside the lock.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Body> {
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

/// Where a disk store keeps what (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The store's directory.
    dir: PathBuf,
}

impl Layout {
    /// The layout of the store under `dir`.
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }

    /// `items/`: stored items and their records.
    pub(crate) fn items(&self) -> PathBuf {
        self.dir.join("items")
    }

    /// `tmp/`: everything that does not survive a restart.
    pub(crate) fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// The bytes of stored item `id`.
    pub(crate) fn bin(&self, id: DataId) -> PathBuf {
        self.items().join(format!("{}.bin", id.0.simple()))
    }

    /// The record of stored item `id`.
    pub(crate) fn meta(&self, id: DataId) -> PathBuf {
        self.items().join(format!("{}.meta", id.0.simple()))
    }

    /// The bytes of volatile item `id`.
    pub(crate) fn volatile(&self, id: DataId) -> PathBuf {
        self.tmp().join(format!("{}.vol", id.0.simple()))
    }

    /// A new file in `tmp/` with extension `ext` (`part`: a value being
    /// received; `copy`: a one-use copy of another node's data).
    pub(crate) fn scratch(&self, ext: &str) -> PathBuf {
        self.tmp()
            .join(format!("{}.{ext}", DataId::random().0.simple()))
    }
}

/// The `.meta` record of a stored item.
#[derive(Serialize, Deserialize)]
struct Meta {
    version: u32,
    info: DataInfo,
    /// Absent in records written before it existed.
    #[serde(default)]
    stored_by: Option<String>,
}

pub(crate) fn remove_if_present(path: &Path) -> Result<(), DataError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DataError::storage(
            &format!("cannot remove {}", path.display()),
            e,
        )),
    }
}

/// Renames the body `path` of a removed item to `aside` (in `tmp/`, which
/// the next start empties), so that its own path is free at once and the
/// slow unlink can follow later. Returns where it went: `None` when there was
/// no file, or the rename failed and the file was unlinked in place.
pub(crate) fn move_aside(path: &Path, aside: &Path) -> Result<Option<PathBuf>, DataError> {
    match std::fs::rename(path, aside) {
        Ok(()) => Ok(Some(aside.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(_) => remove_if_present(path).map(|()| None),
    }
}

/// Deletes the files of dropped volatile items (best effort: `tmp/` is
/// emptied at the next start anyway) and frees their memory.
pub(crate) fn delete_bodies(bodies: Vec<Body>) {
    for b in bodies {
        match b {
            Body::File(p) => crate::transfer::unlink_off_runtime(p),
            Body::Memory(b) => crate::transfer::free_shared(b),
        }
    }
}

/// Writes the record of `info` to `path` through a synced temporary file and a rename, then
/// syncs the directory, so that the record is either whole or absent.
pub(crate) fn write_meta(
    path: &Path,
    info: &DataInfo,
    stored_by: Option<&str>,
) -> Result<(), DataError> {
    use std::io::Write as _;
    let rec = Meta {
        version: META_VERSION,
        info: info.clone(),
        stored_by: stored_by.map(str::to_owned),
    };
    let mut buf = Vec::new();
    ciborium::into_writer(&rec, &mut buf)
        .map_err(|e| DataError::storage("cannot encode a catalogue entry", e))?;
    let tmp = path.with_extension("meta.tmp");
    let io = |e: std::io::Error| DataError::storage(&format!("cannot write {}", path.display()), e);
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

/// Loads the catalogue of the disk store laid out as `layout`, creating its
/// directories; empties `tmp/`, drops orphan or damaged entries.
pub(crate) fn load(layout: &Layout) -> Result<HashMap<DataId, Item>, DataError> {
    let items_dir = layout.items();
    let tmp = layout.tmp();
    for d in [&items_dir, &tmp] {
        std::fs::create_dir_all(d)
            .map_err(|e| DataError::storage(&format!("cannot create {}", d.display()), e))?;
    }
    let list = |d: &Path| -> Result<Vec<PathBuf>, DataError> {
        let rd = std::fs::read_dir(d)
            .map_err(|e| DataError::storage(&format!("cannot read {}", d.display()), e))?;
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
    tracing::debug!(dir = %layout.dir.display(), items = items.len(), "data store opened");
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
    let (info, stored_by) = (rec.info, rec.stored_by);
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
        stored_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Persistence;
    use std::time::Duration;

    fn info(mode: Persistence, size: u64) -> DataInfo {
        DataInfo {
            id: DataId::random(),
            mode,
            size,
            checksum: 7,
        }
    }

    fn item(info: &DataInfo) -> Item {
        Item {
            info: info.clone(),
            body: Body::Memory(Arc::new(vec![0; info.size as usize])),
            stored_by: None,
        }
    }

    /// Writes a stored item as the store does: the bytes, then the record.
    fn place(layout: &Layout, info: &DataInfo) {
        std::fs::write(layout.bin(info.id), vec![1u8; info.size as usize]).unwrap();
        write_meta(&layout.meta(info.id), info, Some("alice")).unwrap();
    }

    #[test]
    fn volatile_items_expire_and_stored_ones_stay() {
        let mut c = Catalogue::new(HashMap::new());
        let now = Instant::now();
        let kept = info(Persistence::Persistent, 3);
        let soon = info(Persistence::Volatile, 3);
        let later = info(Persistence::Volatile, 3);
        c.insert(item(&kept), None);
        c.insert(item(&soon), Some(now + Duration::from_secs(1)));
        c.insert(item(&later), Some(now + Duration::from_secs(60)));
        assert!(c.expire(now).is_empty());
        assert_eq!(c.expire(now + Duration::from_secs(2)).len(), 1);
        assert!(c.items.contains_key(&kept.id) && c.items.contains_key(&later.id));
        assert!(!c.items.contains_key(&soon.id));
        // Removing a volatile item also forgets its expiry.
        assert!(c.remove(&later.id).is_some());
        assert!(c.expire(now + Duration::from_secs(3600)).is_empty());
        assert_eq!(c.items.len(), 1);
    }

    /// Expired volatile items in memory are freed off the runtime.
    #[test]
    fn expired_memory_bodies_are_freed_off_the_runtime() {
        crate::transfer::tests::large_values_are_freed_off_the_runtime(|v| {
            delete_bodies(vec![Body::Memory(v)]);
        });
    }

    /// So is a used volatile item's memory, when its handle goes.
    #[test]
    fn a_dropped_handle_frees_its_memory_off_the_runtime() {
        crate::transfer::tests::large_values_are_freed_off_the_runtime(|v| {
            let info = info(Persistence::Volatile, v.len() as u64);
            drop(crate::data::DataHandle::new(info, Body::Memory(v), true));
        });
    }

    #[test]
    fn a_stored_item_reloads_with_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        assert!(load(&layout).unwrap().is_empty());
        let a = info(Persistence::Sticky, 5);
        place(&layout, &a);
        let items = load(&layout).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[&a.id].info, a);
        assert_eq!(items[&a.id].stored_by.as_deref(), Some("alice"));
        assert!(matches!(&items[&a.id].body, Body::File(p) if *p == layout.bin(a.id)));
    }

    #[test]
    fn loading_drops_leftovers_and_damaged_items() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        load(&layout).unwrap();
        let good = info(Persistence::Persistent, 4);
        place(&layout, &good);
        // A value renamed in before its record was written.
        let orphan = DataId::random();
        std::fs::write(layout.bin(orphan), b"xx").unwrap();
        // A record whose bytes are shorter than it says.
        let short = info(Persistence::Persistent, 10);
        place(&layout, &short);
        std::fs::write(layout.bin(short.id), b"x").unwrap();
        // A record that is not CBOR.
        let garbage = DataId::random();
        std::fs::write(layout.meta(garbage), b"\xff\xff").unwrap();
        // A record naming another id than its file.
        let renamed = info(Persistence::Persistent, 1);
        place(&layout, &renamed);
        let other = DataId::random();
        std::fs::rename(layout.meta(renamed.id), layout.meta(other)).unwrap();
        // Anything in tmp/.
        std::fs::write(layout.scratch("part"), b"partial").unwrap();

        let items = load(&layout).unwrap();
        assert_eq!(items.keys().collect::<Vec<_>>(), vec![&good.id]);
        let mut left: Vec<PathBuf> = std::fs::read_dir(layout.items())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        left.sort();
        let mut want = vec![layout.bin(good.id), layout.meta(good.id)];
        want.sort();
        assert_eq!(left, want);
        assert_eq!(std::fs::read_dir(layout.tmp()).unwrap().count(), 0);
    }

    #[test]
    fn a_volatile_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        load(&layout).unwrap();
        let v = info(Persistence::Volatile, 2);
        place(&layout, &v);
        assert!(load(&layout).unwrap().is_empty());
    }

    #[test]
    fn removing_a_missing_file_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        remove_if_present(&dir.path().join("nothing")).unwrap();
    }
}
