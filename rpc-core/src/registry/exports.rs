//! Objects this node exports: the ObjectRegistry (object -> ServerProxy, so the
//! same object exported twice gets the same capability) and the server
//! capability registry (object id -> ServerProxy).

use crate::dispatch::ServerProxy;
use crate::ids::ObjectId;
use crate::registry::classes::ClassInfo;
use parking_lot::RwLock;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

/// One exported object.
pub(crate) struct Export {
    /// Its class.
    pub(crate) class: &'static ClassInfo,
    /// Dispatches calls to it.
    pub(crate) server: Arc<dyn ServerProxy>,
    /// The local handle (an `Arc<dyn ...>` of the trait), so that a reference
    /// coming home resolves to the real object.
    pub(crate) local: Box<dyn Any + Send + Sync>,
    /// Address of the object, its identity in the ObjectRegistry.
    key: usize,
}

#[derive(Default)]
struct Tables {
    by_id: HashMap<ObjectId, Arc<Export>>,
    by_key: HashMap<usize, ObjectId>,
}

/// Exports of one node.
#[derive(Default)]
pub(crate) struct ExportTable {
    /// Both maps change together; lookups are far more common than exports, and
    /// no lock is held across an await, hence a parking_lot RwLock.
    tables: RwLock<Tables>,
}

impl ExportTable {
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
        make: impl FnOnce() -> (Arc<dyn ServerProxy>, Box<dyn Any + Send + Sync>),
    ) -> ObjectId {
        if let Some(id) = self.tables.read().by_key.get(&key) {
            return *id;
        }
        let mut t = self.tables.write();
        if let Some(id) = t.by_key.get(&key) {
            return *id;
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
                class,
                server,
                local,
                key,
            }),
        );
        id
    }

    /// The export with this id.
    pub(crate) fn get(&self, id: &ObjectId) -> Option<Arc<Export>> {
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
    use crate::dispatch::{BoxFuture, IncomingCall};
    use crate::wire::ResponseBody;

    static CLASS: ClassInfo = ClassInfo::new("test.Nothing", "", &[]);

    struct Nothing;
    impl ServerProxy for Nothing {
        fn class(&self) -> &'static ClassInfo {
            &CLASS
        }
        fn dispatch(self: Arc<Self>, call: IncomingCall) -> BoxFuture<'static, ResponseBody> {
            Box::pin(async move { ResponseBody::System(call.no_such_method()) })
        }
    }

    fn parts() -> (Arc<dyn ServerProxy>, Box<dyn Any + Send + Sync>) {
        (Arc::new(Nothing), Box::new(()))
    }

    #[test]
    fn same_object_same_id_and_make_runs_once() {
        let t = ExportTable::default();
        let a = t.export(1, &CLASS, None, parts);
        let b = t.export(1, &CLASS, None, || panic!("exported twice"));
        assert_eq!(a, b);
        let c = t.export(2, &CLASS, None, parts);
        assert_ne!(a, c);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn fixed_ids_and_removal() {
        let t = ExportTable::default();
        let id = ObjectId::random();
        assert_eq!(t.export(7, &CLASS, Some(id), parts), id);
        assert!(t.get(&id).is_some());
        assert!(t.remove(&id));
        assert!(!t.remove(&id));
        assert!(t.get(&id).is_none());
        // The object may be exported again, under a new id.
        let again = t.export(7, &CLASS, None, parts);
        assert_ne!(again, id);
    }

    #[test]
    fn a_fixed_id_taken_over_forgets_the_old_object() {
        let t = ExportTable::default();
        let id = ObjectId::random();
        t.export(1, &CLASS, Some(id), parts);
        t.export(2, &CLASS, Some(id), parts);
        assert_eq!(t.len(), 1);
        // Object 1 is no longer exported: exporting it again makes a new id.
        assert_ne!(t.export(1, &CLASS, None, parts), id);
    }

    #[test]
    fn unknown_ids_are_not_found() {
        let t = ExportTable::default();
        assert!(t.get(&ObjectId::random()).is_none());
    }
}
