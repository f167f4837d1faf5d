//! Budgets: how much of one resource (bytes, descriptors, connections) the
//! peers of a node may make it hold, each peer up to its share and all
//! together up to the node's. A take either fits whole or is refused at
//! once, naming the limit it hit; what was taken is given back when its
//! [`Grant`] is dropped, so a failed or abandoned operation never leaks it.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

/// Which limit a take hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// The peer's share: `used` of `limit` taken by this peer already.
    PerPeer { used: u64, limit: u64 },
    /// The node's total: `used` of `limit` taken by all peers together.
    Total { used: u64, limit: u64 },
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exceeded::PerPeer { used, limit } => {
                write!(f, "{used} of this peer's {limit} in use")
            }
            Exceeded::Total { used, limit } => write!(f, "{used} of this node's {limit} in use"),
        }
    }
}

/// Counts per key and in total.
#[derive(Debug, Default)]
struct Used<K> {
    total: u64,
    by_key: HashMap<K, u64>,
}

/// One resource's budget, keyed by peer (a node id, an address).
#[derive(Debug)]
pub(crate) struct Budget<K: Hash + Eq> {
    /// Most one key may hold.
    per_peer: u64,
    /// Most all keys together may hold.
    total: u64,
    /// What is taken; short critical sections only (no await).
    used: Mutex<Used<K>>,
}

impl<K: Hash + Eq + Clone + Send + 'static> Budget<K> {
    /// A budget of `per_peer` per key and `total` in all.
    pub(crate) fn new(per_peer: u64, total: u64) -> Arc<Self> {
        Arc::new(Budget {
            per_peer,
            total,
            used: Mutex::new(Used {
                total: 0,
                by_key: HashMap::new(),
            }),
        })
    }

    /// Takes `n` for `key`, or says which limit refuses it.
    pub(crate) fn take(self: &Arc<Self>, key: &K, n: u64) -> Result<Grant<K>, Exceeded> {
        let mut u = self.used.lock();
        let mine = u.by_key.get(key).copied().unwrap_or(0);
        if mine.saturating_add(n) > self.per_peer {
            return Err(Exceeded::PerPeer {
                used: mine,
                limit: self.per_peer,
            });
        }
        if u.total.saturating_add(n) > self.total {
            return Err(Exceeded::Total {
                used: u.total,
                limit: self.total,
            });
        }
        u.total += n;
        *u.by_key.entry(key.clone()).or_insert(0) += n;
        Ok(Grant {
            budget: Arc::clone(self),
            key: key.clone(),
            n,
        })
    }

    /// What `key` holds now.
    #[cfg(test)]
    pub(crate) fn used_by(&self, key: &K) -> u64 {
        self.used.lock().by_key.get(key).copied().unwrap_or(0)
    }

    /// What all keys hold now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.lock().total
    }

    fn give_back(&self, key: &K, n: u64) {
        let mut u = self.used.lock();
        u.total = u.total.saturating_sub(n);
        if let Some(v) = u.by_key.get_mut(key) {
            *v = v.saturating_sub(n);
            if *v == 0 {
                u.by_key.remove(key);
            }
        }
    }
}

/// What one take holds; given back on drop.
pub(crate) struct Grant<K: Hash + Eq + Clone + Send + 'static> {
    budget: Arc<Budget<K>>,
    key: K,
    n: u64,
}

impl<K: Hash + Eq + Clone + Send + 'static> fmt::Debug for Grant<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Grant({})", self.n)
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Drop for Grant<K> {
    fn drop(&mut self) {
        self.budget.give_back(&self.key, self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_fit_per_peer_and_in_total_and_come_back_on_drop() {
        let b = Budget::new(10, 15);
        let a1 = b.take(&"a", 6).unwrap();
        assert_eq!(
            b.take(&"a", 5).unwrap_err(),
            Exceeded::PerPeer { used: 6, limit: 10 }
        );
        let a2 = b.take(&"a", 4).unwrap();
        let c1 = b.take(&"c", 5).unwrap();
        assert_eq!(
            b.take(&"d", 1).unwrap_err(),
            Exceeded::Total {
                used: 15,
                limit: 15
            }
        );
        drop(a1);
        assert_eq!(b.used_by(&"a"), 4);
        assert_eq!(b.used(), 9);
        let d = b.take(&"d", 6).unwrap();
        drop((a2, c1, d));
        assert_eq!(b.used(), 0);
        assert_eq!(b.used_by(&"a"), 0);
        assert!(
            b.used.lock().by_key.is_empty(),
            "keys are forgotten at zero"
        );
    }
}
