//! The name server: the naming tree served as [`NameContext`] objects.
//!
//! Each context of the tree is one exported object; the same context always
//! has the same capability, and a context removed from the tree stops being
//! exported. The root is bound as [`ROOT_NAME`] in the node's bootstrap
//! registry. Changes are owned by the calling node ([`rpc_core::caller`]) and
//! kept alive by its lease; a sweeper task and every operation remove the
//! entries of nodes whose lease ran out. The tree's data entries make it the
//! location service: any context answers [`NameContext::locate`] for the
//! whole tree.

use crate::api::{
    DataLocation, Entry, Lease, MAX_DATA_IDS_PER_CALL, NAMESERVER_CONTEXT, NameContext,
    NameContextRef, NameError, ROOT_NAME,
};
use crate::context::{Actor, ContextId, Owner, ROOT, Target, Tree};
use crate::name::Path;
use parking_lot::{Mutex, RwLock};
use rpc_core::{Capability, ComHandle, DataId, Node, NodeId, RpcError};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Default lease time of bindings: a node that stops renewing disappears from
/// the tree this long after its last renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Default number of entries (contexts, bindings, class offers, data
/// entries) one node may own.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// Shortest pause between two sweeps for expired leases.
pub const MIN_SWEEP_INTERVAL: Duration = Duration::from_millis(5);

/// The node settings a name server starts from: [`rpc_core::Config`]'s,
/// with in-memory budgets for what peers send and pull far below a general
/// node's, because names, lists and class offers are small (a list of a
/// context at its entry quota is a few MiB). A peer that announces a large
/// value gets `TooLarge` or `Overloaded` instead of making the name server
/// hold it.
pub fn node_defaults() -> rpc_core::Config {
    rpc_core::Config {
        max_large_value: 16 << 20,
        max_pull_memory_per_peer: 16 << 20,
        max_pull_memory: 256 << 20,
        max_offered_bytes_per_peer: 64 << 20,
        max_offered_bytes: 512 << 20,
        ..rpc_core::Config::default()
    }
}

/// Settings of a name server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Lease time granted to the nodes that bind entries.
    pub lease: Duration,
    /// Most entries one node may own (default [`DEFAULT_MAX_ENTRIES`]);
    /// more are refused with [`NameError::QuotaExceeded`].
    pub max_entries: usize,
    /// Settings of the name server's node (default [`node_defaults`]).
    pub node: rpc_core::Config,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            lease: DEFAULT_LEASE,
            max_entries: DEFAULT_MAX_ENTRIES,
            node: node_defaults(),
        }
    }
}

/// A name server serving on its listener, from [`start`] until [`Running::stop`].
#[derive(Debug)]
pub struct Running {
    node: Node,
    server: NameServer,
    addr: std::net::SocketAddr,
}

/// Serves a name server on `listener` and returns once it answers lookups of
/// its root: a client that connects after this returns (say, after a
/// `listening` line printed then) finds the tree. Must be called within a
/// tokio runtime.
///
/// # Errors
/// When the listener's address cannot be read, or the root context cannot be
/// exported.
pub fn start(listener: TcpListener, config: &ServerConfig) -> std::io::Result<Running> {
    let node = Node::new(config.node.clone());
    let addr = node.serve(listener)?;
    let server = NameServer::install_with(&node, config).map_err(std::io::Error::other)?;
    tracing::info!(%addr, lease_ms = config.lease.as_millis(), "name server running");
    Ok(Running { node, server, addr })
}

impl Running {
    /// The address the name server's capabilities carry.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The name server's node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Reads the number of entries nodes own in the tree (its gauge), for
    /// as long as the server runs.
    pub fn entry_counter(&self) -> impl Fn() -> usize + Send + Sync + 'static {
        let state = Arc::downgrade(&self.server.state);
        move || state.upgrade().map_or(0, |s| s.tree.read().entries())
    }

    /// Shuts the node down gracefully (the port is free when this returns).
    pub async fn stop(self) {
        tracing::info!("name server shutting down");
        drop(self.server);
        self.node.shutdown().await;
    }
}

