//! The connections of one node: the open ones by peer id, new ones dialed
//! by address or accepted, each handshaken and started here.
//!
//! Dialing is per address: concurrent first calls to one address share one
//! dial (and one connection), while dials to different addresses never wait
//! for each other, so an address that does not answer holds up nobody else.

use crate::config::Config;
use crate::error::RpcError;
use crate::ids::{ComHandle, NodeId};
use crate::transport::connection::{Connection, Handler, Traffic};
use crate::transport::handshake::{self, LocalHello};
use crate::transport::stream::{self, ReadHalf, WriteHalf};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

/// Splits a handshaken stream for [`Connection::start`].
pub(crate) type Split<S> = fn(S) -> (ReadHalf, Box<dyn WriteHalf>);

/// The connections of one node.
pub(crate) struct Peers {
    /// This node's id, offered in every hello.
    local: NodeId,
    /// Frame limit, handshake timeout, keepalive of new connections.
    config: Config,
    /// The address put into hellos and capabilities, once the node listens;
    /// read on every export, written once or twice in a node's life.
    advertised: RwLock<Option<String>>,
    /// Where connections hand requests and their end (the node); weak,
    /// because the node owns this table.
    handler: Weak<dyn Handler>,
    /// Byte counters shared by every connection.
    traffic: Arc<Traffic>,
    /// Open connections by peer; short lookups only, never held across an await.
    conns: Mutex<HashMap<NodeId, Arc<Connection>>>,
    /// One lock per address being dialed, so that concurrent first calls to
    /// one address share its connection; removed when the dial is done.
    /// The map's own lock is held for lookups only.
    dialing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Set on shutdown: no new connection starts.
    closed: AtomicBool,
}

