//! The connections of one node: the open ones by peer id, new ones dialed
//! by address or accepted, each handshaken and started here.
//!
//! Dialing is per address: concurrent first calls to one address share one
//! dial (and one connection), while dials to different addresses never wait
//! for each other, so an address that does not answer holds up nobody else.

use crate::budget::Grant;
use crate::config::Config;
use crate::credentials::CertIdentity;
use crate::error::RpcError;
use crate::ids::{ComHandle, IdMap, Identity, NodeId};
use crate::transport::address::Advertised;
use crate::transport::connection::{Connection, Handler, Traffic};
use crate::transport::handshake::{self, LocalHello};
use crate::transport::listener::Admission;
use crate::transport::stream::{self, ReadHalf, WriteHalf};
use crate::transport::tls::{TLS_HANDSHAKE_BYTE, Tls};
use crate::wire::Hello;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use uuid::Uuid;

/// Splits a handshaken stream for [`Connection::start`].
pub(crate) type Split<S> = fn(S) -> (ReadHalf, Box<dyn WriteHalf>);

/// The connections of one node.
pub(crate) struct Peers {
    /// This node's id, offered in every hello.
    local: NodeId,
    /// Frame limit, handshake timeout, keepalive of new connections.
    config: Config,
    /// The address put into hellos and capabilities, once the node listens.
    advertised: Advertised,
    /// Where connections hand requests and their end (the node); weak,
    /// because the node owns this table.
    handler: Weak<dyn Handler>,
    /// Byte counters shared by every connection.
    traffic: Arc<Traffic>,
    /// Open connections by peer; short lookups only, never held across an await.
    conns: Mutex<IdMap<NodeId, Arc<Connection>>>,
    /// One lock per address being dialed, so that concurrent first calls to
    /// one address share its connection; removed when the dial is done.
    /// The map's own lock is held for lookups only.
    dialing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Set on shutdown: no new connection starts.
    closed: AtomicBool,
    /// Over TLS: the seed this node's id is derived from with its
    /// certificate's name, sent in its hello.
    seed: Option<Uuid>,
    /// The TLS configuration when the node runs TLS (or why its
    /// credentials could not be used: every handshake then fails saying so).
    tls: Option<Result<Tls, String>>,
}

fn already_connected(node: NodeId) -> RpcError {
    RpcError::protocol(format!(
        "node {node} is connected already; a second connection claiming its id is refused"
    ))
}