/// Runs a name server on `listener` until `shutdown` completes, then shuts its
/// node down gracefully (the port is free when this returns).
///
/// # Errors
/// As [`start`].
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future,
) -> std::io::Result<()> {
    let running = start(listener, &config)?;
    shutdown.await;
    running.stop().await;
    Ok(())
}

/// A name server installed on a node: owns the tree and the sweeper task,
/// which its `Drop` stops.
#[derive(Debug)]
pub struct NameServer {
    /// The tree and the exported contexts; context objects hold it weakly,
    /// so dropping the server ends them too.
    state: Arc<State>,
    /// The root context (also bound in the node's bootstrap registry).
    root: NameContextRef,
    /// Cancelled on drop; stops the sweeper task.
    stop: CancellationToken,
}

impl NameServer {
    /// Serves a naming tree from `node`: binds its root context as
    /// [`ROOT_NAME`] in the node's bootstrap registry, creates the
    /// [`NAMESERVER_CONTEXT`] context, and starts sweeping expired leases.
    /// Call it after the node listens, so that capabilities carry its address.
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    /// When the root context cannot be exported.
    pub fn install(node: &Node, lease: Duration) -> Result<NameServer, NameError> {
        let config = ServerConfig {
            lease,
            ..ServerConfig::default()
        };
        Self::install_with(node, &config)
    }

    /// [`NameServer::install`] with the lease and quota of `config` (its
    /// node settings are the node's own business).
    ///
    /// # Errors
    /// As [`NameServer::install`].
    pub fn install_with(node: &Node, config: &ServerConfig) -> Result<NameServer, NameError> {
        let lease = config.lease;
        let state = Arc::new(State {
            node: node.clone(),
            tree: RwLock::new(Tree::new(lease).with_quota(config.max_entries)),
            exported: Mutex::new(HashMap::new()),
        });
        let root = state.context_ref(ROOT)?;
        node.bind_bootstrap(ROOT_NAME, &root)?;
        let own = Path::parse(NAMESERVER_CONTEXT)?;
        state.with_write(|t, now| t.create_context(ROOT, &own, Owner::Local, now))?;
        let stop = CancellationToken::new();
        tokio::spawn(sweep(Arc::downgrade(&state), lease, stop.clone()));
        Ok(NameServer { state, root, stop })
    }

    /// The root context, as a local reference.
    pub fn root(&self) -> NameContextRef {
        self.root.clone()
    }

