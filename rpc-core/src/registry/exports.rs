//! Objects this node exports: the ObjectRegistry (object -> ServerProxy, so the
//! same object exported twice gets the same capability) and the server
//! capability registry (object id -> ServerProxy).
//!
//! Lifetime (distributed GC, as Java RMI's dirty/clean): every peer holding a
//! proxy keeps a lease on the export; each time the object is sent it gets a
//! grace period, so that the receiver's first lease can arrive. An export with
//! no lease, no grace left and no pin is dropped.

use crate::ids::ObjectId;
use crate::ids::{IdMap, NodeId};
use crate::registry::classes::ClassInfo;
use parking_lot::Mutex;
use parking_lot::RwLock;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
// tokio's clock, so that lease tests can run on a paused clock.
use tokio::time::Instant;

/// Who keeps an export alive.
#[derive(Debug)]
struct Life {
    /// Never collected (bound in a registry or the name server).
    pinned: bool,
    /// Lease expiry per peer holding a proxy.
    leases: HashMap<NodeId, Instant>,
    /// Not collected before this instant: the object was just sent.
    grace_until: Instant,
}

impl Life {
    fn collectable(&self, now: Instant) -> bool {
        !self.pinned && self.leases.is_empty() && now >= self.grace_until
    }
}

/// One exported object; `S` is what serves its calls (the skeleton).
pub(crate) struct Export<S: ?Sized> {
    /// Its capability's object id.
    pub(crate) id: ObjectId,
    /// Its class.
    pub(crate) class: &'static ClassInfo,
    /// Dispatches calls to it.
    pub(crate) server: Arc<S>,
    /// The local handle (an `Arc<dyn ...>` of the trait), so that a reference
    /// coming home resolves to the real object.
    pub(crate) local: Box<dyn Any + Send + Sync>,
    /// Address of the object, its identity in the ObjectRegistry.
    key: usize,
    /// Leases, grace and pin; short critical sections only.
    life: Mutex<Life>,
}

struct Tables<S: ?Sized> {
    by_id: IdMap<ObjectId, Arc<Export<S>>>,
    by_key: HashMap<usize, ObjectId>,
}

/// Exports of one node, served by skeletons of type `S`.
pub(crate) struct ExportTable<S: ?Sized> {
    /// Both maps change together; lookups are far more common than exports, and
    /// no lock is held across an await, hence a parking_lot RwLock.
    tables: RwLock<Tables<S>>,
}

impl<S: ?Sized> Default for ExportTable<S> {
    fn default() -> Self {
        ExportTable {
            tables: RwLock::new(Tables {
                by_id: IdMap::default(),
                by_key: HashMap::new(),
            }),
        }
    }
}

impl<S: ?Sized> ExportTable<S> {
    /// Exports the object at address `key` unless it already is; returns its id.
    ///
    /// `make` builds the server proxy and local handle; it runs only for a new export.
    /// `key` is the object's address, which stays unique because the export
    /// keeps the object alive.
    pub(crate) fn export(
        &self,
        key: usize,
        class: &'static ClassInfo,
        fixed_id: Option<ObjectId>,
        grace: Duration,
        make: impl FnOnce() -> (Arc<S>, Box<dyn Any + Send + Sync>),
    ) -> ObjectId {
        let grace_until = Instant::now() + grace;
        let extend = |e: &Export<S>| {
            let mut life = e.life.lock();
            life.grace_until = life.grace_until.max(grace_until);
        };
        {
            let t = self.tables.read();
            if let Some(e) = t.by_key.get(&key).and_then(|id| t.by_id.get(id)) {
                extend(e);
                return e.id;
            }
        }
        let mut t = self.tables.write();
        if let Some(e) = t.by_key.get(&key).and_then(|id| t.by_id.get(id)) {
            extend(e);
            return e.id;
        }
        let (server, local) = make();
        let id = fixed_id.unwrap_or_else(ObjectId::random);
        if let Some(old) = t.by_id.remove(&id) {
            t.by_key.remove(&old.key);
        }
        t.by_key.insert(key, id);
        t.by_id.insert(
            id,
            Arc::new(Export {
                id,
                class,
                server,
                local,
                key,
                life: Mutex::new(Life {
                    pinned: false,
                    leases: HashMap::new(),
                    grace_until,
                }),
            }),
        );
        id
    }

    /// Pins (or unpins) an export: a pinned export is never collected.
    /// Returns false for an unknown id.
    pub(crate) fn set_pinned(&self, id: &ObjectId, pinned: bool) -> bool {
        match self.get(id) {
            Some(e) => {
                e.life.lock().pinned = pinned;
                true
            }
            None => false,
        }
    }

    /// `peer` holds proxies to `ids` for another `lease` (Java RMI's dirty).
    pub(crate) fn dirty(&self, peer: NodeId, ids: &[ObjectId], lease: Duration) {
        let until = Instant::now() + lease;
        let t = self.tables.read();
        for id in ids {
            if let Some(e) = t.by_id.get(id) {
                e.life.lock().leases.insert(peer, until);
            }
        }
    }

    /// `peer` dropped its proxies to `ids` (Java RMI's clean); exports left
    /// without any reason to live are dropped at once.
    pub(crate) fn clean(&self, peer: NodeId, ids: &[ObjectId]) {
        let now = Instant::now();
        let mut dead = Vec::new();
        {
            let t = self.tables.read();
            for id in ids {
                if let Some(e) = t.by_id.get(id) {
                    let mut life = e.life.lock();
                    life.leases.remove(&peer);
                    if life.collectable(now) {
                        dead.push(*id);
                    }
                }
            }
        }
        self.collect(&dead, now);
    }

