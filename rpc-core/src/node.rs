//! The node runtime: listens, connects, serves requests to exported objects and
//! routes calls of proxies to their home nodes. One connection between two
//! nodes carries calls both ways, so a node that does not listen can still be
//! called back over the connections it opened.

use crate::config::Config;
use crate::dispatch::{self, BoxFuture, IncomingCall, RemoteRef, ServerProxy};
use crate::error::RpcError;
use crate::ids::{Capability, ComHandle, NodeId, ObjectId};
use crate::registry::classes::ClassInfo;
use crate::registry::exports::ExportTable;
use crate::registry::imports::ImportTable;
use crate::registry::leases::{LeaseQueue, PerHome};
use crate::transport::connection::{self, Connection, Handler, LocalHello};
use crate::wire::{Payload, Request, ResponseBody};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// Object id of the bootstrap registry every node exports (the equivalent of
/// the RMI registry): the one well-known id, from which all others are found.
pub const BOOTSTRAP_OBJECT: ObjectId = ObjectId(Uuid::nil());

/// Class of the bootstrap registry.
pub static BOOTSTRAP_CLASS: ClassInfo = ClassInfo::new(
    "rpc.Bootstrap",
    "lookup(String) -> Option<Capability>; create(String) -> Option<Capability>; stats() -> NodeStats;",
    &["lookup", "create", "stats"],
);

/// Re-creates an object that is not exported (yet): see [`Node::set_resolver`].
type Resolver = Arc<dyn Fn(&Node, ObjectId) -> bool + Send + Sync>;

/// Time the lease task waits after being woken, so that a burst of new or
/// dropped proxies goes out in one message.
const LEASE_BATCH_DELAY: Duration = Duration::from_millis(2);

/// Makes a new exported instance of one class and returns its capability.
type Factory = Arc<dyn Fn(&Node) -> Result<Capability, RpcError> + Send + Sync>;

/// Counts a node reports about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeStats {
    /// Objects exported (including the bootstrap registry).
    pub exports: usize,
    /// Leases other nodes hold on our exports (one per object and peer).
    pub leases: usize,
    /// Live proxies to other nodes' objects.
    pub imports: usize,
    /// Open connections.
    pub connections: usize,
    /// Peer requests running on this node.
    pub inflight_requests: usize,
    /// Calls of this node waiting for answers.
    pub pending_calls: usize,
    /// Large values this node keeps for other nodes to pull.
    pub transfers_out: usize,
    /// Large values this node is pulling now.
    pub transfers_in: usize,
    /// Bytes written to all connections since the node started.
    pub bytes_sent: u64,
    /// Bytes read from all connections since the node started.
    pub bytes_received: u64,
    /// Data items its data manager keeps (0 without one).
    pub data_items: usize,
}

/// Shared state of a node.
pub(crate) struct NodeInner {
    /// This node's identity.
    pub(crate) id: NodeId,
    /// Limits and timeouts.
    pub(crate) config: Config,
    /// Address we accept connections on, once listening.
    listen: RwLock<Option<String>>,
    /// Objects we export.
    pub(crate) exports: ExportTable,
    /// Proxies we hold.
    pub(crate) imports: ImportTable,
    /// Lease messages owed to the homes of the proxies we hold.
    pub(crate) gc: LeaseQueue,
    /// Large values we keep for others and pull from others.
    pub(crate) transfers: crate::transfer::Transfers,
    /// Byte counters of all connections.
    traffic: Arc<connection::Traffic>,
    /// The data manager, once enabled ([`Node::enable_data`]).
    pub(crate) data: std::sync::OnceLock<Arc<crate::data::store::DataInner>>,
    /// Open connections by peer; short lookups only, never held across an await.
    conns: Mutex<HashMap<NodeId, Arc<Connection>>>,
    /// Serializes dialing so that concurrent first calls to one peer share one connection.
    dial: tokio::sync::Mutex<()>,
    /// Names in the bootstrap registry.
    bootstrap: RwLock<HashMap<String, Capability>>,
    /// Called for requests to unknown object ids; may export the object on demand.
    resolver: RwLock<Option<Resolver>>,
    /// Class factories by class name, for class-based creation.
    factories: RwLock<HashMap<String, Factory>>,
    /// Tasks running peer requests; waited for on shutdown.
    tasks: TaskTracker,
    /// Cancelled when the node shuts down: stops accept loops.
    stop: CancellationToken,
    /// Accept loops, awaited on shutdown so that the port is free when it returns.
    acceptors: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set once shutdown starts: new requests are refused.
    stopping: AtomicBool,
}

