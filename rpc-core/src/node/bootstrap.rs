//! The bootstrap registry every node exports under one well-known object id
//! (the equivalent of the RMI registry): names bound on the node, class
//! factories, and the node's counts. Both sides live here: the skeleton,
//! and the [`Node`] methods that call another node's registry.

use super::{Node, NodeInner, NodeStats, PeerStats};
use crate::dispatch::codec::{decode_payload, encode_payload};
use crate::dispatch::{BoxFuture, IncomingCall, RemoteRef, ServerProxy};
use crate::error::RpcError;
use crate::ids::{Capability, ComHandle, NodeId, ObjectId};
use crate::registry::classes::{ClassDescription, ClassInfo};
use crate::transport::connection::Connection;
use crate::wire::{Arg, ArgList, Payload, ResponseBody};
use std::sync::{Arc, Weak};
use std::time::Duration;
use uuid::Uuid;

/// Object id of the bootstrap registry every node exports (the equivalent of
/// the RMI registry): the one well-known id, from which all others are found.
pub const BOOTSTRAP_OBJECT: ObjectId = ObjectId(Uuid::nil());

/// Class of the bootstrap registry.
pub(crate) static BOOTSTRAP_CLASS: ClassInfo = ClassInfo::new(
    "rpc.Bootstrap",
    "lookup(String) -> Option<Capability>; create(String) -> Option<Capability>; stats() -> NodeStats; peers() -> Vec<PeerStats>; describe(String) -> Option<ClassDescription>;",
    &["lookup", "create", "stats", "peers", "describe"],
);

/// Exports the bootstrap registry of a new node, pinned.
pub(super) fn export(inner: &Arc<NodeInner>) {
    let boot: Arc<dyn ServerProxy> = Arc::new(Bootstrap {
        node: Arc::downgrade(inner),
    });
    let key = Arc::as_ptr(&boot) as *const () as usize;
    let exports = &inner.core.exports;
    exports.export(
        key,
        &BOOTSTRAP_CLASS,
        Some(BOOTSTRAP_OBJECT),
        Duration::ZERO,
        || (boot, Box::new(())),
    );
    exports.set_pinned(&BOOTSTRAP_OBJECT, true);
}

impl Node {
    /// Asks the node at `addr` for a new instance of class `R` (class-based RPC).
    ///
    /// # Errors
    /// [`RpcError::NotBound`] when that node offers no such class; transport errors.
    pub async fn create<R: RemoteRef>(&self, addr: &str) -> Result<R, RpcError> {
        let conn = self.core().peers.connect_addr(addr).await?;
        let cap = self
            .bootstrap_capability(&conn, "create", R::CLASS.name)
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
        let conn = self.core().peers.connect_addr(addr).await?;
        let cap = self.bootstrap_capability(&conn, "lookup", name).await?;
        self.resolve(cap)
    }

    /// Looks `name` up in the bootstrap registry of the connected node
    /// `peer`, over the connection this node has to it (one made with
    /// [`Node::connect_stream`], say).
    ///
    /// # Errors
    /// [`RpcError::Unreachable`] without a connection to `peer`; as
    /// [`Node::lookup`].
    pub async fn lookup_peer<R: RemoteRef>(&self, peer: NodeId, name: &str) -> Result<R, RpcError> {
        let conn = self.core().peers.get(&peer).ok_or(RpcError::Unreachable {
            peer: format!("{peer:?}"),
            reason: "no connection to that node".into(),
        })?;
        let cap = self.bootstrap_capability(&conn, "lookup", name).await?;
        self.resolve(cap)
    }

