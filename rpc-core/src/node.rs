//! The node runtime: listens, connects, serves requests to exported objects and
//! routes calls of proxies to their home nodes. One connection between two
//! nodes carries calls both ways, so a node that does not listen can still be
//! called back over the connections it opened.
//!
//! - this file: [`Node`], the public API.
//! - `serve`: what the node does with what its connections hand it
//!   (requests, lease and transfer messages, closes).
//! - `gc`: the lease task (distributed GC, transfer sweeps).
//! - `bootstrap`: the bootstrap registry every node exports, both sides.
//! - `extension`: services attached to a node (the data manager).

mod bootstrap;
mod extension;
mod gc;
mod serve;

pub use bootstrap::BOOTSTRAP_OBJECT;
pub use extension::Extension;

use crate::config::Config;
use crate::dispatch::core::Core;
use crate::dispatch::{RemoteRef, codec};
use crate::error::RpcError;
use crate::ids::{Capability, ComHandle, NodeId, ObjectId};
use crate::transport::connection::Handler;
use crate::transport::{listener, stream};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Re-creates an object that is not exported (yet): see [`Node::set_resolver`].
type Resolver = Arc<dyn Fn(&Node, ObjectId) -> bool + Send + Sync>;

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
    /// Bytes waiting to be written to peers, all connections.
    #[serde(default)]
    pub queued_bytes: u64,
    /// Peer requests answered since the node started.
    #[serde(default)]
    pub calls_served: u64,
    /// Of those, the ones answered with an error (the method's own or the
    /// runtime's).
    #[serde(default)]
    pub calls_failed: u64,
}

/// One connection of a node, as [`Node::peer_stats`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerStats {
    /// The peer's node id.
    pub node: NodeId,
    /// Where the peer accepts connections, if it said so.
    pub addr: Option<String>,
    /// Its requests running on this node.
    pub inflight_requests: usize,
    /// This node's calls to it waiting for answers.
    pub pending_calls: usize,
    /// Bytes waiting to be written to it.
    pub queued_bytes: u64,
}

/// State of a node above its [`Core`]: what serving requests and the
/// public API need.
pub(crate) struct NodeInner {
    /// Identity, tables, connections and transfers.
    core: Arc<Core>,
    /// Names in the bootstrap registry; read on every lookup, written when
    /// something is bound.
    bootstrap: RwLock<HashMap<String, Capability>>,
    /// Called for requests to unknown object ids; may export the object on demand.
    resolver: RwLock<Option<Resolver>>,
    /// Class factories by class name, for class-based creation.
    factories: RwLock<HashMap<String, Factory>>,
    /// Services attached to the node, by type.
    extensions: extension::Extensions,
    /// Tasks running peer requests; waited for on shutdown.
    tasks: TaskTracker,
    /// Cancelled when the node shuts down: stops accept loops and the lease task.
    stop: CancellationToken,
    /// Accept loops, awaited on shutdown so that the port is free when it returns.
    acceptors: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set once shutdown starts: new requests are refused.
    stopping: AtomicBool,
    /// Peer requests answered, and of those failed (for [`NodeStats`]).
    answered: (AtomicU64, AtomicU64),
}

/// A running node: export objects, call others. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

/// A node handle that does not keep the node alive (for services the node
/// itself holds, such as its data manager).
#[derive(Clone, Debug)]
pub struct WeakNode(Weak<NodeInner>);