impl Peers {
    /// The table of a node `local` (over TLS, derived from `seed`), whose
    /// connections report to `handler`.
    pub(crate) fn new(
        local: NodeId,
        seed: Option<Uuid>,
        config: Config,
        handler: Weak<dyn Handler>,
    ) -> Peers {
        let tls = config.tls.as_deref().map(Tls::new);
        Peers {
            seed,
            tls,
            local,
            config,
            advertised: Advertised::default(),
            handler,
            traffic: Arc::default(),
            conns: Mutex::new(IdMap::default()),
            dialing: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// The node listens on `local`: sets the address other nodes are told
    /// to dial (the configured one, or one derived from `local`).
    ///
    /// # Errors
    /// `InvalidInput` for a configured address nobody can dial.
    pub(crate) fn listening(&self, local: std::net::SocketAddr) -> std::io::Result<Option<String>> {
        self.advertised
            .listen(local, self.config.advertise.as_deref())
    }

    /// The address other nodes are told to dial, if this node listens.
    pub(crate) fn advertised(&self) -> Option<String> {
        self.advertised.get()
    }

    /// Where this node can be reached, as put into its capabilities.
    pub(crate) fn com_handle(&self) -> ComHandle {
        ComHandle {
            node: self.local,
            addr: self.advertised(),
        }
    }

    /// An accepted TCP connection has local address `local` (what the peer
    /// dialed): a listener on an unspecified address may learn from it.
    pub(crate) fn observe_local(&self, local: std::net::SocketAddr) {
        self.advertised.observe(local);
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
            seed: self.seed,
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

    /// Enters a new connection in the table. A connection accepted in
    /// plaintext is refused while its node is connected already: its id is
    /// only a claim, and it must not take over another's callbacks. Over
    /// TLS the id is bound to the certificate, and a dialed connection is to
    /// the node we chose: those replace an older one (which keeps serving
    /// the calls already on it).
    fn register(&self, conn: &Arc<Connection>, exclusive: bool) -> Result<(), RpcError> {
        let mut m = self.conns.lock();
        if exclusive && m.get(&conn.peer).is_some_and(|c| !c.is_closed()) {
            return Err(already_connected(conn.peer));
        }
        if m.insert(conn.peer, Arc::clone(conn)).is_some() {
            tracing::debug!(peer = ?conn.peer, "second connection to the same peer");
        }
        Ok(())
    }

    /// Forgets `conn` after it closed (unless another connection to its
    /// peer has replaced it).
    pub(crate) fn forget(&self, conn: &Arc<Connection>) {
        let mut m = self.conns.lock();
        if m.get(&conn.peer).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            m.remove(&conn.peer);
        }
    }

    /// True once the node shut down.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Refuses new connections and closes every open one, telling each
    /// peer `reason` in a `Close` frame.
    pub(crate) fn close_all(&self, reason: &RpcError) {
        self.closed.store(true, Ordering::SeqCst);
        let conns: Vec<_> = self.conns.lock().drain().map(|(_, c)| c).collect();
        for c in conns {
            c.fail(reason);
        }
    }

    /// Wraps a handshaken stream in a connection and registers it.
    fn start(
        &self,
        halves: (ReadHalf, Box<dyn WriteHalf>),
        peer: &Hello,
        identity: Identity,
        permit: Option<Grant<IpAddr>>,
        exclusive: bool,
    ) -> Result<Arc<Connection>, RpcError> {
        let handler = self.handler.upgrade().ok_or(RpcError::Shutdown)?;
        if self.closed.load(Ordering::SeqCst) {
            return Err(RpcError::Shutdown);
        }
        Connection::start(
            halves,
            self.local,
            peer,
            identity,
            &self.config,
            handler,
            Arc::clone(&self.traffic),
            permit,
            |c| self.register(c, exclusive),
        )
    }

    /// The TLS configuration, if this node runs TLS.
    ///
    /// # Errors
    /// [`RpcError::Protocol`] when its credentials could not be used.
    fn tls(&self) -> Result<Option<&Tls>, RpcError> {
        match &self.tls {
            None => Ok(None),
            Some(Ok(t)) => Ok(Some(t)),
            Some(Err(e)) => Err(RpcError::protocol(format!("TLS is not usable: {e}"))),
        }
    }

    /// Checks the hello of a peer whose certificate (over TLS) says `cert`:
    /// over TLS the id it claims must be the one its certificate's name and
    /// its seed derive; in plaintext the id is taken as claimed. An accepted
    /// plaintext peer must not claim the id of a connected node.
    fn admit(
        &self,
        hello: &Hello,
        cert: Option<CertIdentity>,
        accepting: bool,
    ) -> Result<Identity, RpcError> {
        let identity = match cert {
            Some(cert) => {
                let Some(seed) = hello.seed else {
                    return Err(RpcError::protocol(format!(
                        "hello of `{}` carries no seed for its node id",
                        cert.name
                    )));
                };
                let bound = NodeId::derive(&cert.name, seed);
                if bound != hello.node {
                    return Err(RpcError::protocol(format!(
                        "hello claims node {}, but certificate `{}` binds node {bound}",
                        hello.node, cert.name
                    )));
                }
                Identity {
                    node: hello.node,
                    name: Some(cert.name),
                    admin: cert.admin,
                }
            }
            None => {
                if accepting && self.get(&hello.node).is_some() {
                    return Err(already_connected(hello.node));
                }
                Identity {
                    node: hello.node,
                    name: None,
                    admin: false,
                }
            }
        };
        Ok(identity)
    }

    /// Accepts a TCP connection: over TLS when this node runs TLS (a
    /// plaintext peer is told so and refused), else in plaintext.
    ///
    /// # Errors
    /// As [`Peers::accept`]; [`RpcError::Protocol`] naming why TLS refused.
    pub(crate) async fn accept_tcp(
        &self,
        tcp: TcpStream,
        admission: Admission,
    ) -> Result<Arc<Connection>, RpcError> {
        let permit = Some(admission);
        let within = self.config.handshake_timeout;
        stream::tune_tcp(&tcp);
        match self.tls()? {
            None => {
                let mut tcp = tcp;
                let mut first = [0u8; 1];
                if let Ok(Ok(1)) = tokio::time::timeout(within, tcp.peek(&mut first)).await
                    && first[0] == TLS_HANDSHAKE_BYTE
                {
                    // A plaintext frame is no TLS record: the client's TLS
                    // library reports that the peer does not speak TLS.
                    let why = RpcError::protocol(
                        "this node runs in plaintext (no --tls); the peer speaks TLS",
                    );
                    handshake::refuse(&mut tcp, &why, self.hello_limit()).await;
                    return Err(why);
                }
                self.accept(tcp, stream::split_tcp, permit).await
            }
            Some(_) => {
                let mut tcp = tcp;
                let mut first = [0u8; 1];
                let peeked = tokio::time::timeout(within, tcp.peek(&mut first)).await;
                if matches!(peeked, Ok(Ok(1))) && first[0] != TLS_HANDSHAKE_BYTE {
                    let why = RpcError::protocol(
                        "this node accepts mutual TLS connections only (the peer runs without --tls)",
                    );
                    handshake::refuse(&mut tcp, &why, self.hello_limit()).await;
                    return Err(why);
                }
                self.accept(tcp, stream::split_any, permit).await
            }
        }
    }

    /// Runs the accepting side of the handshake on `stream` (TLS first when
    /// this node runs TLS; all within the handshake timeout) and starts the
    /// connection.
    ///
    /// # Errors
    /// [`RpcError::Protocol`] for a bad or foreign hello, a refused
    /// certificate, a claimed id; [`RpcError::Unreachable`] when the
    /// handshake times out.
    pub(crate) async fn accept<S>(
        &self,
        stream: S,
        split: Split<S>,
        permit: Option<Admission>,
    ) -> Result<Arc<Connection>, RpcError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let timed_out = || RpcError::Unreachable {
            peer: "incoming connection".into(),
            reason: "handshake timed out".into(),
        };
        let within = self.config.handshake_timeout;
        match self.tls()? {
            None => tokio::time::timeout(within, self.hello_in(stream, split, permit, None))
                .await
                .map_err(|_| timed_out())?,
            Some(tls) => tokio::time::timeout(within, async {
                let (tls_stream, cert) = tls.accept(stream).await?;
                self.hello_in(tls_stream, stream::split_any, permit, Some(cert))
                    .await
            })
            .await
            .map_err(|_| timed_out())?,
        }
    }

    /// The accepting side's hello exchange, then the connection.
    async fn hello_in<S>(
        &self,
        mut stream: S,
        split: Split<S>,
        admission: Option<Admission>,
        cert: Option<CertIdentity>,
    ) -> Result<Arc<Connection>, RpcError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = cert.is_some();
        let ((peer, identity), slot) = handshake::handshake_accept(
            &mut stream,
            &self.local_hello(),
            self.hello_limit(),
            |h| {
                let identity = self.admit(h, cert, true)?;
                let slot = admission.as_ref().map(Admission::connection).transpose()?;
                Ok((identity, slot))
            },
        )
        .await
        .map(|(h, (identity, slot))| ((h, identity), slot))?;
        // The handshake is over: its slot goes back (with `admission`).
        drop(admission);
        self.start(split(stream), &peer, identity, slot, !tls)
    }

