//! The naming tree and the leases that keep its entries alive. Pure: no I/O, no
//! clock (every operation that needs the time takes `now`), no locking (the
//! server keeps the [`Tree`] under one lock).
//!
//! Every context, object binding and class offer records its [`Owner`]. A
//! node's lease is created or extended by each of its successful changes and
//! by [`Tree::renew`]; when it runs out, [`Tree::expire`] removes every entry
//! the node owns, and each context it created with everything inside.
//! Entries owned by [`Owner::Local`] (the name server's own) never expire.
//!
//! Authority: a node's context and what it bound belong to it. A change to
//! an entry (rebind, unbind, destroy) needs its owner, an administrator or
//! the name server itself ([`Actor`]); a new entry needs the context it goes
//! into to be the caller's (or the root, where every node makes its own).
//! Over TLS the owner is the certificate's name, so a restarted node with
//! the same credential keeps its entries; in plaintext it is the claimed
//! node id.
//!
//! Contexts also hold data entries (data id -> owner node, the location
//! service). A tree-wide index finds the context holding an id in O(1); every
//! change that adds or drops data entries (adding, moving, removing, removing
//! a context, a lease running out) keeps it in step with the contexts.

use crate::api::{DataLocation, Entry, EntryKind, MAX_DATA_IDS_PER_CALL, NameError};
use crate::name::{Path, check_component, join, join_all};
use rpc_core::{Capability, ComHandle, DataId, NodeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Identity of a context within one tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ContextId(u64);

/// The root context; it always exists.
pub(crate) const ROOT: ContextId = ContextId(0);

/// Who made an entry, and so whose lease keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
    /// The name server itself: never expires.
    Local,
    /// A remote node: lives as long as its lease.
    Node(NodeId),
}

/// Who asks for a change: whose lease it goes under, and what the caller's
/// certificate proves (nothing in plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Actor {
    /// The lease owner of what it makes.
    pub(crate) owner: Owner,
    /// The name its certificate proves, over TLS.
    pub(crate) name: Option<Arc<str>>,
    /// True for an administrator's certificate.
    pub(crate) admin: bool,
}

impl From<Owner> for Actor {
    /// An actor proving nothing beyond its (claimed) node id.
    fn from(owner: Owner) -> Actor {
        Actor {
            owner,
            name: None,
            admin: false,
        }
    }
}

impl Actor {
    fn node(&self) -> Option<NodeId> {
        match self.owner {
            Owner::Local => None,
            Owner::Node(n) => Some(n),
        }
    }
}

/// What a path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A bound object.
    Object(Capability),
    /// A context.
    Context(ContextId),
}

/// One class offer.
#[derive(Debug, Clone)]
struct Offer {
    handle: ComHandle,
    owner: Owner,
}

/// What a name in a context is bound to.
#[derive(Debug, Clone)]
enum Slot {
    Object { cap: Capability, owner: Owner },
    Context(ContextId),
    Class(Vec<Offer>),
}

impl Slot {
    fn kind(&self) -> EntryKind {
        match self {
            Slot::Object { .. } => EntryKind::Object,
            Slot::Context(_) => EntryKind::Context,
            Slot::Class(_) => EntryKind::Class,
        }
    }
}

/// One data entry: who keeps the data, and whose lease keeps the entry.
#[derive(Debug, Clone)]
struct DataEntry {
    /// The node keeping the data.
    handle: ComHandle,
    /// The node that recorded it.
    owner: Owner,
    /// The node the owner is handing the data over to (a move under way):
    /// it may record the id in its place.
    handover: Option<NodeId>,
}

#[derive(Debug)]
struct Context {
    parent: Option<ContextId>,
    /// Its name in its parent (`""` for the root): contexts never move, so
    /// the absolute path of a data entry's context is built from these.
    name: String,
    owner: Owner,
    /// Sorted, so that `list` is stable.
    entries: BTreeMap<String, Slot>,
    /// The data entries recorded in this context; each id is also in
    /// [`Tree::data_index`], pointing here.
    data: BTreeMap<DataId, DataEntry>,
}

impl Context {
    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.data.is_empty()
    }
}

/// The tree of contexts and the leases of the nodes owning entries in it.
#[derive(Debug)]
pub(crate) struct Tree {
    contexts: HashMap<ContextId, Context>,
    next_id: u64,
    /// Expiry time of each node's lease.
    leases: HashMap<NodeId, Instant>,
    /// Lease time granted on each renewal.
    lease: Duration,
    /// The context holding each data id's entry (one per id).
    data_index: HashMap<DataId, ContextId>,
    /// Contexts removed since the last [`Tree::take_removed`], so that the
    /// server can stop exporting their objects.
    removed: Vec<ContextId>,
    /// The certificate name of each leased node that proved one: entries of
    /// a node belong to every node with the same name (over TLS, ids are
    /// bound to names, so this never changes for an id).
    names: HashMap<NodeId, Arc<str>>,
    /// Entries (contexts, bindings, class offers, data entries) each node
    /// owns, kept in step with every change; the name server's own are not
    /// counted.
    owned: HashMap<NodeId, usize>,
    /// Most entries one node may own.
    max_entries: usize,
}

impl Tree {
    /// A tree holding only the root context, granting leases of `lease`.
    pub(crate) fn new(lease: Duration) -> Tree {
        let mut contexts = HashMap::new();
        contexts.insert(
            ROOT,
            Context {
                parent: None,
                name: String::new(),
                owner: Owner::Local,
                entries: BTreeMap::new(),
                data: BTreeMap::new(),
            },
        );
        Tree {
            contexts,
            next_id: 1,
            leases: HashMap::new(),
            lease,
            data_index: HashMap::new(),
            removed: Vec::new(),
            names: HashMap::new(),
            owned: HashMap::new(),
            max_entries: usize::MAX,
        }
    }

    /// Entries (contexts, objects, class offers, data entries) nodes own.
    pub(crate) fn entries(&self) -> usize {
        self.owned.values().sum()
    }

    /// The same tree letting each node own at most `max` entries.
    pub(crate) fn with_quota(mut self, max: usize) -> Tree {
        self.max_entries = max;
        self
    }

    /// Refuses `n` more entries of `owner` when they would exceed its quota.
    fn check_quota(&self, owner: Owner, n: usize) -> Result<(), NameError> {
        let Owner::Node(node) = owner else {
            return Ok(());
        };
        let have = self.owned.get(&node).copied().unwrap_or(0);
        if have.saturating_add(n) > self.max_entries {
            return Err(NameError::QuotaExceeded {
                have: u64::try_from(have).unwrap_or(u64::MAX),
                max: u64::try_from(self.max_entries).unwrap_or(u64::MAX),
            });
        }
        Ok(())
    }

    /// Counts `n` more (`add`) or fewer entries of `owner`.
    fn count(&mut self, owner: Owner, n: usize, add: bool) {
        let Owner::Node(node) = owner else { return };
        let c = self.owned.entry(node).or_insert(0);
        *c = if add {
            c.saturating_add(n)
        } else {
            c.saturating_sub(n)
        };
        if *c == 0 {
            self.owned.remove(&node);
        }
    }

    /// Entries `node` owns now.
    #[cfg(test)]
    pub(crate) fn owned_by(&self, node: NodeId) -> usize {
        self.owned.get(&node).copied().unwrap_or(0)
    }

    /// The lease time granted.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// True if the context exists.
    pub(crate) fn contains(&self, id: ContextId) -> bool {
        self.contexts.contains_key(&id)
    }

    /// Contexts removed since the last call.
    pub(crate) fn take_removed(&mut self) -> Vec<ContextId> {
        std::mem::take(&mut self.removed)
    }