/// A running node: export objects, call others. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.inner.id)
            .field("listen", &self.inner.listen_addr())
            .finish()
    }
}

impl Node {
    /// A node with `config`. It makes outgoing connections at once; call
    /// [`Node::serve`] to also accept them.
    ///
    /// # Panics
    /// Outside a tokio runtime (it starts its lease task).
    pub fn new(config: Config) -> Node {
        let inner = Arc::new(NodeInner {
            id: config.node_id.unwrap_or_else(NodeId::random),
            config,
            listen: RwLock::new(None),
            exports: ExportTable::default(),
            imports: ImportTable::default(),
            gc: LeaseQueue::default(),
            transfers: crate::transfer::Transfers::default(),
            traffic: Arc::default(),
            data: std::sync::OnceLock::new(),
            conns: Mutex::new(HashMap::new()),
            dial: tokio::sync::Mutex::new(()),
            bootstrap: RwLock::new(HashMap::new()),
            factories: RwLock::new(HashMap::new()),
            resolver: RwLock::new(None),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
            stopping: AtomicBool::new(false),
            acceptors: Mutex::new(Vec::new()),
        });
        let boot: Arc<dyn ServerProxy> = Arc::new(Bootstrap {
            node: Arc::downgrade(&inner),
        });
        let key = Arc::as_ptr(&boot) as *const () as usize;
        inner.exports.export(
            key,
            &BOOTSTRAP_CLASS,
            Some(BOOTSTRAP_OBJECT),
            Duration::ZERO,
            || (boot, Box::new(())),
        );
        inner.exports.set_pinned(&BOOTSTRAP_OBJECT, true);
        tokio::spawn(Arc::clone(&inner).run_gc());
        Node { inner }
    }

    pub(crate) fn from_inner(inner: Arc<NodeInner>) -> Node {
        Node { inner }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// This node's configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where this node can be reached, as put into its capabilities.
    pub fn com_handle(&self) -> ComHandle {
        self.inner.com_handle()
    }

    /// Accepts connections on `listener` until shutdown, on a background task.
    /// Returns the address it listens on.
    ///
    /// # Errors
    /// When the listener's local address cannot be read.
    pub fn serve(&self, listener: TcpListener) -> std::io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        *self.inner.listen.write() = Some(addr.to_string());
        let task = tokio::spawn(Arc::clone(&self.inner).run_accept(listener));
        self.inner.acceptors.lock().push(task);
        Ok(addr)
    }