    /// Asks the node at `addr` for its counts of exports, leases, proxies,
    /// connections and calls.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn remote_stats(&self, addr: &str) -> Result<NodeStats, RpcError> {
        let conn = self.core().peers.connect_addr(addr).await?;
        self.bootstrap_call(&conn, "stats", &[]).await
    }

    /// Asks the node at `addr` for its connections (see [`Node::peer_stats`]).
    ///
    /// # Errors
    /// Transport errors.
    pub async fn remote_peer_stats(&self, addr: &str) -> Result<Vec<PeerStats>, RpcError> {
        let conn = self.core().peers.connect_addr(addr).await?;
        self.bootstrap_call(&conn, "peers", &[]).await
    }

    /// Asks the home node of `cap` to describe the object's class (every
    /// node describes the classes linked into it); `None` if it does not
    /// know that class and version.
    ///
    /// # Errors
    /// Transport errors; [`RpcError::Unreachable`] for a home that does not listen.
    pub async fn describe(&self, cap: &Capability) -> Result<Option<ClassDescription>, RpcError> {
        let addr = cap
            .home
            .addr
            .as_deref()
            .ok_or_else(|| RpcError::Unreachable {
                peer: format!("{:?}", cap.home.node),
                reason: "the object's node does not listen".into(),
            })?;
        let conn = self.core().peers.connect_addr(addr).await?;
        let key = format!("{:016x}:{:016x}", cap.class.0, cap.version.0);
        self.bootstrap_call(&conn, "describe", &[&key]).await
    }

    /// Calls `method` of the bootstrap registry of the peer of `conn` and
    /// decodes its single result.
    async fn bootstrap_call<T: serde::de::DeserializeOwned>(
        &self,
        conn: &Arc<Connection>,
        method: &str,
        args: &[&str],
    ) -> Result<T, RpcError> {
        let core = self.core();
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
            .map(|a| encode_payload(core, None, a, "name").map(Arg::Inline))
            .collect::<Result<Vec<_>, _>>()?;
        let body = conn
            .call(target, ArgList::new(method, args), core.config.call_timeout)
            .await?;
        let out = match body {
            ResponseBody::Out(out) => core.transfers.materialize_all(conn, out).await?,
            ResponseBody::System(e) => return Err(e),
            ResponseBody::Application(_) => {
                return Err(RpcError::protocol(format!(
                    "bootstrap `{method}` returned an application error"
                )));
            }
        };
        let [p] = <[Payload; 1]>::try_from(out)
            .map_err(|_| RpcError::protocol(format!("bootstrap `{method}` returned no result")))?;
        decode_payload(core, &p, method)
    }

    /// A bootstrap lookup or creation: the capability, or `NotBound`.
    async fn bootstrap_capability(
        &self,
        conn: &Arc<Connection>,
        method: &str,
        name: &str,
    ) -> Result<Capability, RpcError> {
        let cap: Option<Capability> = self.bootstrap_call(conn, method, &[name]).await?;
        cap.ok_or_else(|| RpcError::NotBound {
            name: name.to_owned(),
        })
    }
}

/// The bootstrap registry's skeleton, hand-written because rpc-core cannot use
/// its own macro for a class that must exist before any other.
struct Bootstrap {
    /// The node it serves; weak, because the node's export table holds this.
    node: Weak<NodeInner>,
}

impl ServerProxy for Bootstrap {
    fn class(&self) -> &'static ClassInfo {
        &BOOTSTRAP_CLASS
    }

    fn dispatch(self: Arc<Self>, call: IncomingCall) -> BoxFuture<'static, ResponseBody> {
        Box::pin(async move {
            let Some(inner) = self.node.upgrade() else {
                return ResponseBody::System(RpcError::Shutdown);
            };
            let node = Node { inner };
            match call.method() {
                "stats" | "peers" => {
                    if let Err(e) = call.expect_args(0) {
                        return ResponseBody::System(e);
                    }
                    return if call.method() == "stats" {
                        call.reply::<_, ()>(Ok(node.stats()))
                    } else {
                        call.reply::<_, ()>(Ok(node.peer_stats()))
                    };
                }
                _ => {}
            }
            let name: String = match call.expect_args(1).and_then(|()| call.arg(0, "name")) {
                Ok(n) => n,
                Err(e) => return ResponseBody::System(e),
            };
            match call.method() {
                "lookup" => call.reply::<_, ()>(Ok(node.bootstrap_entry(&name))),
                "describe" => call.reply::<_, ()>(Ok(describe_local(&name))),
                "create" => {
                    let factory = node.inner.factories.read().get(&name).cloned();
                    match factory.map(|f| f(&node)).transpose() {
                        Ok(cap) => call.reply::<_, ()>(Ok(cap)),
                        Err(e) => ResponseBody::System(e),
                    }
                }
                _ => ResponseBody::System(call.no_such_method()),
            }
        })
    }
}

/// The description of the class named by `key` (`"{id:016x}:{version:016x}"`)
/// if it is linked into this program.
fn describe_local(key: &str) -> Option<ClassDescription> {
    let (id, version) = key.split_once(':')?;
    let id = u64::from_str_radix(id, 16).ok()?;
    let version = u64::from_str_radix(version, 16).ok()?;
    crate::class_registry()
        .get(crate::ids::ClassId(id), crate::ids::ClassVersion(version))
        .map(ClassInfo::describe)
}