    /// The lease time granted.
    pub fn lease(&self) -> Duration {
        self.state.tree.read().lease()
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Removes expired entries every quarter lease, so that the memory and the
/// exports of dead nodes are freed even when nobody calls.
async fn sweep(state: Weak<State>, lease: Duration, stop: CancellationToken) {
    let every = (lease / 4).max(MIN_SWEEP_INTERVAL);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(state) = state.upgrade() else { return };
        state.expire_if_due(now());
    }
}

/// Shared state of a name server.
struct State {
    /// The node exporting the contexts.
    node: Node,
    /// The naming tree and the leases. Critical sections are short and never
    /// span an await, hence a parking_lot lock; resolves and lists (the
    /// common case) share it.
    tree: RwLock<Tree>,
    /// The exported object of each context, so that one context keeps one
    /// capability; an entry goes (and its object is unexported) when the
    /// context leaves the tree. Taken before `tree` when both are held.
    exported: Mutex<HashMap<ContextId, (NameContextRef, Capability)>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("node", &self.node)
            .field("contexts", &self.exported.lock().len())
            .finish()
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Who asks for the current change: the calling node (with what its
/// certificate proves), or the name server itself for a call made in this
/// process.
fn actor() -> Actor {
    match rpc_core::caller_identity() {
        None => Actor::from(Owner::Local),
        Some(id) => Actor {
            owner: Owner::Node(id.node),
            name: id.name.as_deref().map(Arc::from),
            admin: id.admin,
        },
    }
}

/// The node making the current request: a remote caller, or this node for a
/// call made in this process.
fn calling_node(state: &State) -> NodeId {
    rpc_core::caller().unwrap_or_else(|| state.node.id())
}

impl State {
    /// The exported object of context `id`, exporting it on first use.
    fn context_ref(self: &Arc<Self>, id: ContextId) -> Result<NameContextRef, NameError> {
        Ok(self.context_export(id)?.0)
    }

    fn context_export(
        self: &Arc<Self>,
        id: ContextId,
    ) -> Result<(NameContextRef, Capability), NameError> {
        let mut exported = self.exported.lock();
        if let Some(e) = exported.get(&id) {
            return Ok(e.clone());
        }
        // Checked under `exported`: a context removed after this check is
        // forgotten after we insert, so no export outlives its context.
        if !self.tree.read().contains(id) {
            return Err(NameError::NotFound {
                component: ".".into(),
                context: "(a context removed meanwhile)".into(),
            });
        }
        let r = NameContextRef::new(ContextObject {
            state: Arc::downgrade(self),
            id,
        });
        let cap = self.node.capability_of(&r)?;
        // The tree hands this capability out for as long as the context
        // exists, whoever holds a proxy: keep it out of the distributed GC.
        self.node.pin(&cap.object);
        exported.insert(id, (r.clone(), cap.clone()));
        Ok((r, cap))
    }

    /// Stops exporting removed contexts.
    fn forget(&self, removed: Vec<ContextId>) {
        if removed.is_empty() {
            return;
        }
        let mut exported = self.exported.lock();
        for id in removed {
            if let Some((_, cap)) = exported.remove(&id) {
                self.node.unexport(&cap.object);
            }
        }
    }

    /// Runs a change on the tree, after removing expired entries.
    fn with_write<T>(
        &self,
        f: impl FnOnce(&mut Tree, Instant) -> Result<T, NameError>,
    ) -> Result<T, NameError> {
        let now = now();
        let (r, removed) = {
            let mut tree = self.tree.write();
            log_expired(&tree.expire(now));
            let r = f(&mut tree, now);
            (r, tree.take_removed())
        };
        self.forget(removed);
        r
    }

    /// Runs a read on the tree, after removing expired entries if there are any.
    fn with_read<T>(&self, f: impl FnOnce(&Tree) -> T) -> T {
        self.expire_if_due(now());
        f(&self.tree.read())
    }

    fn expire_if_due(&self, now: Instant) {
        if !self.tree.read().has_expired(now) {
            return;
        }
        let removed = {
            let mut tree = self.tree.write();
            log_expired(&tree.expire(now));
            tree.take_removed()
        };
        self.forget(removed);
    }
}

fn log_expired(expired: &[(rpc_core::NodeId, usize)]) {
    for (node, entries) in expired {
        tracing::info!(node = %node, entries, "lease expired; entries removed");
    }
}

/// One context of the tree, as an exported object.
struct ContextObject {
    /// Weak, because the node's export table holds this object: the server
    /// state (which holds the node) must not be kept alive by it.
    state: Weak<State>,
    /// The context of the tree this object stands for.
    id: ContextId,
}

impl ContextObject {
    fn state(&self) -> Result<Arc<State>, NameError> {
        self.state
            .upgrade()
            .ok_or(NameError::Rpc(RpcError::Shutdown))
    }
}

impl NameContext for ContextObject {
    async fn bind(&self, path: String, object: Capability) -> Result<(), NameError> {
        let path = Path::parse(&path)?;
        let who = actor();
        self.state()?
            .with_write(|t, now| t.bind(self.id, &path, object, who, now, false))
    }

    async fn rebind(&self, path: String, object: Capability) -> Result<(), NameError> {
        let path = Path::parse(&path)?;
        let who = actor();
        self.state()?
            .with_write(|t, now| t.bind(self.id, &path, object, who, now, true))
    }

    async fn unbind(&self, path: String) -> Result<(), NameError> {
        let path = Path::parse(&path)?;
        let who = actor();
        self.state()?
            .with_write(|t, _| t.unbind(self.id, &path, who))
    }

    async fn resolve(&self, path: String) -> Result<Capability, NameError> {
        let path = Path::parse(&path)?;
        let state = self.state()?;
        match state.with_read(|t| t.resolve(self.id, &path))? {
            Target::Object(cap) => Ok(cap),
            Target::Context(id) => Ok(state.context_export(id)?.1),
        }
    }

    async fn list(&self, path: String) -> Result<Vec<Entry>, NameError> {
        let path = Path::parse(&path)?;
        self.state()?.with_read(|t| t.list(self.id, &path))
    }

    async fn create_context(&self, path: String) -> Result<NameContextRef, NameError> {
        let path = Path::parse(&path)?;
        let who = actor();
        let state = self.state()?;
        let id = state.with_write(|t, now| t.create_context(self.id, &path, who, now))?;
        state.context_ref(id)
    }

    async fn destroy_context(&self, path: String) -> Result<(), NameError> {
        let path = Path::parse(&path)?;
        let who = actor();
        self.state()?
            .with_write(|t, _| t.destroy_context(self.id, &path, who))
    }

    async fn register_class(&self, path: String, offer: ComHandle) -> Result<(), NameError> {
        let path = Path::parse(&path)?;
        let who = actor();
        self.state()?
            .with_write(|t, now| t.register_class(self.id, &path, offer, who, now))
    }

    async fn find_class(&self, class: String) -> Result<Vec<ComHandle>, NameError> {
        self.state()?.with_read(|t| t.find_class(self.id, &class))
    }

    async fn renew(&self) -> Result<Lease, NameError> {
        let owner = actor().owner;
        self.state()?.with_write(|t, now| {
            let known = match owner {
                Owner::Local => true,
                Owner::Node(n) => t.renew(n, now),
            };
            Ok(Lease {
                lease_ms: u64::try_from(t.lease().as_millis()).unwrap_or(u64::MAX),
                known,
            })
        })
    }

    async fn add_data(
        &self,
        path: String,
        ids: Vec<DataId>,
        owner: ComHandle,
    ) -> Result<(), NameError> {
        let path = Path::parse(&path)?;
        // `owner` here is the node keeping the data; the entry belongs to
        // (and lives with the lease of) the node recording it.
        let recorder = actor();
        self.state()?
            .with_write(|t, now| t.add_data(self.id, &path, ids, &owner, recorder, now))
    }

    async fn remove_data(&self, id: DataId) -> Result<bool, NameError> {
        let state = self.state()?;
        let caller = calling_node(&state);
        let admin = actor().admin;
        state.with_write(|t, _| Ok(t.remove_data(id, caller, admin)))
    }

    async fn hand_over(&self, ids: Vec<DataId>, to: NodeId) -> Result<(), NameError> {
        if ids.len() > MAX_DATA_IDS_PER_CALL {
            return Err(NameError::TooManyIds {
                count: u64::try_from(ids.len()).unwrap_or(u64::MAX),
                max: MAX_DATA_IDS_PER_CALL as u64,
            });
        }
        let who = actor();
        self.state()?.with_write(|t, _| t.hand_over(&ids, to, who))
    }

    async fn locate(&self, id: DataId) -> Result<DataLocation, NameError> {
        self.state()?.with_read(|t| t.locate(id))
    }

    async fn list_data(&self, path: String) -> Result<Vec<DataLocation>, NameError> {
        let path = Path::parse(&path)?;
        self.state()?.with_read(|t| t.list_data(self.id, &path))
    }

    async fn release(&self) -> Result<u64, NameError> {
        let owner = actor().owner;
        self.state()?.with_write(|t, _| {
            Ok(match owner {
                Owner::Local => 0,
                Owner::Node(n) => {
                    let removed = t.release(n);
                    tracing::debug!(node = %n, removed, "released");
                    u64::try_from(removed).unwrap_or(u64::MAX)
                }
            })
        })
    }
}