impl WeakNode {
    /// The node, unless it is gone.
    pub fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

impl std::fmt::Debug for NodeInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.core.id)
            .field("listen", &self.core.peers.advertised())
            .finish()
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Node {
    /// A node with `config`. It makes outgoing connections at once; call
    /// [`Node::serve`] to also accept them.
    ///
    /// # Panics
    /// Outside a tokio runtime (it starts its lease task).
    pub fn new(config: Config) -> Node {
        let inner = Arc::new_cyclic(|me: &Weak<NodeInner>| {
            let handler: Weak<dyn Handler> = me.clone();
            NodeInner {
                core: Arc::new(Core::new(config, handler)),
                bootstrap: RwLock::new(HashMap::new()),
                resolver: RwLock::new(None),
                factories: RwLock::new(HashMap::new()),
                extensions: extension::Extensions::default(),
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
                acceptors: Mutex::new(Vec::new()),
                stopping: AtomicBool::new(false),
                answered: (AtomicU64::new(0), AtomicU64::new(0)),
            }
        });
        bootstrap::export(&inner);
        tokio::spawn(gc::run(Arc::downgrade(&inner.core), inner.stop.clone()));
        Node { inner }
    }

    fn core(&self) -> &Arc<Core> {
        &self.inner.core
    }

    /// A handle that does not keep this node alive.
    pub fn downgrade(&self) -> WeakNode {
        WeakNode(Arc::downgrade(&self.inner))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.core().id
    }

    /// This node's configuration.
    pub fn config(&self) -> &Config {
        &self.core().config
    }

    /// Where this node can be reached, as put into its capabilities.
    pub fn com_handle(&self) -> ComHandle {
        self.core().peers.com_handle()
    }

    /// Accepts connections on `listener` until shutdown, on a background task.
    /// Returns the address it listens on.
    ///
    /// Its capabilities carry the address other hosts dial:
    /// [`Config::advertise`] if set, else the listening address; a node
    /// listening on an unspecified address (`0.0.0.0`, `[::]`) advertises
    /// the source address of the host's default route, or, without one, the
    /// local address of its first non-loopback connection (logged).
    ///
    /// # Errors
    /// When the listener's local address cannot be read, or
    /// [`Config::advertise`] is not an address others can dial.
    pub fn serve(&self, listener: TcpListener) -> std::io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        self.core().peers.listening(addr)?;
        let task = tokio::spawn(listener::run(
            listener,
            Arc::clone(&self.core().peers),
            self.config().clone(),
            self.inner.stop.clone(),
        ));
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
        Ok(self.core().peers.connect_addr(addr).await?.peer)
    }

    /// Runs a connection over `stream` (any byte stream: a Unix socket, an
    /// in-memory duplex, a stream the caller secured) as its dialing side;
    /// the other end runs [`Node::accept_stream`]. Returns the peer's id.
    ///
    /// # Errors
    /// [`RpcError::Protocol`] or [`RpcError::Unreachable`] when the
    /// handshake fails.
    pub async fn connect_stream<S>(&self, stream: S) -> Result<NodeId, RpcError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let peers = &self.core().peers;
        Ok(peers.dial_over(stream, stream::split_any, None).await?.peer)
    }

    /// Runs a connection over `stream` as its accepting side (see
    /// [`Node::connect_stream`]). Returns the peer's id.
    ///
    /// # Errors
    /// As [`Node::connect_stream`].
    pub async fn accept_stream<S>(&self, stream: S) -> Result<NodeId, RpcError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let peers = &self.core().peers;
        Ok(peers.accept(stream, stream::split_any, None).await?.peer)
    }

    /// Completes when this node has no open connection to `peer` (at once
    /// if it has none now), with why the last one closed: what a program
    /// waiting for callbacks from `peer` watches to learn that none will
    /// come.
    ///
    /// # Cancel safety
    /// Cancel safe: it only waits.
    pub async fn disconnected(&self, peer: NodeId) -> RpcError {
        match self.core().peers.get(&peer) {
            Some(conn) => conn.closed().await,
            None => RpcError::Unreachable {
                peer: format!("{peer:?}"),
                reason: "no connection to that node".into(),
            },
        }
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
        if cap.home.node == self.id() {
            self.core().exports.set_pinned(&cap.object, true);
        }
        self.inner
            .bootstrap
            .write()
            .insert(name.to_owned(), cap.clone());
        Ok(cap)
    }

    /// The capability bound under `name` in this node's bootstrap registry.
    pub fn bootstrap_entry(&self, name: &str) -> Option<Capability> {
        self.inner.bootstrap.read().get(name).cloned()
    }

    /// Offers class `R` for class-based creation: a peer's [`Node::create`] gets
    /// a new object made by `make`, exported from this node.
    pub fn register_factory<R, F>(&self, make: F)
    where
        R: RemoteRef + serde::Serialize,
        F: Fn() -> R + Send + Sync + 'static,
    {
        self.register_fallible_factory(move || Ok(make()));
    }

    /// [`Node::register_factory`] for a factory that can fail (a new object
    /// needs storage, say, or the node has made as many as it will): the
    /// peer's [`Node::create`] gets the error.
    pub fn register_fallible_factory<R, F>(&self, make: F)
    where
        R: RemoteRef + serde::Serialize,
        F: Fn() -> Result<R, RpcError> + Send + Sync + 'static,
    {
        let f: Factory = Arc::new(move |node: &Node| node.capability_of(&make()?));
        self.inner
            .factories
            .write()
            .insert(R::CLASS.name.to_owned(), f);
    }

    /// Turns a capability into a typed reference (the local object if it lives here).
    ///
    /// # Errors
    /// [`RpcError::WrongClass`] / [`RpcError::VersionMismatch`] when the
    /// capability is of another interface; [`RpcError::NoSuchObject`] for an
    /// unknown local object.
    pub fn resolve<R: RemoteRef>(&self, cap: Capability) -> Result<R, RpcError> {
        codec::resolve::<R>(self.core(), cap)
    }

    /// Calls `method` of the object `cap` names, whatever its class, with
    /// `args` as CBOR values (each decoded by the object's skeleton as the
    /// argument's type): for tools that know a class only by its
    /// description. Returns the result, or the method's own error, as CBOR.
    /// References in results stay capabilities (positional CBOR arrays).
    ///
    /// # Errors
    /// Any [`RpcError`]: unknown method, wrong argument count or types
    /// (the home node's decode error), transport, deadline; an object of
    /// this node ([`RpcError::Unreachable`]).
    pub async fn call_dynamic(
        &self,
        cap: Capability,
        method: &str,
        args: &[ciborium::Value],
    ) -> Result<Result<ciborium::Value, ciborium::Value>, RpcError> {
        let handle = codec::resolve_dynamic(self.core(), cap)?;
        let payloads = args
            .iter()
            .enumerate()
            .map(|(i, a)| handle.encode(a, &format!("argument {i}")))
            .collect::<Result<Vec<_>, _>>()?;
        match handle.call(method, payloads).await? {
            crate::dispatch::Reply::Out(out) => handle.decode_out(out, method).map(Ok),
            crate::dispatch::Reply::Application(e) => handle.decode(&e, "error").map(Err),
        }
    }

    /// The capability of a reference, exporting it from this node if it is local.
    ///
    /// # Errors
    /// [`RpcError::Encode`] if it cannot be encoded.
    pub fn capability_of<R: serde::Serialize>(&self, r: &R) -> Result<Capability, RpcError> {
        let p = codec::encode_payload(self.core(), None, r, "reference")?;
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
        codec::with_fixed_id(id, || self.capability_of(r))
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
        self.core().exports.set_pinned(id, true)
    }

    /// Undoes [`Node::pin`]; the export is then collected once nobody leases it.
    pub fn unpin(&self, id: &ObjectId) -> bool {
        *id != BOOTSTRAP_OBJECT && self.core().exports.set_pinned(id, false)
    }

    /// Stops exporting the object with this id; its capability stops working.
    pub fn unexport(&self, id: &ObjectId) -> bool {
        *id != BOOTSTRAP_OBJECT && self.core().exports.remove(id)
    }

    /// Current counts of exports, proxies, connections and calls, and those
    /// of the attached services.
    pub fn stats(&self) -> NodeStats {
        let core = self.core();
        let conns = core.peers.all();
        let (transfers_out, transfers_in) = core.transfers.counts();
        let traffic = core.peers.traffic();
        let mut stats = NodeStats {
            exports: core.exports.len(),
            leases: core.exports.lease_count(),
            imports: core.imports.len(),
            connections: conns.len(),
            inflight_requests: conns.iter().map(|c| c.inflight_requests()).sum(),
            pending_calls: conns.iter().map(|c| c.pending_calls()).sum(),
            transfers_out,
            transfers_in,
            bytes_sent: traffic.sent.load(Ordering::Relaxed),
            bytes_received: traffic.received.load(Ordering::Relaxed),
            data_items: 0,
            queued_bytes: conns.iter().map(|c| c.backlog() as u64).sum(),
            calls_served: self.inner.answered.0.load(Ordering::Relaxed),
            calls_failed: self.inner.answered.1.load(Ordering::Relaxed),
        };
        self.inner.extensions.add_stats(&mut stats);
        stats
    }

    /// Each open connection: the peer, and its calls and queued bytes.
    pub fn peer_stats(&self) -> Vec<PeerStats> {
        self.core()
            .peers
            .all()
            .iter()
            .map(|c| PeerStats {
                node: c.peer,
                addr: c.peer_listen.clone(),
                inflight_requests: c.inflight_requests(),
                pending_calls: c.pending_calls(),
                queued_bytes: c.backlog() as u64,
            })
            .collect()
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
        let reason = match tokio::time::timeout(
            inner.core.config.shutdown_grace,
            inner.tasks.wait(),
        )
        .await
        {
            // Every request read was answered: the peers may send their
            // pending calls again elsewhere (they were not run).
            Ok(()) => RpcError::Shutdown,
            Err(_) => {
                tracing::warn!(
                    remaining = inner.tasks.len(),
                    "shutdown grace period over; abandoning running calls"
                );
                RpcError::ConnectionLost {
                    peer: self.id().to_string(),
                    reason: "the node shut down with calls still running".into(),
                }
            }
        };
        inner.core.peers.close_all(&reason);
        inner.core.exports.clear();
    }
}