    fn ctx(&self, id: ContextId) -> Result<&Context, NameError> {
        self.contexts.get(&id).ok_or_else(gone)
    }

    fn ctx_mut(&mut self, id: ContextId) -> Result<&mut Context, NameError> {
        self.contexts.get_mut(&id).ok_or_else(gone)
    }

    /// The context reached from `at` through `components`, all of which must be contexts.
    fn walk(&self, at: ContextId, components: &[String]) -> Result<ContextId, NameError> {
        let mut cur = at;
        for (i, c) in components.iter().enumerate() {
            match self.ctx(cur)?.entries.get(c) {
                None => {
                    return Err(NameError::NotFound {
                        component: c.clone(),
                        context: join_all(&components[..i]),
                    });
                }
                Some(Slot::Context(id)) => cur = *id,
                Some(other) => {
                    return Err(NameError::NotAContext {
                        path: join_all(&components[..=i]),
                        kind: other.kind(),
                    });
                }
            }
        }
        Ok(cur)
    }

    /// The parent context of the last component of `path`, and that component.
    fn parent_of<'p>(
        &self,
        at: ContextId,
        path: &'p Path,
    ) -> Result<(ContextId, &'p str), NameError> {
        let (parent, last) = path.split_last().ok_or_else(|| NameError::InvalidName {
            name: String::new(),
            reason: "empty path: a name is needed".into(),
        })?;
        Ok((self.walk(at, parent)?, last))
    }

    fn touch(&mut self, who: &Actor, now: Instant) {
        if let Owner::Node(n) = who.owner {
            self.leases.insert(n, now + self.lease);
            if let Some(name) = &who.name {
                self.names.insert(n, Arc::clone(name));
            }
        }
    }

    /// True when `who` may change an entry owned by `owner`: its owner (the
    /// same node, or over TLS a node with the same certificate name), an
    /// administrator, or the name server itself.
    fn may_change(&self, owner: Owner, who: &Actor) -> bool {
        match (who.owner, owner) {
            (Owner::Local, _) => true,
            _ if who.admin => true,
            (Owner::Node(_), Owner::Local) => false,
            (Owner::Node(n), Owner::Node(o)) => {
                n == o
                    || who
                        .name
                        .as_ref()
                        .is_some_and(|name| self.names.get(&o) == Some(name))
            }
        }
    }

    /// Refuses `who` a change of an entry of `owner` at `path`.
    fn check_change(&self, owner: Owner, who: &Actor, path: &str) -> Result<(), NameError> {
        if self.may_change(owner, who) {
            return Ok(());
        }
        Err(NameError::PermissionDenied {
            path: path.to_owned(),
            reason: "it belongs to another node (only its owner or an administrator may change it)"
                .into(),
        })
    }

    /// Refuses `who` a new entry in context `ctx` unless the context is the
    /// root or may be changed by `who`.
    fn check_add(&self, ctx: ContextId, who: &Actor, path: &Path) -> Result<(), NameError> {
        if ctx == ROOT || self.may_change(self.ctx(ctx)?.owner, who) {
            return Ok(());
        }
        Err(NameError::PermissionDenied {
            path: path.to_string(),
            reason: "the context belongs to another node".into(),
        })
    }

    /// Binds `cap` under `path`; with `replace`, an object bound there is replaced.
    pub(crate) fn bind(
        &mut self,
        at: ContextId,
        path: &Path,
        cap: Capability,
        who: impl Into<Actor>,
        now: Instant,
        replace: bool,
    ) -> Result<(), NameError> {
        let who = who.into();
        let (parent, last) = self.parent_of(at, path)?;
        let replaced = match self.ctx(parent)?.entries.get(last) {
            None => {
                self.check_add(parent, &who, path)?;
                None
            }
            Some(Slot::Object { owner, .. }) if replace => {
                self.check_change(*owner, &who, &path.to_string())?;
                Some(*owner)
            }
            Some(other) => {
                return Err(NameError::AlreadyBound {
                    path: path.to_string(),
                    kind: other.kind(),
                });
            }
        };
        let owner = who.owner;
        if replaced != Some(owner) {
            self.check_quota(owner, 1)?;
            self.count(owner, 1, true);
            if let Some(old) = replaced {
                self.count(old, 1, false);
            }
        }
        self.ctx_mut(parent)?
            .entries
            .insert(last.to_owned(), Slot::Object { cap, owner });
        self.touch(&who, now);
        Ok(())
    }

    /// Removes the object, class or empty context bound under `path`.
    pub(crate) fn unbind(
        &mut self,
        at: ContextId,
        path: &Path,
        who: impl Into<Actor>,
    ) -> Result<(), NameError> {
        let who = who.into();
        let (parent, last) = self.parent_of(at, path)?;
        let shown = path.to_string();
        let (child, owners) = match self.ctx(parent)?.entries.get(last) {
            None => {
                return Err(NameError::NotFound {
                    component: last.to_owned(),
                    context: parent_path(path),
                });
            }
            Some(Slot::Context(id)) => {
                let owner = self.ctx(*id)?.owner;
                self.check_change(owner, &who, &shown)?;
                (Some(*id), vec![owner])
            }
            Some(Slot::Object { owner, .. }) => {
                self.check_change(*owner, &who, &shown)?;
                (None, vec![*owner])
            }
            Some(Slot::Class(offers)) => {
                for o in offers {
                    self.check_change(o.owner, &who, &shown)?;
                }
                (None, offers.iter().map(|o| o.owner).collect())
            }
        };
        if let Some(id) = child {
            if !self.ctx(id)?.is_empty() {
                return Err(NameError::NotEmpty {
                    path: path.to_string(),
                });
            }
            self.contexts.remove(&id);
            self.removed.push(id);
        }
        self.ctx_mut(parent)?.entries.remove(last);
        for o in owners {
            self.count(o, 1, false);
        }
        Ok(())
    }

    /// What `path` is bound to; the empty path is `at` itself.
    pub(crate) fn resolve(&self, at: ContextId, path: &Path) -> Result<Target, NameError> {
        let Some((parent, last)) = path.split_last() else {
            self.ctx(at)?;
            return Ok(Target::Context(at));
        };
        let parent_id = self.walk(at, parent)?;
        match self.ctx(parent_id)?.entries.get(last) {
            None => Err(NameError::NotFound {
                component: last.to_owned(),
                context: join_all(parent),
            }),
            Some(Slot::Object { cap, .. }) => Ok(Target::Object(cap.clone())),
            Some(Slot::Context(id)) => Ok(Target::Context(*id)),
            Some(Slot::Class(_)) => Err(NameError::NotAnObject {
                path: path.to_string(),
            }),
        }
    }

    /// The entries of the context at `path`, sorted by name.
    pub(crate) fn list(&self, at: ContextId, path: &Path) -> Result<Vec<Entry>, NameError> {
        let id = self.walk(at, path.components())?;
        Ok(self
            .ctx(id)?
            .entries
            .iter()
            .map(|(name, slot)| Entry {
                name: name.clone(),
                kind: slot.kind(),
            })
            .collect())
    }

    /// Creates an empty context under `path`, owned by `owner`; a remote
    /// owner asking for a context it already owns gets that context.
    pub(crate) fn create_context(
        &mut self,
        at: ContextId,
        path: &Path,
        who: impl Into<Actor>,
        now: Instant,
    ) -> Result<ContextId, NameError> {
        let who = who.into();
        let owner = who.owner;
        let (parent, last) = self.parent_of(at, path)?;
        match self.ctx(parent)?.entries.get(last) {
            None => self.check_add(parent, &who, path)?,
            // The same node asking again (say, restarted with a fixed node id
            // before its lease ran out) gets its own context back.
            Some(Slot::Context(id))
                if matches!(owner, Owner::Node(_)) && self.ctx(*id)?.owner == owner =>
            {
                let id = *id;
                self.touch(&who, now);
                return Ok(id);
            }
            Some(other) => {
                return Err(NameError::AlreadyBound {
                    path: path.to_string(),
                    kind: other.kind(),
                });
            }
        }
        self.check_quota(owner, 1)?;
        self.count(owner, 1, true);
        let id = ContextId(self.next_id);
        self.next_id += 1;
        self.contexts.insert(
            id,
            Context {
                parent: Some(parent),
                name: last.to_owned(),
                owner,
                entries: BTreeMap::new(),
                data: BTreeMap::new(),
            },
        );
        self.ctx_mut(parent)?
            .entries
            .insert(last.to_owned(), Slot::Context(id));
        self.touch(&who, now);
        Ok(id)
    }

    /// Removes the empty context at `path`.
    pub(crate) fn destroy_context(
        &mut self,
        at: ContextId,
        path: &Path,
        who: impl Into<Actor>,
    ) -> Result<(), NameError> {
        let (parent, last) = self.parent_of(at, path)?;
        match self.ctx(parent)?.entries.get(last) {
            None => Err(NameError::NotFound {
                component: last.to_owned(),
                context: parent_path(path),
            }),
            Some(Slot::Context(_)) => self.unbind(at, path, who),
            Some(other) => Err(NameError::NotAContext {
                path: path.to_string(),
                kind: other.kind(),
            }),
        }
    }

    /// Records that `offer` offers the class named by the last component of `path`.
    pub(crate) fn register_class(
        &mut self,
        at: ContextId,
        path: &Path,
        offer: ComHandle,
        who: impl Into<Actor>,
        now: Instant,
    ) -> Result<(), NameError> {
        let who = who.into();
        let owner = who.owner;
        let (parent, last) = self.parent_of(at, path)?;
        self.check_add(parent, &who, path)?;
        // A node offering again replaces its old offer: no new entry.
        let again: Vec<Owner> = match self.ctx(parent)?.entries.get(last) {
            Some(Slot::Class(offers)) => offers
                .iter()
                .filter(|o| o.handle.node == offer.node)
                .map(|o| o.owner)
                .collect(),
            _ => Vec::new(),
        };
        if !again.contains(&owner) {
            self.check_quota(owner, 1)?;
        }
        let ctx = self.ctx_mut(parent)?;
        match ctx.entries.get_mut(last) {
            None => {
                ctx.entries.insert(
                    last.to_owned(),
                    Slot::Class(vec![Offer {
                        handle: offer,
                        owner,
                    }]),
                );
            }
            Some(Slot::Class(offers)) => {
                // One offer per node: a node offering again replaces its old offer.
                offers.retain(|o| o.handle.node != offer.node);
                offers.push(Offer {
                    handle: offer,
                    owner,
                });
            }
            Some(other) => {
                return Err(NameError::AlreadyBound {
                    path: path.to_string(),
                    kind: other.kind(),
                });
            }
        }
        for o in again {
            self.count(o, 1, false);
        }
        self.count(owner, 1, true);
        self.touch(&who, now);
        Ok(())
    }

    /// The nodes offering `class` in `at` or any context below it, each once.
    pub(crate) fn find_class(
        &self,
        at: ContextId,
        class: &str,
    ) -> Result<Vec<ComHandle>, NameError> {
        check_component(class)?;
        let mut found: Vec<ComHandle> = Vec::new();
        let mut stack = vec![at];
        self.ctx(at)?;
        while let Some(id) = stack.pop() {
            let Some(ctx) = self.contexts.get(&id) else {
                continue;
            };
            for (name, slot) in &ctx.entries {
                match slot {
                    Slot::Context(child) => stack.push(*child),
                    Slot::Class(offers) if name == class => {
                        for o in offers {
                            if !found.iter().any(|h| h.node == o.handle.node) {
                                found.push(o.handle.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(found)
    }

    /// Records that `handle` keeps the data `ids`, in the context at `path`
    /// from `at`; an id recorded elsewhere moves here if `who` may change
    /// its entry or is the node it is being handed over to. All or nothing.
    pub(crate) fn add_data(
        &mut self,
        at: ContextId,
        path: &Path,
        ids: Vec<DataId>,
        handle: &ComHandle,
        who: impl Into<Actor>,
        now: Instant,
    ) -> Result<(), NameError> {
        let who = who.into();
        let owner = who.owner;
        if ids.len() > MAX_DATA_IDS_PER_CALL {
            return Err(NameError::TooManyIds {
                count: u64::try_from(ids.len()).unwrap_or(u64::MAX),
                max: MAX_DATA_IDS_PER_CALL as u64,
            });
        }
        let target = self.walk(at, path.components())?;
        // `walk` checks the contexts it passes through, not `at` itself.
        self.ctx(target)?;
        if ids.is_empty() {
            return Ok(());
        }
        self.check_add(target, &who, path)?;
        for id in &ids {
            if let Some(e) = self.entry(*id)
                && !self.may_change(e.owner, &who)
                && (e.handover.is_none() || e.handover != who.node())
            {
                return Err(NameError::PermissionDenied {
                    path: id.to_string(),
                    reason: "the data is recorded by another node, which has not handed it over"
                        .into(),
                });
            }
        }
        let mut new_ids: Vec<DataId> = ids
            .iter()
            .filter(|id| self.entry(**id).is_none_or(|e| e.owner != owner))
            .copied()
            .collect();
        new_ids.sort();
        new_ids.dedup();
        self.check_quota(owner, new_ids.len())?;
        // One location per id: drop the entries these ids had elsewhere.
        for id in &new_ids {
            if let Some(old) = self.entry(*id).map(|e| e.owner) {
                self.count(old, 1, false);
            }
        }
        self.count(owner, new_ids.len(), true);
        for id in &ids {
            if let Some(&old) = self.data_index.get(id)
                && old != target
                && let Some(ctx) = self.contexts.get_mut(&old)
            {
                ctx.data.remove(id);
            }
        }
        let ctx = self.ctx_mut(target)?;
        for id in &ids {
            let entry = DataEntry {
                handle: handle.clone(),
                owner,
                handover: None,
            };
            ctx.data.insert(*id, entry);
        }
        self.data_index
            .extend(ids.into_iter().map(|id| (id, target)));
        self.touch(&who, now);
        Ok(())
    }

    /// The entry of `id`, wherever it is.
    fn entry(&self, id: DataId) -> Option<&DataEntry> {
        let at = self.data_index.get(&id)?;
        self.contexts.get(at)?.data.get(&id)
    }

    /// Lets `to` record `ids` in place of their current entries (the data
    /// mover of the node keeping them starts a move to `to`).
    pub(crate) fn hand_over(
        &mut self,
        ids: &[DataId],
        to: NodeId,
        who: impl Into<Actor>,
    ) -> Result<(), NameError> {
        let who = who.into();
        for id in ids {
            let e = self.entry(*id).ok_or(NameError::NoSuchData { id: *id })?;
            let keeper = Some(e.handle.node) == who.node();
            if !keeper && !self.may_change(e.owner, &who) {
                return Err(NameError::PermissionDenied {
                    path: id.to_string(),
                    reason: "only the node keeping the data, the node that recorded it or an administrator may hand it over".into(),
                });
            }
        }
        for id in ids {
            if let Some(at) = self.data_index.get(id).copied()
                && let Some(e) = self.contexts.get_mut(&at).and_then(|c| c.data.get_mut(id))
            {
                e.handover = Some(to);
            }
        }
        Ok(())
    }

    /// Removes the entry of `id` if the node it names as keeping the data is
    /// `caller` (or `admin`); true if it did.
    pub(crate) fn remove_data(&mut self, id: DataId, caller: NodeId, admin: bool) -> bool {
        let Some(at) = self.data_index.get(&id).copied() else {
            return false;
        };
        let Some(ctx) = self.contexts.get_mut(&at) else {
            return false;
        };
        match ctx.data.get(&id) {
            Some(e) if admin || e.handle.node == caller => {
                let owner = e.owner;
                ctx.data.remove(&id);
                self.data_index.remove(&id);
                self.count(owner, 1, false);
                true
            }
            _ => false,
        }
    }

    /// Where `id` is recorded, found through the index.
    pub(crate) fn locate(&self, id: DataId) -> Result<DataLocation, NameError> {
        let missing = || NameError::NoSuchData { id };
        let at = *self.data_index.get(&id).ok_or_else(missing)?;
        let entry = self.ctx(at)?.data.get(&id).ok_or_else(missing)?;
        Ok(DataLocation {
            id,
            owner: entry.handle.clone(),
            context: self.path_of(at),
            handover: entry.handover,
        })
    }

    /// Every data entry in the context at `path` from `at` and below, sorted by id.
    pub(crate) fn list_data(
        &self,
        at: ContextId,
        path: &Path,
    ) -> Result<Vec<DataLocation>, NameError> {
        let start = self.walk(at, path.components())?;
        self.ctx(start)?;
        let mut found = Vec::new();
        let mut stack = vec![(start, self.path_of(start))];
        while let Some((id, ctx_path)) = stack.pop() {
            let Some(ctx) = self.contexts.get(&id) else {
                continue;
            };
            found.extend(ctx.data.iter().map(|(data_id, e)| DataLocation {
                id: *data_id,
                owner: e.handle.clone(),
                context: ctx_path.clone(),
                handover: e.handover,
            }));
            for (name, slot) in &ctx.entries {
                if let Slot::Context(child) = slot {
                    stack.push((*child, join(&ctx_path, name)));
                }
            }
        }
        found.sort_by_key(|d| d.id);
        Ok(found)
    }

    /// The absolute path of context `id` (`""` for the root).
    fn path_of(&self, id: ContextId) -> String {
        let mut names = Vec::new();
        let mut cur = self.contexts.get(&id);
        while let Some(ctx) = cur {
            let Some(parent) = ctx.parent else { break };
            names.push(ctx.name.clone());
            cur = self.contexts.get(&parent);
        }
        names.reverse();
        join_all(&names)
    }

    /// Extends `node`'s lease; false if it has none (it must register again).
    pub(crate) fn renew(&mut self, node: NodeId, now: Instant) -> bool {
        match self.leases.get_mut(&node) {
            Some(until) if *until > now => {
                *until = now + self.lease;
                true
            }
            _ => false,
        }
    }

    /// True if some lease has run out by `now`.
    pub(crate) fn has_expired(&self, now: Instant) -> bool {
        self.leases.values().any(|until| *until <= now)
    }

    /// Removes everything owned by nodes whose lease ran out by `now`; returns
    /// those nodes with the number of entries removed for each.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(NodeId, usize)> {
        let expired: Vec<NodeId> = self
            .leases
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(n, _)| *n)
            .collect();
        expired.into_iter().map(|n| (n, self.release(n))).collect()
    }

    /// Removes everything `node` owns and ends its lease; returns the number of
    /// entries removed (contexts count with everything inside them).
    pub(crate) fn release(&mut self, node: NodeId) -> usize {
        self.leases.remove(&node);
        self.names.remove(&node);
        let owner = Owner::Node(node);
        let mut removed = 0;
        // Its contexts first, with their whole subtree (even entries of other
        // nodes: they lived in a context that no longer exists).
        let mut owned: Vec<ContextId> = self
            .contexts
            .iter()
            .filter(|(id, c)| **id != ROOT && c.owner == owner)
            .map(|(id, _)| *id)
            .collect();
        owned.sort();
        for id in owned {
            let Some(parent) = self.contexts.get(&id).and_then(|c| c.parent) else {
                continue; // already removed with an ancestor
            };
            if let Some(p) = self.contexts.get_mut(&parent) {
                p.entries
                    .retain(|_, s| !matches!(s, Slot::Context(c) if *c == id));
            }
            removed += self.remove_subtree(id);
        }
        // Everything it owns goes now (`remove_subtree` counted off what
        // other nodes owned inside its contexts).
        self.owned.remove(&node);
        // Then its objects and class offers in everybody else's contexts.
        for ctx in self.contexts.values_mut() {
            ctx.entries.retain(|_, slot| match slot {
                Slot::Object { owner: o, .. } if *o == owner => {
                    removed += 1;
                    false
                }
                Slot::Class(offers) => {
                    let before = offers.len();
                    offers.retain(|o| o.owner != owner);
                    removed += before - offers.len();
                    !offers.is_empty()
                }
                _ => true,
            });
        }
        // And its data entries, wherever they are.
        let index = &mut self.data_index;
        for ctx in self.contexts.values_mut() {
            ctx.data.retain(|id, e| {
                if e.owner != owner {
                    return true;
                }
                index.remove(id);
                removed += 1;
                false
            });
        }
        removed
    }

    /// Removes context `id` and every context below it; returns the number of
    /// entries removed, `id` included.
    fn remove_subtree(&mut self, id: ContextId) -> usize {
        let mut count = 0;
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            let Some(ctx) = self.contexts.remove(&id) else {
                continue;
            };
            self.removed.push(id);
            count += 1 + ctx.data.len();
            self.count(ctx.owner, 1, false);
            for (data_id, e) in &ctx.data {
                self.data_index.remove(data_id);
                self.count(e.owner, 1, false);
            }
            for slot in ctx.entries.values() {
                match slot {
                    Slot::Context(child) => stack.push(*child),
                    Slot::Object { owner, .. } => {
                        count += 1;
                        self.count(*owner, 1, false);
                    }
                    Slot::Class(offers) => {
                        count += offers.len();
                        for o in offers {
                            self.count(o.owner, 1, false);
                        }
                    }
                }
            }
        }
        count
    }
}

/// The path of the context holding the last component of `path`.
fn parent_path(path: &Path) -> String {
    path.split_last()
        .map(|(parent, _)| join_all(parent))
        .unwrap_or_default()
}

/// The error for an operation on a context that was removed meanwhile.
fn gone() -> NameError {
    NameError::NotFound {
        component: ".".into(),
        context: "(a context removed meanwhile)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpc_core::{ClassId, ClassVersion, ObjectId};

    const LEASE: Duration = Duration::from_secs(30);

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    fn node() -> NodeId {
        NodeId::random()
    }

    fn cap(home: NodeId) -> Capability {
        Capability {
            object: ObjectId::random(),
            class: ClassId(1),
            version: ClassVersion(1),
            home: ComHandle {
                node: home,
                addr: Some("127.0.0.1:1".into()),
            },
        }
    }

    /// An administrator on node `n`: may change what other nodes own.
    fn admin(n: NodeId) -> Actor {
        Actor {
            owner: Owner::Node(n),
            name: None,
            admin: true,
        }
    }

    fn handle(n: NodeId) -> ComHandle {
        ComHandle {
            node: n,
            addr: Some("127.0.0.1:2".into()),
        }
    }

    fn names(t: &Tree, at: ContextId, path: &str) -> Vec<(String, EntryKind)> {
        t.list(at, &p(path))
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect()
    }

    #[test]
    fn nested_contexts_three_levels_deep() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let o = Owner::Local;
        let a = t.create_context(ROOT, &p("a"), o, now).unwrap();
        let b = t.create_context(ROOT, &p("a/b"), o, now).unwrap();
        let c = t.create_context(a, &p("b/c"), o, now).unwrap();
        let x = cap(node());
        t.bind(ROOT, &p("a/b/c/x"), x.clone(), o, now, false)
            .unwrap();
        assert_eq!(
            t.resolve(ROOT, &p("a/b/c/x")).unwrap(),
            Target::Object(x.clone())
        );
        // The same object, reached from an inner context.
        assert_eq!(t.resolve(b, &p("c/x")).unwrap(), Target::Object(x.clone()));
        assert_eq!(t.resolve(c, &p("x")).unwrap(), Target::Object(x));
        assert_eq!(t.resolve(ROOT, &p("a/b")).unwrap(), Target::Context(b));
        assert_eq!(t.resolve(c, &p("")).unwrap(), Target::Context(c));
        assert_eq!(
            names(&t, ROOT, "a/b"),
            [("c".to_owned(), EntryKind::Context)]
        );
    }

    #[test]
    fn list_gives_each_kind_sorted_by_name() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let n = node();
        t.create_context(ROOT, &p("dbserver"), Owner::Node(n), now)
            .unwrap();
        t.bind(ROOT, &p("dbserver/db"), cap(n), Owner::Node(n), now, false)
            .unwrap();
        t.register_class(
            ROOT,
            &p("dbserver/db.Table"),
            handle(n),
            Owner::Node(n),
            now,
        )
        .unwrap();
        t.create_context(ROOT, &p("dbserver/tables"), Owner::Node(n), now)
            .unwrap();
        assert_eq!(
            names(&t, ROOT, "dbserver"),
            [
                ("db".to_owned(), EntryKind::Object),
                ("db.Table".to_owned(), EntryKind::Class),
                ("tables".to_owned(), EntryKind::Context),
            ]
        );
        assert_eq!(names(&t, ROOT, "dbserver/tables"), []);
    }

    #[test]
    fn not_found_names_the_first_missing_component() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        t.create_context(ROOT, &p("a"), Owner::Local, now).unwrap();
        t.create_context(ROOT, &p("a/b"), Owner::Local, now)
            .unwrap();
        let e = t.resolve(ROOT, &p("a/b/c/d")).unwrap_err();
        assert_eq!(
            e,
            NameError::NotFound {
                component: "c".into(),
                context: "a/b".into()
            }
        );
        let e = t.resolve(ROOT, &p("zz/b")).unwrap_err();
        assert_eq!(
            e,
            NameError::NotFound {
                component: "zz".into(),
                context: String::new()
            }
        );
        let e = t.unbind(ROOT, &p("a/nope"), Owner::Local).unwrap_err();
        assert!(
            matches!(e, NameError::NotFound { component, context } if component == "nope" && context == "a")
        );
        let e = t
            .bind(ROOT, &p("a/x/y"), cap(node()), Owner::Local, now, false)
            .unwrap_err();
        assert!(matches!(e, NameError::NotFound { component, .. } if component == "x"));
        assert!(matches!(
            t.list(ROOT, &p("q")),
            Err(NameError::NotFound { .. })
        ));
        assert!(matches!(
            t.destroy_context(ROOT, &p("a/q"), Owner::Local),
            Err(NameError::NotFound { .. })
        ));
    }

    #[test]
    fn already_bound_for_every_kind() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let o = Owner::Local;
        t.create_context(ROOT, &p("ctx"), o, now).unwrap();
        t.bind(ROOT, &p("obj"), cap(node()), o, now, false).unwrap();
        t.register_class(ROOT, &p("cls"), handle(node()), o, now)
            .unwrap();
        for name in ["ctx", "obj", "cls"] {
            let e = t
                .bind(ROOT, &p(name), cap(node()), o, now, false)
                .unwrap_err();
            assert!(matches!(e, NameError::AlreadyBound { .. }), "{name}: {e}");
            let e = t.create_context(ROOT, &p(name), o, now).unwrap_err();
            assert!(matches!(e, NameError::AlreadyBound { .. }), "{name}: {e}");
        }
        // rebind replaces objects only.
        let fresh = cap(node());
        t.bind(ROOT, &p("obj"), fresh.clone(), o, now, true)
            .unwrap();
        assert_eq!(t.resolve(ROOT, &p("obj")).unwrap(), Target::Object(fresh));
        for (name, kind) in [("ctx", EntryKind::Context), ("cls", EntryKind::Class)] {
            let e = t
                .bind(ROOT, &p(name), cap(node()), o, now, true)
                .unwrap_err();
            assert_eq!(
                e,
                NameError::AlreadyBound {
                    path: name.into(),
                    kind
                }
            );
        }
        let e = t
            .register_class(ROOT, &p("obj"), handle(node()), o, now)
            .unwrap_err();
        assert!(matches!(
            e,
            NameError::AlreadyBound {
                kind: EntryKind::Object,
                ..
            }
        ));
    }

    #[test]
    fn not_a_context_and_not_an_object() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let o = Owner::Local;
        t.bind(ROOT, &p("obj"), cap(node()), o, now, false).unwrap();
        t.register_class(ROOT, &p("cls"), handle(node()), o, now)
            .unwrap();
        let e = t.resolve(ROOT, &p("obj/x")).unwrap_err();
        assert_eq!(
            e,
            NameError::NotAContext {
                path: "obj".into(),
                kind: EntryKind::Object
            }
        );
        assert!(matches!(
            t.list(ROOT, &p("cls")),
            Err(NameError::NotAContext {
                kind: EntryKind::Class,
                ..
            })
        ));
        assert!(matches!(
            t.destroy_context(ROOT, &p("obj"), Owner::Local),
            Err(NameError::NotAContext { .. })
        ));
        assert!(matches!(
            t.create_context(ROOT, &p("obj/sub"), o, now),
            Err(NameError::NotAContext { .. })
        ));
        assert_eq!(
            t.resolve(ROOT, &p("cls")).unwrap_err(),
            NameError::NotAnObject { path: "cls".into() }
        );
    }

    #[test]
    fn empty_paths_are_invalid_where_a_name_is_needed() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let e = t
            .bind(ROOT, &p(""), cap(node()), Owner::Local, now, false)
            .unwrap_err();
        assert!(matches!(e, NameError::InvalidName { .. }));
        assert!(matches!(
            t.create_context(ROOT, &p(""), Owner::Local, now),
            Err(NameError::InvalidName { .. })
        ));
        assert!(matches!(
            t.destroy_context(ROOT, &p(""), Owner::Local),
            Err(NameError::InvalidName { .. })
        ));
        assert!(matches!(
            t.find_class(ROOT, "bad name"),
            Err(NameError::InvalidName { .. })
        ));
    }

    #[test]
    fn destroy_and_unbind_refuse_non_empty_contexts() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let o = Owner::Local;
        let a = t.create_context(ROOT, &p("a"), o, now).unwrap();
        t.bind(ROOT, &p("a/x"), cap(node()), o, now, false).unwrap();
        assert_eq!(
            t.destroy_context(ROOT, &p("a"), Owner::Local).unwrap_err(),
            NameError::NotEmpty { path: "a".into() }
        );
        assert!(matches!(
            t.unbind(ROOT, &p("a"), Owner::Local),
            Err(NameError::NotEmpty { .. })
        ));
        t.unbind(ROOT, &p("a/x"), Owner::Local).unwrap();
        t.destroy_context(ROOT, &p("a"), Owner::Local).unwrap();
        assert!(!t.contains(a));
        assert_eq!(t.take_removed(), [a]);
        assert!(names(&t, ROOT, "").is_empty());
        // A stale handle to the removed context fails cleanly.
        assert!(matches!(t.list(a, &p("")), Err(NameError::NotFound { .. })));
    }

    #[test]
    fn class_offers_from_several_nodes_are_found_from_above() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let (n1, n2) = (node(), node());
        t.create_context(ROOT, &p("one"), Owner::Node(n1), now)
            .unwrap();
        t.create_context(ROOT, &p("two"), Owner::Node(n2), now)
            .unwrap();
        t.create_context(ROOT, &p("two/deep"), Owner::Node(n2), now)
            .unwrap();
        t.register_class(ROOT, &p("one/db.Table"), handle(n1), Owner::Node(n1), now)
            .unwrap();
        t.register_class(
            ROOT,
            &p("two/deep/db.Table"),
            handle(n2),
            Owner::Node(n2),
            now,
        )
        .unwrap();
        // Another node may not offer a class in n1's context...
        let e = t
            .register_class(ROOT, &p("one/db.Table"), handle(n2), Owner::Node(n2), now)
            .unwrap_err();
        assert!(matches!(e, NameError::PermissionDenied { .. }), "{e:?}");
        // ...but both may in a shared one: two offers in one context, and
        // the same node offering twice.
        t.register_class(ROOT, &p("db.Table"), handle(n1), Owner::Node(n1), now)
            .unwrap();
        t.register_class(ROOT, &p("db.Table"), handle(n2), Owner::Node(n2), now)
            .unwrap();
        t.register_class(ROOT, &p("db.Table"), handle(n2), Owner::Node(n2), now)
            .unwrap();
        let mut found: Vec<NodeId> = t
            .find_class(ROOT, "db.Table")
            .unwrap()
            .into_iter()
            .map(|h| h.node)
            .collect();
        found.sort();
        let mut want = vec![n1, n2];
        want.sort();
        assert_eq!(found, want);
        let two = match t.resolve(ROOT, &p("two")).unwrap() {
            Target::Context(id) => id,
            other => panic!("{other:?}"),
        };
        let only: Vec<_> = t.find_class(two, "db.Table").unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].node, n2);
        assert!(t.find_class(ROOT, "db.Cell").unwrap().is_empty());
        // n2 leaving removes its offers but keeps n1's.
        t.release(n2);
        let left: Vec<_> = t.find_class(ROOT, "db.Table").unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].node, n1);
        assert_eq!(
            names(&t, ROOT, "one"),
            [("db.Table".to_owned(), EntryKind::Class)]
        );
    }

    #[test]
    fn lease_expiry_removes_a_nodes_context_and_bindings() {
        let lease = Duration::from_millis(500);
        let mut t = Tree::new(lease);
        let t0 = Instant::now();
        let (dead, alive) = (node(), node());
        let ctx = t
            .create_context(ROOT, &p("client-dead"), Owner::Node(dead), t0)
            .unwrap();
        let sub = t
            .create_context(ROOT, &p("client-dead/sub"), Owner::Node(dead), t0)
            .unwrap();
        t.bind(
            ROOT,
            &p("client-dead/sub/x"),
            cap(dead),
            Owner::Node(dead),
            t0,
            false,
        )
        .unwrap();
        t.create_context(ROOT, &p("client-alive"), Owner::Node(alive), t0)
            .unwrap();
        // The dead node also bound into another node's context (as an
        // administrator), and a server-owned one.
        t.bind(
            ROOT,
            &p("client-alive/from-dead"),
            cap(dead),
            admin(dead),
            t0,
            false,
        )
        .unwrap();
        t.bind(ROOT, &p("pinned"), cap(dead), Owner::Local, t0, false)
            .unwrap();
        // An entry of the live node inside the dead node's context goes with it.
        t.bind(
            ROOT,
            &p("client-dead/guest"),
            cap(alive),
            admin(alive),
            t0,
            false,
        )
        .unwrap();

        // Only `alive` renews.
        let t1 = t0 + lease / 2;
        assert!(t.renew(alive, t1));
        assert!(!t.has_expired(t1));
        assert!(t.expire(t1).is_empty());

        let t2 = t0 + lease;
        assert!(t.has_expired(t2));
        let gone = t.expire(t2);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, dead);
        // two contexts, x, guest, from-dead
        assert_eq!(gone[0].1, 5);
        let mut removed = t.take_removed();
        removed.sort();
        assert_eq!(removed, [ctx, sub]);
        assert_eq!(
            names(&t, ROOT, ""),
            [
                ("client-alive".to_owned(), EntryKind::Context),
                ("pinned".to_owned(), EntryKind::Object),
            ]
        );
        assert!(names(&t, ROOT, "client-alive").is_empty());
        // The dead node is unknown now: renewing tells it to register again.
        assert!(!t.renew(dead, t2));
        assert!(t.renew(alive, t2));
        // Local entries never expire.
        let later = t2 + lease * 10;
        t.expire(later);
        assert_eq!(
            names(&t, ROOT, ""),
            [("pinned".to_owned(), EntryKind::Object)]
        );
    }

    #[test]
    fn changes_extend_the_lease_and_late_renewals_are_refused() {
        let lease = Duration::from_millis(100);
        let mut t = Tree::new(lease);
        let t0 = Instant::now();
        let n = node();
        assert!(!t.renew(n, t0), "no lease before the first change");
        t.create_context(ROOT, &p("c"), Owner::Node(n), t0).unwrap();
        // A later change extends the lease.
        let t1 = t0 + Duration::from_millis(80);
        t.bind(ROOT, &p("c/x"), cap(n), Owner::Node(n), t1, false)
            .unwrap();
        let t2 = t0 + Duration::from_millis(150);
        assert!(!t.has_expired(t2));
        assert!(t.renew(n, t2));
        // Renewing after expiry but before a sweep is refused: the entries are
        // about to go, so the node must register again.
        let t3 = t2 + lease;
        assert!(!t.renew(n, t3));
        t.expire(t3);
        assert!(names(&t, ROOT, "").is_empty());
    }

    #[test]
    fn a_node_creating_its_own_context_again_gets_it_back() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let (n, other) = (node(), node());
        let c = t
            .create_context(ROOT, &p("dbserver"), Owner::Node(n), now)
            .unwrap();
        t.bind(ROOT, &p("dbserver/db"), cap(n), Owner::Node(n), now, false)
            .unwrap();
        assert_eq!(
            t.create_context(ROOT, &p("dbserver"), Owner::Node(n), now)
                .unwrap(),
            c
        );
        assert_eq!(names(&t, ROOT, "dbserver").len(), 1);
        // Anybody else, the name server included, finds the name taken.
        for o in [Owner::Node(other), Owner::Local] {
            assert!(matches!(
                t.create_context(ROOT, &p("dbserver"), o, now),
                Err(NameError::AlreadyBound {
                    kind: EntryKind::Context,
                    ..
                })
            ));
        }
    }

    fn data(n: usize) -> Vec<DataId> {
        let mut ids: Vec<DataId> = (0..n).map(|_| DataId::random()).collect();
        ids.sort();
        ids
    }

    /// The index and the contexts' data entries agree both ways.
    fn check_index(t: &Tree) {
        let mut in_contexts = 0;
        for (cid, ctx) in &t.contexts {
            for id in ctx.data.keys() {
                assert_eq!(t.data_index.get(id), Some(cid), "{id:?} in {cid:?}");
                in_contexts += 1;
            }
        }
        assert_eq!(t.data_index.len(), in_contexts, "index has stale ids");
    }

    /// `t.add_data` from the root: `keeper` keeps `ids`, `recorder` owns the entries.
    fn record(
        t: &mut Tree,
        path: &Path,
        ids: Vec<DataId>,
        keeper: NodeId,
        recorder: impl Into<Actor>,
        now: Instant,
    ) {
        t.add_data(ROOT, path, ids, &handle(keeper), recorder, now)
            .unwrap();
    }

    fn ids_of(list: &[DataLocation]) -> Vec<DataId> {
        list.iter().map(|d| d.id).collect()
    }

    #[test]
    fn data_is_located_from_any_context() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let (db, other) = (node(), node());
        let dbctx = t
            .create_context(ROOT, &p("dbserver"), Owner::Node(db), now)
            .unwrap();
        let elsewhere = t
            .create_context(ROOT, &p("other"), Owner::Node(other), now)
            .unwrap();
        let ids = data(3);
        record(
            &mut t,
            &p("dbserver"),
            ids.clone(),
            db,
            Owner::Node(db),
            now,
        );
        check_index(&t);
        // The index answers for the whole tree, whichever context is asked.
        let found = t.locate(ids[1]).unwrap();
        assert_eq!(found.owner, handle(db));
        assert_eq!(found.context, "dbserver");
        // Listing covers the subtree of the context asked only.
        assert_eq!(ids_of(&t.list_data(ROOT, &p("")).unwrap()), ids);
        assert_eq!(ids_of(&t.list_data(dbctx, &p("")).unwrap()), ids);
        assert!(t.list_data(elsewhere, &p("")).unwrap().is_empty());
        // The empty path is the context called; the root's path is "".
        let x = data(1)[0];
        t.add_data(dbctx, &p(""), vec![x], &handle(db), Owner::Node(db), now)
            .unwrap();
        assert_eq!(t.locate(x).unwrap().context, "dbserver");
        t.add_data(ROOT, &p(""), vec![x], &handle(db), Owner::Node(db), now)
            .unwrap();
        assert_eq!(t.locate(x).unwrap().context, "");
        let unknown = DataId::random();
        assert_eq!(
            t.locate(unknown).unwrap_err(),
            NameError::NoSuchData { id: unknown }
        );
        check_index(&t);
    }

    #[test]
    fn adding_again_moves_the_entry_and_only_the_keeper_removes_it() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let (src, dst) = (node(), node());
        t.create_context(ROOT, &p("src"), Owner::Node(src), now)
            .unwrap();
        t.create_context(ROOT, &p("dst"), Owner::Node(dst), now)
            .unwrap();
        let ids = data(2);
        record(&mut t, &p("src"), ids.clone(), src, Owner::Node(src), now);
        // Without a handover the destination cannot take an entry over...
        let e = t
            .add_data(
                ROOT,
                &p("dst"),
                vec![ids[0]],
                &handle(dst),
                Owner::Node(dst),
                now,
            )
            .unwrap_err();
        assert!(matches!(e, NameError::PermissionDenied { .. }), "{e:?}");
        // ...nor hand over what it does not keep or record.
        let e = t.hand_over(&[ids[0]], dst, Owner::Node(dst)).unwrap_err();
        assert!(matches!(e, NameError::PermissionDenied { .. }), "{e:?}");
        assert_eq!(t.locate(ids[0]).unwrap().handover, None);
        // The source hands one over; the destination records it: it moves.
        t.hand_over(&[ids[0]], dst, Owner::Node(src)).unwrap();
        assert_eq!(t.locate(ids[0]).unwrap().handover, Some(dst));
        record(&mut t, &p("dst"), vec![ids[0]], dst, Owner::Node(dst), now);
        assert_eq!(t.locate(ids[0]).unwrap().handover, None);
        check_index(&t);
        let moved = t.locate(ids[0]).unwrap();
        assert_eq!((moved.owner, moved.context.as_str()), (handle(dst), "dst"));
        assert_eq!(ids_of(&t.list_data(ROOT, &p("src")).unwrap()), [ids[1]]);
        assert_eq!(ids_of(&t.list_data(ROOT, &p("dst")).unwrap()), [ids[0]]);
        // The source removing its copy leaves the destination's entry.
        assert!(!t.remove_data(ids[0], src, false));
        assert_eq!(t.locate(ids[0]).unwrap().owner, handle(dst));
        assert!(t.remove_data(ids[1], src, false));
        assert!(!t.remove_data(ids[1], src, false), "already gone");
        assert!(!t.remove_data(DataId::random(), src, false), "never known");
        assert!(t.remove_data(ids[0], dst, false));
        assert!(t.list_data(ROOT, &p("")).unwrap().is_empty());
        check_index(&t);
        // Adding the same id twice in one context keeps one entry.
        record(
            &mut t,
            &p("dst"),
            vec![ids[0], ids[0]],
            dst,
            Owner::Node(dst),
            now,
        );
        record(&mut t, &p("dst"), vec![ids[0]], dst, Owner::Node(dst), now);
        assert_eq!(t.list_data(ROOT, &p("")).unwrap().len(), 1);
        check_index(&t);
    }

    #[test]
    fn list_data_covers_a_subtree_sorted_by_id() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let o = Owner::Local;
        let a = t.create_context(ROOT, &p("a"), o, now).unwrap();
        t.create_context(ROOT, &p("a/b"), o, now).unwrap();
        t.create_context(ROOT, &p("a/b/c"), o, now).unwrap();
        t.create_context(ROOT, &p("z"), o, now).unwrap();
        let ids = data(8);
        let h = handle(node());
        t.add_data(ROOT, &p("a"), vec![ids[5], ids[0]], &h, o, now)
            .unwrap();
        t.add_data(ROOT, &p("a/b"), vec![ids[3]], &h, o, now)
            .unwrap();
        t.add_data(a, &p("b/c"), vec![ids[1], ids[7]], &h, o, now)
            .unwrap();
        t.add_data(ROOT, &p("z"), vec![ids[2]], &h, o, now).unwrap();
        t.add_data(ROOT, &p(""), vec![ids[4], ids[6]], &h, o, now)
            .unwrap();
        let in_a = t.list_data(ROOT, &p("a")).unwrap();
        assert_eq!(ids_of(&in_a), [ids[0], ids[1], ids[3], ids[5], ids[7]]);
        let contexts: Vec<&str> = in_a.iter().map(|d| d.context.as_str()).collect();
        assert_eq!(contexts, ["a", "a/b/c", "a/b", "a", "a/b/c"]);
        assert_eq!(
            ids_of(&t.list_data(a, &p("b")).unwrap()),
            [ids[1], ids[3], ids[7]]
        );
        assert_eq!(ids_of(&t.list_data(ROOT, &p("")).unwrap()), ids);
        assert!(matches!(
            t.list_data(ROOT, &p("a/nope")),
            Err(NameError::NotFound { .. })
        ));
    }

    #[test]
    fn add_data_checks_its_context_and_batch_size() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let n = node();
        let o = Owner::Node(n);
        t.bind(ROOT, &p("obj"), cap(n), o, now, false).unwrap();
        let e = t
            .add_data(ROOT, &p("nope"), data(1), &handle(n), o, now)
            .unwrap_err();
        assert!(matches!(e, NameError::NotFound { .. }), "{e:?}");
        let e = t
            .add_data(ROOT, &p("obj"), data(1), &handle(n), o, now)
            .unwrap_err();
        assert!(matches!(e, NameError::NotAContext { .. }), "{e:?}");
        let e = t
            .add_data(
                ROOT,
                &p(""),
                data(MAX_DATA_IDS_PER_CALL + 1),
                &handle(n),
                o,
                now,
            )
            .unwrap_err();
        assert_eq!(
            e,
            NameError::TooManyIds {
                count: MAX_DATA_IDS_PER_CALL as u64 + 1,
                max: MAX_DATA_IDS_PER_CALL as u64
            }
        );
        assert!(t.list_data(ROOT, &p("")).unwrap().is_empty());
        t.add_data(
            ROOT,
            &p(""),
            data(MAX_DATA_IDS_PER_CALL),
            &handle(n),
            o,
            now,
        )
        .unwrap();
        assert_eq!(
            t.list_data(ROOT, &p("")).unwrap().len(),
            MAX_DATA_IDS_PER_CALL
        );
        // Nothing to record: no error, and no lease for a node holding nothing.
        let idle = node();
        record(&mut t, &p(""), Vec::new(), idle, Owner::Node(idle), now);
        assert!(!t.renew(idle, now));
        check_index(&t);
    }

    #[test]
    fn a_context_holding_data_is_not_empty() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let o = Owner::Local;
        t.create_context(ROOT, &p("a"), o, now).unwrap();
        let id = data(1)[0];
        let n = node();
        t.add_data(ROOT, &p("a"), vec![id], &handle(n), o, now)
            .unwrap();
        assert!(
            names(&t, ROOT, "a").is_empty(),
            "data entries have no names"
        );
        assert_eq!(
            t.unbind(ROOT, &p("a"), Owner::Local).unwrap_err(),
            NameError::NotEmpty { path: "a".into() }
        );
        assert!(matches!(
            t.destroy_context(ROOT, &p("a"), Owner::Local),
            Err(NameError::NotEmpty { .. })
        ));
        assert!(t.remove_data(id, n, false));
        t.destroy_context(ROOT, &p("a"), Owner::Local).unwrap();
        check_index(&t);
    }

    #[test]
    fn data_entries_go_with_their_recorders_lease_and_context() {
        let lease = Duration::from_millis(500);
        let mut t = Tree::new(lease);
        let t0 = Instant::now();
        let (dead, alive) = (node(), node());
        t.create_context(ROOT, &p("dead"), Owner::Node(dead), t0)
            .unwrap();
        t.create_context(ROOT, &p("dead/sub"), Owner::Node(dead), t0)
            .unwrap();
        t.create_context(ROOT, &p("alive"), Owner::Node(alive), t0)
            .unwrap();
        let ids = data(6);
        // The dead node's data in its own context and below.
        record(
            &mut t,
            &p("dead"),
            vec![ids[0]],
            dead,
            Owner::Node(dead),
            t0,
        );
        record(
            &mut t,
            &p("dead/sub"),
            vec![ids[1]],
            dead,
            Owner::Node(dead),
            t0,
        );
        // ... recorded in the live node's context (a data mover's record).
        record(&mut t, &p("alive"), vec![ids[2]], alive, admin(dead), t0);
        // The live node's entries: one inside the dead node's context (gone
        // with it), one of its own.
        record(&mut t, &p("dead"), vec![ids[3]], alive, admin(alive), t0);
        record(
            &mut t,
            &p("alive"),
            vec![ids[4]],
            alive,
            Owner::Node(alive),
            t0,
        );
        // The name server's own never expire.
        t.add_data(ROOT, &p(""), vec![ids[5]], &handle(dead), Owner::Local, t0)
            .unwrap();

        assert!(t.renew(alive, t0 + lease / 2));
        let gone = t.expire(t0 + lease);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, dead);
        // two contexts and four data entries
        assert_eq!(gone[0].1, 6);
        check_index(&t);
        assert_eq!(
            ids_of(&t.list_data(ROOT, &p("")).unwrap()),
            [ids[4], ids[5]]
        );
        for id in &ids[..4] {
            assert_eq!(
                t.locate(*id).unwrap_err(),
                NameError::NoSuchData { id: *id }
            );
        }
        // A clean release counts data entries too; local ones stay.
        assert_eq!(t.release(alive), 2);
        check_index(&t);
        t.expire(t0 + lease * 10);
        assert_eq!(ids_of(&t.list_data(ROOT, &p("")).unwrap()), [ids[5]]);
    }

    #[test]
    fn release_removes_at_once() {
        let mut t = Tree::new(LEASE);
        let now = Instant::now();
        let n = node();
        t.create_context(ROOT, &p("c"), Owner::Node(n), now)
            .unwrap();
        t.bind(ROOT, &p("c/x"), cap(n), Owner::Node(n), now, false)
            .unwrap();
        t.bind(ROOT, &p("y"), cap(n), Owner::Node(n), now, false)
            .unwrap();
        assert_eq!(t.release(n), 3);
        assert!(names(&t, ROOT, "").is_empty());
        assert!(!t.renew(n, now));
    }

    #[test]
    fn each_node_owns_at_most_its_quota_of_entries() {
        let mut t = Tree::new(LEASE).with_quota(4);
        let now = Instant::now();
        let (n, other) = (node(), node());
        t.create_context(ROOT, &p("n"), Owner::Node(n), now)
            .unwrap();
        t.bind(ROOT, &p("n/a"), cap(n), Owner::Node(n), now, false)
            .unwrap();
        t.register_class(ROOT, &p("n/db.Table"), handle(n), Owner::Node(n), now)
            .unwrap();
        // Offering again replaces the offer: no new entry.
        t.register_class(ROOT, &p("n/db.Table"), handle(n), Owner::Node(n), now)
            .unwrap();
        let ids = data(2);
        t.add_data(ROOT, &p("n"), vec![ids[0]], &handle(n), Owner::Node(n), now)
            .unwrap();
        assert_eq!(t.owned_by(n), 4);
        let full = |r: Result<(), NameError>| {
            assert!(
                matches!(r, Err(NameError::QuotaExceeded { have: 4, max: 4 })),
                "{r:?}"
            );
        };
        full(t.bind(ROOT, &p("n/b"), cap(n), Owner::Node(n), now, false));
        full(t.add_data(ROOT, &p("n"), vec![ids[1]], &handle(n), Owner::Node(n), now));
        full(
            t.create_context(ROOT, &p("n/sub"), Owner::Node(n), now)
                .map(drop),
        );
        // Re-adding what it already records, or rebinding its own name, is free.
        t.add_data(ROOT, &p("n"), vec![ids[0]], &handle(n), Owner::Node(n), now)
            .unwrap();
        t.bind(ROOT, &p("n/a"), cap(n), Owner::Node(n), now, true)
            .unwrap();
        // Another node has its own quota; the name server has none.
        t.create_context(ROOT, &p("other"), Owner::Node(other), now)
            .unwrap();
        for i in 0..10 {
            t.bind(ROOT, &p(&format!("l{i}")), cap(n), Owner::Local, now, false)
                .unwrap();
        }
        // Removing frees room again.
        t.unbind(ROOT, &p("n/a"), Owner::Node(n)).unwrap();
        assert!(t.remove_data(ids[0], n, false));
        assert_eq!(t.owned_by(n), 2);
        t.bind(ROOT, &p("n/b"), cap(n), Owner::Node(n), now, false)
            .unwrap();
        // Releasing forgets everything, including what others owned inside.
        t.bind(ROOT, &p("n/guest"), cap(other), admin(other), now, false)
            .unwrap();
        assert_eq!(t.owned_by(other), 2);
        t.release(n);
        assert_eq!(t.owned_by(n), 0);
        assert_eq!(t.owned_by(other), 1);
    }
}