    /// Binds `addr` (port 0 picks a free port) and serves on it.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn listen(&self, addr: &str) -> std::io::Result<SocketAddr> {
        let l = TcpListener::bind(addr).await?;
        self.serve(l)
    }

    /// Opens (or reuses) a connection to the node at `addr` and returns its id.
    ///
    /// # Errors
    /// [`RpcError::Unreachable`] when no connection can be made.
    pub async fn connect(&self, addr: &str) -> Result<NodeId, RpcError> {
        Ok(self.inner.connect_addr(addr).await?.peer)
    }

    /// Binds `r` under `name` in this node's bootstrap registry, exporting it.
    ///
    /// # Errors
    /// [`RpcError::Encode`] if the reference cannot be exported.
    pub fn bind_bootstrap<R: RemoteRef + serde::Serialize>(
        &self,
        name: &str,
        r: &R,
    ) -> Result<Capability, RpcError> {
        let cap = self.capability_of(r)?;
        if cap.home.node == self.inner.id {
            self.inner.exports.set_pinned(&cap.object, true);
        }
        self.inner
            .bootstrap
            .write()
            .insert(name.to_owned(), cap.clone());
        Ok(cap)
    }

    /// Offers class `R` for class-based creation: a peer's [`Node::create`] gets
    /// a new object made by `make`, exported from this node.
    pub fn register_factory<R, F>(&self, make: F)
    where
        R: RemoteRef + serde::Serialize,
        F: Fn() -> R + Send + Sync + 'static,
    {
        let f: Factory = Arc::new(move |node: &Node| node.capability_of(&make()));
        self.inner
            .factories
            .write()
            .insert(R::CLASS.name.to_owned(), f);
    }

    /// Asks the node at `addr` for a new instance of class `R` (class-based RPC).
    ///
    /// # Errors
    /// [`RpcError::NotBound`] when that node offers no such class; transport errors.
    pub async fn create<R: RemoteRef>(&self, addr: &str) -> Result<R, RpcError> {
        let cap = self
            .bootstrap_capability(addr, "create", R::CLASS.name)
            .await?;
        self.resolve(cap)
    }

    /// Looks `name` up in the bootstrap registry of the node at `addr`.
    ///
    /// # Errors
    /// [`RpcError::NotBound`] when the name is not bound there;
    /// [`RpcError::WrongClass`] or [`RpcError::VersionMismatch`] when it is bound
    /// to another interface; transport errors.
    pub async fn lookup<R: RemoteRef>(&self, addr: &str, name: &str) -> Result<R, RpcError> {
        let cap = self.bootstrap_capability(addr, "lookup", name).await?;
        self.resolve(cap)
    }

    /// Calls `method` of the bootstrap registry of the node at `addr` and
    /// decodes its single result.
    async fn bootstrap_call<T: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        method: &str,
        args: &[&str],
    ) -> Result<T, RpcError> {
        let conn = self.inner.connect_addr(addr).await?;
        let target = Capability {
            object: BOOTSTRAP_OBJECT,
            class: BOOTSTRAP_CLASS.id,
            version: BOOTSTRAP_CLASS.version,
            home: ComHandle {
                node: conn.peer,
                addr: conn.peer_listen.clone(),
            },
        };
        let args = args
            .iter()
            .map(|a| dispatch::encode_payload(&self.inner, None, a, "name"))
            .map(|p| p.map(crate::wire::Arg::Inline))
            .collect::<Result<Vec<_>, _>>()?;
        let body = conn
            .call(
                target,
                connection::arg_list(method, args),
                self.inner.config.call_timeout,
            )
            .await?;
        let out = match body {
            ResponseBody::Out(out) => self.inner.materialize_all(&conn, out).await?,
            ResponseBody::System(e) => return Err(e),
            ResponseBody::Application(_) => {
                return Err(RpcError::protocol(format!(
                    "bootstrap `{method}` returned an application error"
                )));
            }
        };
        let [p] = <[Payload; 1]>::try_from(out)
            .map_err(|_| RpcError::protocol(format!("bootstrap `{method}` returned no result")))?;
        dispatch::decode_payload(&self.inner, &p, method)
    }

    /// A bootstrap lookup or creation: the capability, or `NotBound`.
    async fn bootstrap_capability(
        &self,
        addr: &str,
        method: &str,
        name: &str,
    ) -> Result<Capability, RpcError> {
        let cap: Option<Capability> = self.bootstrap_call(addr, method, &[name]).await?;
        cap.ok_or_else(|| RpcError::NotBound {
            name: name.to_owned(),
        })
    }

    /// Turns a capability into a typed reference (the local object if it lives here).
    ///
    /// # Errors
    /// [`RpcError::WrongClass`] / [`RpcError::VersionMismatch`] when the
    /// capability is of another interface; [`RpcError::NoSuchObject`] for an
    /// unknown local object.
    pub fn resolve<R: RemoteRef>(&self, cap: Capability) -> Result<R, RpcError> {
        dispatch::resolve::<R>(&self.inner, cap)
    }

    /// The capability of a reference, exporting it from this node if it is local.
    ///
    /// # Errors
    /// [`RpcError::Encode`] if it cannot be encoded.
    pub fn capability_of<R: serde::Serialize>(&self, r: &R) -> Result<Capability, RpcError> {
        let p = dispatch::encode_payload(&self.inner, None, r, "reference")?;
        let mut rest = &p.0[..];
        ciborium::from_reader(&mut rest).map_err(|e| RpcError::Encode {
            what: "reference".into(),
            reason: format!("not a remote reference: {e}"),
        })
    }

    /// Exports `r` under the fixed object id `id` (unless that object is exported
    /// already, under whatever id it has). With a fixed node id
    /// ([`Config::node_id`]) this gives capabilities that survive a restart.
    ///
    /// # Errors
    /// [`RpcError::Encode`] if `r` is not a reference type.
    pub fn export_as<R: RemoteRef + serde::Serialize>(
        &self,
        r: &R,
        id: ObjectId,
    ) -> Result<Capability, RpcError> {
        dispatch::with_fixed_id(id, || self.capability_of(r))
    }

    /// Installs the hook called when a request names an object id that is not
    /// exported. It returns true after exporting that object (with
    /// [`Node::export_as`]); the request then proceeds. Used for objects whose
    /// identity lives in storage and that are exported lazily after a restart.
    pub fn set_resolver(&self, f: impl Fn(&Node, ObjectId) -> bool + Send + Sync + 'static) {
        *self.inner.resolver.write() = Some(Arc::new(f));
    }

    /// Pins a local export: it is never collected, whoever holds it (objects
    /// bound in a registry or a name server). Returns false for an unknown id.
    pub fn pin(&self, id: &ObjectId) -> bool {
        self.inner.exports.set_pinned(id, true)
    }

    /// Undoes [`Node::pin`]; the export is then collected once nobody leases it.
    pub fn unpin(&self, id: &ObjectId) -> bool {
        *id != BOOTSTRAP_OBJECT && self.inner.exports.set_pinned(id, false)
    }

    /// Asks the node at `addr` for its counts of exports, leases, proxies,
    /// connections and calls.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn remote_stats(&self, addr: &str) -> Result<NodeStats, RpcError> {
        self.bootstrap_call(addr, "stats", &[]).await
    }

    /// Stops exporting the object with this id; its capability stops working.
    pub fn unexport(&self, id: &ObjectId) -> bool {
        *id != BOOTSTRAP_OBJECT && self.inner.exports.remove(id)
    }

    /// Starts this node's data manager over `config` (a directory, or
    /// memory): loads what a disk store kept, and binds the remote data
    /// manager as [`crate::data::BOOTSTRAP_NAME`] in the bootstrap registry.
    /// Call it after [`Node::serve`], so that references carry the address.
    ///
    /// # Errors
    /// [`DataError::Storage`](crate::data::DataError::Storage) when the store cannot be opened, or when the
    /// node has a data manager already.
    pub async fn enable_data(
        &self,
        config: crate::data::DataConfig,
    ) -> Result<crate::data::DataStore, crate::data::DataError> {
        if self.inner.data.get().is_some() {
            return Err(crate::data::DataError::Storage {
                reason: "this node has a data manager already".into(),
            });
        }
        let inner = crate::data::store::DataInner::open(&self.inner, config).await?;
        if self.inner.data.set(Arc::clone(&inner)).is_err() {
            return Err(crate::data::DataError::Storage {
                reason: "this node has a data manager already".into(),
            });
        }
        let store = crate::data::DataStore { inner };
        let obj = crate::data::DataManagerRef::new(crate::data::store::DataManagerObj {
            store: store.clone(),
        });
        self.bind_bootstrap(crate::data::BOOTSTRAP_NAME, &obj)?;
        Ok(store)
    }

    /// This node's data manager.
    ///
    /// # Errors
    /// [`DataError::NoDataManager`](crate::data::DataError::NoDataManager) before [`Node::enable_data`].
    pub fn data(&self) -> Result<crate::data::DataStore, crate::data::DataError> {
        self.inner
            .data
            .get()
            .map(|inner| crate::data::DataStore {
                inner: Arc::clone(inner),
            })
            .ok_or(crate::data::DataError::NoDataManager)
    }

    /// Current counts of exports, proxies, connections and calls.
    pub fn stats(&self) -> NodeStats {
        let conns: Vec<_> = self.inner.conns.lock().values().cloned().collect();
        NodeStats {
            exports: self.inner.exports.len(),
            leases: self.inner.exports.lease_count(),
            imports: self.inner.imports.len(),
            connections: conns.len(),
            inflight_requests: conns.iter().map(|c| c.inflight_requests()).sum(),
            pending_calls: conns.iter().map(|c| c.pending_calls()).sum(),
            transfers_out: self.inner.transfers.counts().0,
            transfers_in: self.inner.transfers.counts().1,
            bytes_sent: self.inner.traffic.sent.load(Ordering::Relaxed),
            bytes_received: self.inner.traffic.received.load(Ordering::Relaxed),
            data_items: self.inner.data.get().map_or(0, |d| d.len()),
        }
    }

    /// Graceful shutdown: stop accepting, refuse new requests, let running ones
    /// finish within the configured grace period, then close every connection.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        inner.stop.cancel();
        let acceptors: Vec<_> = inner.acceptors.lock().drain(..).collect();
        for a in acceptors {
            let _ = a.await;
        }
        inner.tasks.close();
        if tokio::time::timeout(inner.config.shutdown_grace, inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = inner.tasks.len(),
                "shutdown grace period over; abandoning running calls"
            );
        }
        let conns: Vec<_> = inner.conns.lock().drain().map(|(_, c)| c).collect();
        for c in conns {
            c.close(&RpcError::Shutdown);
        }
        inner.exports.clear();
    }
}

