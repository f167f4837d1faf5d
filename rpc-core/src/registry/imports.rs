//! The client capability registry: capability -> the one shared client proxy
//! state for it, so that every reference to a remote object on this node shares
//! one proxy.

use crate::ids::ObjectId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// Proxies of one node (client state of type `T`), held weakly: a proxy
/// lives as long as references to it.
pub(crate) struct ImportTable<T> {
    /// Guards the map for short lookups and inserts only.
    map: Mutex<HashMap<ObjectId, Weak<T>>>,
}

impl<T> Default for ImportTable<T> {
    fn default() -> Self {
        ImportTable {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> ImportTable<T> {
    /// The live proxy for `id`, or a new one made by `make` (then `true`).
    pub(crate) fn get_or_insert(
        &self,
        id: ObjectId,
        make: impl FnOnce() -> Arc<T>,
    ) -> (Arc<T>, bool) {
        let mut m = self.map.lock();
        if let Some(live) = m.get(&id).and_then(Weak::upgrade) {
            return (live, false);
        }
        let new = make();
        m.insert(id, Arc::downgrade(&new));
        (new, true)
    }

    /// The live proxies, for lease renewal.
    pub(crate) fn live(&self) -> Vec<Arc<T>> {
        self.map.lock().values().filter_map(Weak::upgrade).collect()
    }

    /// Forgets `id` if its proxy is gone (called when the last reference drops).
    pub(crate) fn forget_dead(&self, id: &ObjectId) {
        let mut m = self.map.lock();
        if m.get(id).is_some_and(|w| w.strong_count() == 0) {
            m.remove(id);
        }
    }

    /// Number of live proxies.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}
