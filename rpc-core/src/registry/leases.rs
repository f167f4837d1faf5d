//! Lease messages this node owes other nodes for the proxies it holds: a new
//! proxy takes a lease (dirty), the last proxy dropped releases it (clean).
//! They are queued here and sent in batches per home node by the node's GC task.

use crate::ids::{ComHandle, NodeId, ObjectId};
use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::sync::Notify;

/// Object ids owed to each home node, with the home's address.
pub(crate) type PerHome = HashMap<NodeId, (ComHandle, Vec<ObjectId>)>;

/// Lease messages not yet sent.
#[derive(Default)]
pub(crate) struct LeaseQueue {
    /// Per home node: its address and, per object, whether the last event was a
    /// new proxy (true) or the last proxy dropped (false). Only the last event
    /// of a batch matters: a proxy made and dropped within one batch sends a
    /// clean (harmless without a lease), one dropped and made again a dirty.
    /// Filled by imports and proxy drops (any thread), emptied by the GC task.
    queued: Mutex<HashMap<NodeId, (ComHandle, HashMap<ObjectId, bool>)>>,
    /// Wakes the GC task when something is queued.
    pub(crate) wake: Notify,
}

impl LeaseQueue {
    fn push(&self, home: &ComHandle, id: ObjectId, dirty: bool) {
        self.queued
            .lock()
            .entry(home.node)
            .or_insert_with(|| (home.clone(), HashMap::new()))
            .1
            .insert(id, dirty);
        self.wake.notify_one();
    }

    /// This node now holds a proxy to `id` of `home`.
    pub(crate) fn dirty(&self, home: &ComHandle, id: ObjectId) {
        self.push(home, id, true);
    }

    /// This node dropped its last proxy to `id` of `home`.
    pub(crate) fn clean(&self, home: &ComHandle, id: ObjectId) {
        self.push(home, id, false);
    }

    /// Everything queued, as (dirty, clean).
    pub(crate) fn take(&self) -> (PerHome, PerHome) {
        let queued = std::mem::take(&mut *self.queued.lock());
        let (mut dirty, mut clean) = (PerHome::new(), PerHome::new());
        for (node, (home, ids)) in queued {
            let (d, c): (Vec<_>, Vec<_>) = ids.into_iter().partition(|(_, is_dirty)| *is_dirty);
            if !d.is_empty() {
                dirty.insert(
                    node,
                    (home.clone(), d.into_iter().map(|(id, _)| id).collect()),
                );
            }
            if !c.is_empty() {
                clean.insert(node, (home, c.into_iter().map(|(id, _)| id).collect()));
            }
        }
        (dirty, clean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_event_of_a_batch_wins() {
        let q = LeaseQueue::default();
        let home = ComHandle {
            node: NodeId::random(),
            addr: None,
        };
        let (a, b, c) = (ObjectId::random(), ObjectId::random(), ObjectId::random());
        q.dirty(&home, a);
        q.clean(&home, a); // made and dropped: clean
        q.clean(&home, b);
        q.dirty(&home, b); // dropped and made again: dirty
        q.dirty(&home, c);
        let (dirty, clean) = q.take();
        let mut d = dirty[&home.node].1.clone();
        d.sort();
        let mut want = vec![b, c];
        want.sort();
        assert_eq!(d, want);
        assert_eq!(clean[&home.node].1, vec![a]);
        let (dirty, clean) = q.take();
        assert!(dirty.is_empty() && clean.is_empty());
    }
}