    /// Largest hello accepted or sent: far below the frame limit, since it is
    /// what an unauthenticated peer can make this node buffer.
    fn hello_limit(&self) -> usize {
        self.config.max_hello_len.min(self.config.max_frame_len)
    }

    /// Runs the dialing side of the handshake on `stream` (TLS first when
    /// this node runs TLS) and starts the connection; `addr` (if known) is
    /// remembered as the peer's address.
    ///
    /// # Errors
    /// As [`Peers::accept`].
    pub(crate) async fn dial_over<S>(
        &self,
        stream: S,
        split: Split<S>,
        addr: Option<&str>,
    ) -> Result<Arc<Connection>, RpcError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let unreachable = |reason: String| RpcError::Unreachable {
            peer: addr.unwrap_or("stream").to_owned(),
            reason,
        };
        let within = self.config.handshake_timeout;
        let r = match self.tls()? {
            None => tokio::time::timeout(within, self.hello_out(stream, split, addr, None)).await,
            Some(tls) => {
                tokio::time::timeout(within, async {
                    let (tls_stream, cert) = tls.connect(stream).await?;
                    self.hello_out(tls_stream, stream::split_any, addr, Some(cert))
                        .await
                })
                .await
            }
        };
        match r {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e @ (RpcError::Protocol { .. } | RpcError::Shutdown))) => Err(e),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable("handshake timed out".into())),
        }
    }

    /// The dialing side's hello exchange, then the connection.
    async fn hello_out<S>(
        &self,
        mut stream: S,
        split: Split<S>,
        addr: Option<&str>,
        cert: Option<CertIdentity>,
    ) -> Result<Arc<Connection>, RpcError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut peer =
            handshake::handshake_connect(&mut stream, &self.local_hello(), self.hello_limit())
                .await?;
        let identity = self.admit(&peer, cert, false)?;
        if let Some(addr) = addr {
            // Remember the peer by the address we reached it at, whatever it announces.
            peer.listen = Some(addr.to_owned());
        }
        self.start(split(stream), &peer, identity, None, false)
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
            Ok(Ok(s)) => {
                stream::tune_tcp(&s);
                if let Ok(local) = s.local_addr() {
                    self.advertised.observe(local);
                }
                s
            }
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
        match self.tls()? {
            None => self.dial_over(stream, stream::split_tcp, Some(addr)).await,
            // The TLS stream is split through the generic seam.
            Some(_) => self.dial_over(stream, stream::split_any, Some(addr)).await,
        }
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