impl NodeInner {
    /// The capability bound under `name` in this node's bootstrap registry.
    pub(crate) fn bootstrap_entry(&self, name: &str) -> Option<Capability> {
        self.bootstrap.read().get(name).cloned()
    }

    pub(crate) fn listen_addr(&self) -> Option<String> {
        self.listen.read().clone()
    }

    fn local_hello(&self) -> LocalHello {
        LocalHello {
            node: self.id,
            listen: self.listen_addr(),
            max_frame: self.config.max_frame_len,
        }
    }

    async fn run_accept(self: Arc<Self>, listener: TcpListener) {
        let limit = Arc::new(Semaphore::new(self.config.max_connections));
        loop {
            // Backpressure: wait for a free connection slot before accepting.
            let permit = tokio::select! {
                _ = self.stop.cancelled() => return,
                p = Arc::clone(&limit).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let (mut stream, from) = tokio::select! {
                _ = self.stop.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let node = Arc::clone(&self);
            tokio::spawn(async move {
                let hello = node.local_hello();
                let max = node.config.max_frame_len;
                let r = tokio::time::timeout(
                    node.config.handshake_timeout,
                    connection::handshake_accept(&mut stream, &hello, max),
                )
                .await;
                let peer = match r {
                    Ok(Ok(h)) => h,
                    Ok(Err(e)) => {
                        tracing::debug!(%from, error = %e, "handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%from, "handshake timed out");
                        return;
                    }
                };
                let conn = Connection::start(
                    stream,
                    node.id,
                    &peer,
                    &node.config,
                    Arc::clone(&node) as Arc<dyn Handler>,
                    Arc::clone(&node.traffic),
                );
                conn.hold_permit(permit);
                tracing::debug!(%from, peer = ?peer.node, "accepted connection");
            });
        }
    }

    fn register(&self, conn: Arc<Connection>) {
        if let Some(old) = self.conns.lock().insert(conn.peer, conn) {
            // Keep the old one running for calls already on it; new calls use the new one.
            tracing::debug!(peer = ?old.peer, "second connection to the same peer");
        }
    }

    /// Connection to the node at `addr`, dialing if there is none.
    pub(crate) async fn connect_addr(
        self: &Arc<Self>,
        addr: &str,
    ) -> Result<Arc<Connection>, RpcError> {
        if let Some(c) = self.find_by_addr(addr) {
            return Ok(c);
        }
        let _g = self.dial.lock().await;
        if let Some(c) = self.find_by_addr(addr) {
            return Ok(c);
        }
        self.dial_addr(addr).await
    }

    fn find_by_addr(&self, addr: &str) -> Option<Arc<Connection>> {
        self.conns
            .lock()
            .values()
            .find(|c| c.peer_listen.as_deref() == Some(addr) && !c.is_closed())
            .cloned()
    }

    async fn dial_addr(self: &Arc<Self>, addr: &str) -> Result<Arc<Connection>, RpcError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(RpcError::Shutdown);
        }
        let unreachable = |reason: String| RpcError::Unreachable {
            peer: addr.to_owned(),
            reason,
        };
        let timeout = self.config.handshake_timeout;
        let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable("connect timed out".into())),
        };
        let hello = self.local_hello();
        let peer = match tokio::time::timeout(
            timeout,
            connection::handshake_connect(&mut stream, &hello, self.config.max_frame_len),
        )
        .await
        {
            Ok(Ok(h)) => h,
            Ok(Err(e @ RpcError::Protocol { .. })) => return Err(e),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable("handshake timed out".into())),
        };
        let mut peer = peer;
        // Remember the peer by the address we reached it at, whatever it announces.
        peer.listen = Some(addr.to_owned());
        let conn = Connection::start(
            stream,
            self.id,
            &peer,
            &self.config,
            Arc::clone(self) as Arc<dyn Handler>,
            Arc::clone(&self.traffic),
        );
        Ok(conn)
    }

    /// Connection to the node `home` names: an open one to that node id, or a
    /// new one to its address.
    pub(crate) async fn conn_to(
        self: &Arc<Self>,
        home: &ComHandle,
    ) -> Result<Arc<Connection>, RpcError> {
        if let Some(c) = self.conns.lock().get(&home.node)
            && !c.is_closed()
        {
            return Ok(Arc::clone(c));
        }
        let Some(addr) = &home.addr else {
            return Err(RpcError::Unreachable {
                peer: format!("{:?}", home.node),
                reason: "the node does not listen and has no connection to this node".into(),
            });
        };
        let conn = self.connect_addr(addr).await?;
        if conn.peer != home.node {
            return Err(RpcError::Unreachable {
                peer: addr.clone(),
                reason: format!(
                    "node at that address is {:?}, not {:?} (restarted?)",
                    conn.peer, home.node
                ),
            });
        }
        Ok(conn)
    }

    /// The connection to pull transfer `meta` over: the one to its sender.
    pub(crate) fn conn_for_transfer(
        &self,
        meta: &crate::wire::TransferMeta,
    ) -> Result<Arc<Connection>, RpcError> {
        self.conns
            .lock()
            .get(&meta.sender)
            .filter(|c| !c.is_closed())
            .cloned()
            .ok_or_else(|| RpcError::TransferFailed {
                reason: "the connection to the sender is gone".into(),
            })
    }

    /// Lease task: sends queued dirty/clean messages in batches, renews the
    /// leases of live proxies at half the lease time, and drops exports that
    /// nothing keeps alive.
    async fn run_gc(self: Arc<Self>) {
        let lease = self.config.lease;
        let renew_every = (lease / 2).max(Duration::from_millis(1));
        let sweep_every = (lease / 4)
            .min(self.config.transfer_timeout / 4)
            .max(Duration::from_millis(1));
        let mut next_renew = tokio::time::Instant::now() + renew_every;
        let mut next_sweep = tokio::time::Instant::now() + sweep_every;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = self.gc.wake.notified() => {
                    // Let the rest of a burst (a reply full of references) queue up.
                    tokio::time::sleep(LEASE_BATCH_DELAY).await;
                }
                () = tokio::time::sleep_until(next_renew.min(next_sweep)) => {}
            }
            let (dirty, clean) = self.gc.take();
            self.send_leases(clean, None);
            self.send_leases(dirty, Some(lease));
            let now = tokio::time::Instant::now();
            if now >= next_renew {
                let mut live = PerHome::new();
                for obj in self.imports.live() {
                    live.entry(obj.cap.home.node)
                        .or_insert_with(|| (obj.cap.home.clone(), Vec::new()))
                        .1
                        .push(obj.cap.object);
                }
                self.send_leases(live, Some(lease));
                next_renew = now + renew_every;
            }
            if now >= next_sweep {
                let idle = self.transfers.sweep(self.config.transfer_timeout);
                if idle > 0 {
                    tracing::debug!(idle, "dropped transfers nobody pulled");
                }
                let dropped = self.exports.sweep();
                if dropped > 0 {
                    tracing::debug!(dropped, "collected exports without leases");
                }
                next_sweep = now + sweep_every;
            }
        }
    }

    /// Sends dirty (`lease` given) or clean messages, one task per home so that
    /// an unreachable home does not hold up the others.
    fn send_leases(self: &Arc<Self>, per_home: PerHome, lease: Option<Duration>) {
        for (_, (home, ids)) in per_home {
            let node = Arc::clone(self);
            tokio::spawn(async move {
                let conn = match lease {
                    // Taking a lease may need a connection; releasing one never does.
                    Some(_) => node.conn_to(&home).await.ok(),
                    None => node.conns.lock().get(&home.node).cloned(),
                };
                let Some(conn) = conn else { return };
                for chunk in ids.chunks(crate::config::MAX_IDS_PER_LEASE_MESSAGE) {
                    let msg = match lease {
                        Some(l) => crate::wire::Message::Dirty {
                            objects: chunk.to_vec(),
                            lease_ms: l.as_millis() as u64,
                        },
                        None => crate::wire::Message::Clean {
                            objects: chunk.to_vec(),
                        },
                    };
                    if let Err(e) = conn.send(&msg) {
                        tracing::debug!(peer = ?home.node, error = %e, "lease message not sent");
                        return;
                    }
                }
            });
        }
    }

    /// Runs one peer request and answers it.
    async fn serve(self: Arc<Self>, conn: Arc<Connection>, req: Request) {
        let call_id = req.ipc.call_id;
        let mut guard = AnswerOnPanic {
            conn: &conn,
            call_id,
            answered: false,
        };
        let body = self.run_request(&conn, req).await;
        guard.answered = true;
        conn.respond(call_id, body);
    }

    async fn run_request(self: &Arc<Self>, conn: &Arc<Connection>, req: Request) -> ResponseBody {
        let target = req.rpc.target;
        let export = match self.exports.get(&target.object) {
            Some(e) => Some(e),
            None => {
                let resolver = self.resolver.read().clone();
                match resolver {
                    Some(f) if f(&Node::from_inner(Arc::clone(self)), target.object) => {
                        self.exports.get(&target.object)
                    }
                    _ => None,
                }
            }
        };
        let Some(export) = export else {
            return ResponseBody::System(RpcError::NoSuchObject {
                object: target.object,
            });
        };
        if export.class.id != target.class {
            return ResponseBody::System(RpcError::WrongClass {
                expected: crate::registry::classes::class_name(target.class),
                found: export.class.name.to_owned(),
            });
        }
        if export.class.version != target.version {
            return ResponseBody::System(RpcError::VersionMismatch {
                class: export.class.name.to_owned(),
                local: target.version.0,
                remote: export.class.version.0,
            });
        }
        let method = req.args.method;
        // Large arguments are pulled before the method runs, within its deadline.
        let pulled = match req.rpc.deadline_ms {
            Some(ms) => tokio::time::timeout(
                Duration::from_millis(ms),
                self.materialize_all(conn, req.args.args),
            )
            .await
            .unwrap_or_else(|_| {
                Err(RpcError::DeadlineExceeded {
                    method: method.clone(),
                    after_ms: ms,
                })
            }),
            None => self.materialize_all(conn, req.args.args).await,
        };
        let args = match pulled {
            Ok(a) => a,
            Err(e) => return ResponseBody::System(e),
        };
        let call = IncomingCall {
            node: Arc::clone(self),
            peer: conn.peer,
            class: export.class,
            method: method.clone(),
            args,
        };
        let deadline = req
            .rpc
            .deadline_ms
            .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
        let fut = dispatch::as_caller(
            conn.peer,
            deadline,
            Arc::clone(&export.server).dispatch(call),
        );
        drop(export);
        match req.rpc.deadline_ms {
            Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), fut).await {
                Ok(body) => body,
                Err(_) => ResponseBody::System(RpcError::DeadlineExceeded {
                    method,
                    after_ms: ms,
                }),
            },
            None => fut.await,
        }
    }
}

