//! Services attached to a node (the data manager is one): found by their
//! type, and asked for their counts when the node reports its own. A
//! service attaches through the node's public API, so the runtime below
//! knows nothing of it.

use super::{Node, NodeStats};
use parking_lot::RwLock;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

/// A service attached to a node with [`Node::attach`].
pub trait Extension: Any + Send + Sync {
    /// Adds this service's counts to the node's (the data manager sets
    /// [`NodeStats::data_items`]).
    fn add_stats(&self, _stats: &mut NodeStats) {}
}

/// One attached service, kept both as itself (to hand it out by type) and
/// as an extension (to ask it for counts).
struct Slot {
    any: Arc<dyn Any + Send + Sync>,
    ext: Arc<dyn Extension>,
}

/// The services of one node, by type.
#[derive(Default)]
pub(super) struct Extensions {
    /// Written when a service attaches (once or twice in a node's life), read
    /// for every lookup; never held across an await.
    slots: RwLock<HashMap<TypeId, Slot>>,
}

impl Extensions {
    /// Lets every service add its counts.
    pub(super) fn add_stats(&self, stats: &mut NodeStats) {
        for slot in self.slots.read().values() {
            slot.ext.add_stats(stats);
        }
    }
}

impl Node {
    /// Attaches `service` to this node, to be found with [`Node::extension`].
    ///
    /// # Errors
    /// Gives `service` back when a service of its type is attached already.
    pub fn attach<E: Extension>(&self, service: Arc<E>) -> Result<(), Arc<E>> {
        let mut slots = self.inner.extensions.slots.write();
        let key = TypeId::of::<E>();
        if slots.contains_key(&key) {
            return Err(service);
        }
        slots.insert(
            key,
            Slot {
                any: Arc::clone(&service) as Arc<dyn Any + Send + Sync>,
                ext: service,
            },
        );
        Ok(())
    }

    /// The service of type `E` attached to this node.
    pub fn extension<E: Extension>(&self) -> Option<Arc<E>> {
        let any = Arc::clone(
            &self
                .inner
                .extensions
                .slots
                .read()
                .get(&TypeId::of::<E>())?
                .any,
        );
        any.downcast::<E>().ok()
    }
}