impl Peers {
    /// The table of a node `local`, whose connections report to `handler`.
    pub(crate) fn new(local: NodeId, config: Config, handler: Weak<dyn Handler>) -> Peers {
        Peers {
            local,
            config,
            advertised: RwLock::new(None),
            handler,
            traffic: Arc::default(),
            conns: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Sets the address other nodes are told to dial.
    pub(crate) fn set_advertised(&self, addr: String) {
        *self.advertised.write() = Some(addr);
    }

    /// The address other nodes are told to dial, if this node listens.
    pub(crate) fn advertised(&self) -> Option<String> {
        self.advertised.read().clone()
    }

    /// Where this node can be reached, as put into its capabilities.
    pub(crate) fn com_handle(&self) -> ComHandle {
        ComHandle {
            node: self.local,
            addr: self.advertised(),
        }
    }

    /// Byte counters of all connections.
    pub(crate) fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    fn local_hello(&self) -> LocalHello {
        LocalHello {
            node: self.local,
            listen: self.advertised(),
            max_frame: self.config.max_frame_len,
        }
    }

    /// The open connection to `peer`.
    pub(crate) fn get(&self, peer: &NodeId) -> Option<Arc<Connection>> {
        self.conns
            .lock()
            .get(peer)
            .filter(|c| !c.is_closed())
            .cloned()
    }

    /// Every connection in the table.
    pub(crate) fn all(&self) -> Vec<Arc<Connection>> {
        self.conns.lock().values().cloned().collect()
    }

    fn find_by_addr(&self, addr: &str) -> Option<Arc<Connection>> {
        self.conns
            .lock()
            .values()
            .find(|c| c.peer_listen.as_deref() == Some(addr) && !c.is_closed())
            .cloned()
    }

    fn register(&self, conn: &Arc<Connection>) {
        if let Some(old) = self.conns.lock().insert(conn.peer, Arc::clone(conn)) {
            // Keep the old one running for calls already on it; new calls use the new one.
            tracing::debug!(peer = ?old.peer, "second connection to the same peer");
        }
    }

    /// Forgets `conn` after it closed (unless another connection to its
    /// peer has replaced it).
    pub(crate) fn forget(&self, conn: &Arc<Connection>) {
        let mut m = self.conns.lock();
        if m.get(&conn.peer).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            m.remove(&conn.peer);
        }
    }

    /// Refuses new connections and closes every open one with `reason`.
    pub(crate) fn close_all(&self, reason: &RpcError) {
        self.closed.store(true, Ordering::SeqCst);
        let conns: Vec<_> = self.conns.lock().drain().map(|(_, c)| c).collect();
        for c in conns {
            c.close(reason);
        }
    }

    /// Wraps a handshaken stream in a connection and registers it.
    fn start(
        &self,
        halves: (ReadHalf, Box<dyn WriteHalf>),
        peer: &crate::wire::Hello,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Arc<Connection>, RpcError> {
        let handler = self.handler.upgrade().ok_or(RpcError::Shutdown)?;
        if self.closed.load(Ordering::SeqCst) {
            return Err(RpcError::Shutdown);
        }
        Ok(Connection::start(
            halves,
            self.local,
            peer,
            &self.config,
            handler,
            Arc::clone(&self.traffic),
            permit,
            |c| self.register(c),
        ))
    }

    /// Runs the accepting side of the handshake on `stream` (within the
    /// handshake timeout) and starts the connection.
    ///
    /// # Errors
    /// [`RpcError::Protocol`] for a bad or foreign hello;
    /// [`RpcError::Unreachable`] when the handshake times out.
    pub(crate) async fn accept<S>(
        &self,
        mut stream: S,
        split: Split<S>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Arc<Connection>, RpcError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let hello = self.local_hello();
        let max = self.config.max_frame_len;
        let peer = tokio::time::timeout(
            self.config.handshake_timeout,
            handshake::handshake_accept(&mut stream, &hello, max),
        )
        .await
        .map_err(|_| RpcError::Unreachable {
            peer: "incoming connection".into(),
            reason: "handshake timed out".into(),
        })??;
        self.start(split(stream), &peer, permit)
    }

    /// Runs the dialing side of the handshake on `stream` and starts the
    /// connection; `addr` (if known) is remembered as the peer's address.
    ///
    /// # Errors
    /// As [`Peers::accept`].
    pub(crate) async fn dial_over<S>(
        &self,
        mut stream: S,
        split: Split<S>,
        addr: Option<&str>,
    ) -> Result<Arc<Connection>, RpcError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let unreachable = |reason: String| RpcError::Unreachable {
            peer: addr.unwrap_or("stream").to_owned(),
            reason,
        };
        let hello = self.local_hello();
        let mut peer = match tokio::time::timeout(
            self.config.handshake_timeout,
            handshake::handshake_connect(&mut stream, &hello, self.config.max_frame_len),
        )
        .await
        {
            Ok(Ok(h)) => h,
            Ok(Err(e @ RpcError::Protocol { .. })) => return Err(e),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => return Err(unreachable("handshake timed out".into())),
        };
        if let Some(addr) = addr {
            // Remember the peer by the address we reached it at, whatever it announces.
            peer.listen = Some(addr.to_owned());
        }
        self.start(split(stream), &peer, None)
    }

    /// Connection to the node at `addr`: an open one, or a new one dialed
    /// now. Concurrent callers for one address share one dial.
    ///
    /// # Errors
    /// [`RpcError::Unreachable`] when no connection can be made.
    pub(crate) async fn connect_addr(&self, addr: &str) -> Result<Arc<Connection>, RpcError> {
        if let Some(c) = self.find_by_addr(addr) {
            return Ok(c);
        }
        let lock = Arc::clone(self.dialing.lock().entry(addr.to_owned()).or_default());
        let result = {
            let _turn = lock.lock().await;
            match self.find_by_addr(addr) {
                Some(c) => Ok(c),
                None => self.dial(addr).await,
            }
        };
        let mut dialing = self.dialing.lock();
        // The map and this function hold the last references: nobody waits.
        if Arc::strong_count(&lock) == 2 {
            dialing.remove(addr);
        }
        result
    }

    async fn dial(&self, addr: &str) -> Result<Arc<Connection>, RpcError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(RpcError::Shutdown);
        }
        let timeout = self.config.handshake_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(RpcError::Unreachable {
                    peer: addr.to_owned(),
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(RpcError::Unreachable {
                    peer: addr.to_owned(),
                    reason: "connect timed out".into(),
                });
            }
        };
        self.dial_over(stream, stream::split_tcp, Some(addr)).await
    }

    /// Connection to the node `home` names: an open one to that node id, or
    /// a new one to its address.
    ///
    /// # Errors
    /// [`RpcError::Unreachable`] when the node does not listen and has no
    /// connection here, when no connection can be made, or when another
    /// node answers at its address.
    pub(crate) async fn conn_to(&self, home: &ComHandle) -> Result<Arc<Connection>, RpcError> {
        if let Some(c) = self.get(&home.node) {
            return Ok(c);
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
}