/// Answers a call whose method panicked, so that the caller does not wait for
/// its deadline. A cancelled call (task aborted) is not answered: its caller
/// is gone.
struct AnswerOnPanic<'a> {
    conn: &'a Arc<Connection>,
    call_id: u64,
    answered: bool,
}

impl Drop for AnswerOnPanic<'_> {
    fn drop(&mut self) {
        if !self.answered && std::thread::panicking() {
            self.conn.respond(
                self.call_id,
                ResponseBody::System(RpcError::Remote {
                    message: "the remote method panicked".into(),
                }),
            );
        }
    }
}

impl Handler for NodeInner {
    fn on_open(&self, conn: &Arc<Connection>) {
        self.register(Arc::clone(conn));
    }

    fn on_request(self: Arc<Self>, conn: &Arc<Connection>, req: Request) {
        let call_id = req.ipc.call_id;
        if self.stopping.load(Ordering::SeqCst) {
            conn.respond(call_id, ResponseBody::System(RpcError::Shutdown));
            return;
        }
        if !conn.reserve_inflight(call_id, self.config.max_inflight_per_connection) {
            conn.respond(
                call_id,
                ResponseBody::System(RpcError::Overloaded {
                    reason: format!(
                        "more than {} calls running for this connection",
                        self.config.max_inflight_per_connection
                    ),
                }),
            );
            return;
        }
        let node = Arc::clone(&self);
        let c = Arc::clone(conn);
        let task = self.tasks.spawn(async move {
            let c2 = Arc::clone(&c);
            node.serve(c, req).await;
            c2.untrack_inflight(call_id);
        });
        conn.set_inflight_handle(call_id, task.abort_handle());
    }

