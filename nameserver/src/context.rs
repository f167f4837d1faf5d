//! The naming tree and the leases that keep its entries alive. Pure: no I/O, no
//! clock (every operation that needs the time takes `now`), no locking (the
//! server keeps the [`Tree`] under one lock).
//!
//! Every context, object binding and class offer records its [`Owner`]. A
//! node's lease is created or extended by each of its successful changes and
//! by [`Tree::renew`]; when it runs out, [`Tree::expire`] removes every entry
//! the node owns, and each context it created with everything inside.
//! Entries owned by [`Owner::Local`] (the name server's own) never expire.

use crate::api::{Entry, EntryKind, NameError};
use crate::name::{Path, check_component, join_all};
use rpc_core::{Capability, ComHandle, NodeId};
use std::collections::{BTreeMap, HashMap};
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

#[derive(Debug)]
struct Context {
    parent: Option<ContextId>,
    owner: Owner,
    /// Sorted, so that `list` is stable.
    entries: BTreeMap<String, Slot>,
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
    /// Contexts removed since the last [`Tree::take_removed`], so that the
    /// server can stop exporting their objects.
    removed: Vec<ContextId>,
}

impl Tree {
    /// A tree holding only the root context, granting leases of `lease`.
    pub(crate) fn new(lease: Duration) -> Tree {
        let mut contexts = HashMap::new();
        contexts.insert(
            ROOT,
            Context {
                parent: None,
                owner: Owner::Local,
                entries: BTreeMap::new(),
            },
        );
        Tree {
            contexts,
            next_id: 1,
            leases: HashMap::new(),
            lease,
            removed: Vec::new(),
        }
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

    fn touch(&mut self, owner: Owner, now: Instant) {
        if let Owner::Node(n) = owner {
            self.leases.insert(n, now + self.lease);
        }
    }

    /// Binds `cap` under `path`; with `replace`, an object bound there is replaced.
    pub(crate) fn bind(
        &mut self,
        at: ContextId,
        path: &Path,
        cap: Capability,
        owner: Owner,
        now: Instant,
        replace: bool,
    ) -> Result<(), NameError> {
        let (parent, last) = self.parent_of(at, path)?;
        let ctx = self.ctx_mut(parent)?;
        match ctx.entries.get(last) {
            None => {}
            Some(Slot::Object { .. }) if replace => {}
            Some(other) => {
                return Err(NameError::AlreadyBound {
                    path: path.to_string(),
                    kind: other.kind(),
                });
            }
        }
        ctx.entries
            .insert(last.to_owned(), Slot::Object { cap, owner });
        self.touch(owner, now);
        Ok(())
    }

    /// Removes the object, class or empty context bound under `path`.
    pub(crate) fn unbind(&mut self, at: ContextId, path: &Path) -> Result<(), NameError> {
        let (parent, last) = self.parent_of(at, path)?;
        let child = match self.ctx(parent)?.entries.get(last) {
            None => {
                return Err(NameError::NotFound {
                    component: last.to_owned(),
                    context: parent_path(path),
                });
            }
            Some(Slot::Context(id)) => Some(*id),
            Some(_) => None,
        };
        if let Some(id) = child {
            if !self.ctx(id)?.entries.is_empty() {
                return Err(NameError::NotEmpty {
                    path: path.to_string(),
                });
            }
            self.contexts.remove(&id);
            self.removed.push(id);
        }
        self.ctx_mut(parent)?.entries.remove(last);
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
        owner: Owner,
        now: Instant,
    ) -> Result<ContextId, NameError> {
        let (parent, last) = self.parent_of(at, path)?;
        match self.ctx(parent)?.entries.get(last) {
            None => {}
            // The same node asking again (say, restarted with a fixed node id
            // before its lease ran out) gets its own context back.
            Some(Slot::Context(id))
                if matches!(owner, Owner::Node(_)) && self.ctx(*id)?.owner == owner =>
            {
                let id = *id;
                self.touch(owner, now);
                return Ok(id);
            }
            Some(other) => {
                return Err(NameError::AlreadyBound {
                    path: path.to_string(),
                    kind: other.kind(),
                });
            }
        }
        let id = ContextId(self.next_id);
        self.next_id += 1;
        self.contexts.insert(
            id,
            Context {
                parent: Some(parent),
                owner,
                entries: BTreeMap::new(),
            },
        );
        self.ctx_mut(parent)?
            .entries
            .insert(last.to_owned(), Slot::Context(id));
        self.touch(owner, now);
        Ok(id)
    }

    /// Removes the empty context at `path`.
    pub(crate) fn destroy_context(&mut self, at: ContextId, path: &Path) -> Result<(), NameError> {
        let (parent, last) = self.parent_of(at, path)?;
        match self.ctx(parent)?.entries.get(last) {
            None => Err(NameError::NotFound {
                component: last.to_owned(),
                context: parent_path(path),
            }),
            Some(Slot::Context(_)) => self.unbind(at, path),
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
        owner: Owner,
        now: Instant,
    ) -> Result<(), NameError> {
        let (parent, last) = self.parent_of(at, path)?;
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
        self.touch(owner, now);
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
            count += 1;
            for slot in ctx.entries.values() {
                match slot {
                    Slot::Context(child) => stack.push(*child),
                    Slot::Object { .. } => count += 1,
                    Slot::Class(offers) => count += offers.len(),
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
        let e = t.unbind(ROOT, &p("a/nope")).unwrap_err();
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
            t.destroy_context(ROOT, &p("a/q")),
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
            t.destroy_context(ROOT, &p("obj")),
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
            t.destroy_context(ROOT, &p("")),
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
            t.destroy_context(ROOT, &p("a")).unwrap_err(),
            NameError::NotEmpty { path: "a".into() }
        );
        assert!(matches!(
            t.unbind(ROOT, &p("a")),
            Err(NameError::NotEmpty { .. })
        ));
        t.unbind(ROOT, &p("a/x")).unwrap();
        t.destroy_context(ROOT, &p("a")).unwrap();
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
        // Two offers in one context, and the same node offering twice.
        t.register_class(ROOT, &p("one/db.Table"), handle(n2), Owner::Node(n2), now)
            .unwrap();
        t.register_class(ROOT, &p("one/db.Table"), handle(n2), Owner::Node(n2), now)
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
        // The dead node also bound into another node's context, and a server-owned one.
        t.bind(
            ROOT,
            &p("client-alive/from-dead"),
            cap(dead),
            Owner::Node(dead),
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
            Owner::Node(alive),
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
}