    /// Drops expired leases and the exports nothing keeps alive any more.
    /// Returns how many exports were dropped.
    pub(crate) fn sweep(&self) -> usize {
        let now = Instant::now();
        let dead: Vec<ObjectId> = {
            let t = self.tables.read();
            t.by_id
                .values()
                .filter(|e| {
                    let mut life = e.life.lock();
                    life.leases.retain(|_, until| *until > now);
                    life.collectable(now)
                })
                .map(|e| e.id)
                .collect()
        };
        self.collect(&dead, now)
    }

    /// Removes the exports in `ids` that are still collectable under the write lock.
    fn collect(&self, ids: &[ObjectId], now: Instant) -> usize {
        if ids.is_empty() {
            return 0;
        }
        let mut t = self.tables.write();
        let mut n = 0;
        for id in ids {
            let gone = t
                .by_id
                .get(id)
                .is_some_and(|e| e.life.lock().collectable(now));
            if gone && let Some(e) = t.by_id.remove(id) {
                t.by_key.remove(&e.key);
                n += 1;
            }
        }
        n
    }

    /// Number of leases held on exports, over all peers.
    pub(crate) fn lease_count(&self) -> usize {
        self.tables
            .read()
            .by_id
            .values()
            .map(|e| e.life.lock().leases.len())
            .sum()
    }

    /// The export with this id.
    pub(crate) fn get(&self, id: &ObjectId) -> Option<Arc<Export<S>>> {
        self.tables.read().by_id.get(id).cloned()
    }

    /// Removes an export; its capability stops working.
    pub(crate) fn remove(&self, id: &ObjectId) -> bool {
        let mut t = self.tables.write();
        match t.by_id.remove(id) {
            Some(e) => {
                t.by_key.remove(&e.key);
                true
            }
            None => false,
        }
    }

    /// Number of exported objects.
    pub(crate) fn len(&self) -> usize {
        self.tables.read().by_id.len()
    }

    /// Drops every export (on shutdown).
    pub(crate) fn clear(&self) {
        let mut t = self.tables.write();
        t.by_id.clear();
        t.by_key.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CLASS: ClassInfo = ClassInfo::new("test.Nothing", "", &[]);
    const G: Duration = Duration::from_secs(60);

    /// The table as tests use it: no skeleton behind the exports.
    type Table = ExportTable<()>;

    fn parts() -> (Arc<()>, Box<dyn Any + Send + Sync>) {
        (Arc::new(()), Box::new(()))
    }

    #[test]
    fn same_object_same_id_and_make_runs_once() {
        let t = Table::default();
        let a = t.export(1, &CLASS, None, G, parts);
        let b = t.export(1, &CLASS, None, G, || panic!("exported twice"));
        assert_eq!(a, b);
        let c = t.export(2, &CLASS, None, G, parts);
        assert_ne!(a, c);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn fixed_ids_and_removal() {
        let t = Table::default();
        let id = ObjectId::random();
        assert_eq!(t.export(7, &CLASS, Some(id), G, parts), id);
        assert!(t.get(&id).is_some());
        assert!(t.remove(&id));
        assert!(!t.remove(&id));
        assert!(t.get(&id).is_none());
        // The object may be exported again, under a new id.
        let again = t.export(7, &CLASS, None, G, parts);
        assert_ne!(again, id);
    }

    #[test]
    fn a_fixed_id_taken_over_forgets_the_old_object() {
        let t = Table::default();
        let id = ObjectId::random();
        t.export(1, &CLASS, Some(id), G, parts);
        t.export(2, &CLASS, Some(id), G, parts);
        assert_eq!(t.len(), 1);
        // Object 1 is no longer exported: exporting it again makes a new id.
        assert_ne!(t.export(1, &CLASS, None, G, parts), id);
    }

    #[test]
    fn leases_keep_an_export_and_clean_drops_it() {
        let t = Table::default();
        let peer = NodeId::random();
        let id = t.export(1, &CLASS, None, Duration::ZERO, parts);
        t.dirty(peer, &[id], Duration::from_secs(60));
        assert_eq!(t.sweep(), 0);
        assert_eq!(t.lease_count(), 1);
        t.clean(peer, &[id]);
        assert!(t.get(&id).is_none());
        assert_eq!(t.lease_count(), 0);
    }

    #[test]
    fn expired_leases_and_grace_are_swept_pins_are_not() {
        let t = Table::default();
        let peer = NodeId::random();
        let leased = t.export(1, &CLASS, None, Duration::ZERO, parts);
        let graced = t.export(2, &CLASS, None, Duration::from_secs(60), parts);
        let pinned = t.export(3, &CLASS, None, Duration::ZERO, parts);
        assert!(t.set_pinned(&pinned, true));
        t.dirty(peer, &[leased], Duration::ZERO);
        assert_eq!(t.sweep(), 1);
        assert!(t.get(&leased).is_none());
        assert!(t.get(&graced).is_some());
        assert!(t.get(&pinned).is_some());
        // A clean from a peer that holds no lease changes nothing for a pinned export.
        t.clean(peer, &[pinned]);
        assert!(t.get(&pinned).is_some());
    }

    #[test]
    fn unknown_ids_are_not_found() {
        let t = Table::default();
        assert!(t.get(&ObjectId::random()).is_none());
    }
}