    fn on_lease(&self, conn: &Arc<Connection>, msg: crate::wire::Message) {
        match msg {
            crate::wire::Message::Dirty { objects, lease_ms } => {
                self.exports
                    .dirty(conn.peer, &objects, Duration::from_millis(lease_ms));
            }
            crate::wire::Message::Clean { objects } => self.exports.clean(conn.peer, &objects),
            _ => {}
        }
    }

    fn on_transfer(&self, conn: &Arc<Connection>, msg: crate::wire::Message) {
        use crate::transfer::ChunkEvent;
        use crate::wire::Message;
        match msg {
            Message::ChunkRequest { id, offset, len } => {
                let max = u32::try_from(self.config.chunk_size.max(1) * 4).unwrap_or(u32::MAX);
                self.transfers.on_request(conn, id, offset, len, max);
            }
            Message::Chunk {
                id,
                offset,
                data,
                crc,
            } => self.transfers.on_chunk(
                conn,
                id,
                ChunkEvent::Data {
                    offset,
                    data: data.0,
                    crc,
                },
            ),
            Message::ChunkError { id, error } => {
                self.transfers.on_chunk(conn, id, ChunkEvent::Failed(error));
            }
            Message::TransferEnd { id, .. } => self.transfers.on_end(conn, id),
            _ => {}
        }
    }

    fn on_closed(&self, conn: &Arc<Connection>, reason: &RpcError) {
        self.transfers.peer_gone(conn.peer, reason);
        tracing::debug!(peer = ?conn.peer, %reason, "connection closed");
        let mut m = self.conns.lock();
        if m.get(&conn.peer).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            m.remove(&conn.peer);
        }
    }
}

/// The bootstrap registry's skeleton, hand-written because rpc-core cannot use
/// its own macro for a class that must exist before any other.
struct Bootstrap {
    node: std::sync::Weak<NodeInner>,
}

impl ServerProxy for Bootstrap {
    fn class(&self) -> &'static ClassInfo {
        &BOOTSTRAP_CLASS
    }

    fn dispatch(self: Arc<Self>, call: IncomingCall) -> BoxFuture<'static, ResponseBody> {
        Box::pin(async move {
            let Some(node) = self.node.upgrade() else {
                return ResponseBody::System(RpcError::Shutdown);
            };
            if call.method() == "stats" {
                if let Err(e) = call.expect_args(0) {
                    return ResponseBody::System(e);
                }
                return call.reply::<_, ()>(Ok(Node::from_inner(node).stats()));
            }
            let name: String = match call.expect_args(1).and_then(|()| call.arg(0, "name")) {
                Ok(n) => n,
                Err(e) => return ResponseBody::System(e),
            };
            match call.method() {
                "lookup" => {
                    let cap = node.bootstrap.read().get(&name).cloned();
                    call.reply::<_, ()>(Ok(cap))
                }
                "create" => {
                    let factory = node.factories.read().get(&name).cloned();
                    match factory.map(|f| f(&Node::from_inner(node))).transpose() {
                        Ok(cap) => call.reply::<_, ()>(Ok(cap)),
                        Err(e) => ResponseBody::System(e),
                    }
                }
                _ => ResponseBody::System(call.no_such_method()),
            }
        })
    }
}
