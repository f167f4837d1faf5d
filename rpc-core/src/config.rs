//! Node configuration: limits, timeouts and buffer sizes, each with a documented default.

use crate::credentials::TlsCredentials;
use crate::ids::NodeId;
use std::sync::Arc;
use std::time::Duration;

/// Default hard limit on a frame body, in bytes (16 MiB).
pub(crate) const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;
/// Default deadline of a call when the caller sets none.
pub(crate) const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on requests a peer may have running on this node over one connection.
pub(crate) const MAX_INFLIGHT_PER_CONNECTION: usize = 4096;
/// Default cap on open connections accepted by a listening node.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// Default time a new connection has to complete its handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time in-flight calls get to finish on shutdown.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Default time without traffic after which a connection sends a ping.
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Default time without any frame from the peer after which the connection is
/// declared dead (the peer is paused, gone, or the path is cut).
pub(crate) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default lease a node takes on the objects it holds proxies to; renewed at
/// half of it. A holder that dies releases its objects after this long.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Most object ids in one lease (dirty or clean) message.
pub(crate) const MAX_IDS_PER_LEASE_MESSAGE: usize = 4096;
/// Default size above which an argument or result goes through the large
/// message proxy instead of inline, in bytes.
pub(crate) const LARGE_THRESHOLD: usize = 64 * 1024;
/// Default chunk size of transfers, in bytes.
pub(crate) const CHUNK_SIZE: usize = 64 * 1024;
/// Default number of chunk requests a receiver keeps in flight per transfer.
pub(crate) const TRANSFER_WINDOW: usize = 8;
/// Default time a transfer may go without progress before either side drops it.
pub(crate) const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest value pulled into memory (automatic routing, `Blob::into_bytes`), in bytes.
pub(crate) const MAX_LARGE_VALUE: u64 = 2 * 1024 * 1024 * 1024;
/// Initial capacity of a connection's read buffer, in bytes.
pub(crate) const READ_BUFFER: usize = 64 * 1024;

/// Settings of one [`Node`](crate::Node).
#[derive(Debug, Clone)]
pub struct Config {
    /// Fixed node id (for servers whose capabilities must survive a restart);
    /// random when `None`.
    pub node_id: Option<NodeId>,
    /// Address (`HOST:PORT`) put into this node's capabilities, for nodes
    /// that listen on one address and are reached at another (behind NAT,
    /// or listening on `0.0.0.0`). When `None`, the listening address; for
    /// an unspecified one (`0.0.0.0`, `[::]`), a routable address of this
    /// host (see [`Node::serve`](crate::Node::serve)).
    pub advertise: Option<String>,
    /// Mutual TLS with these credentials on every connection, accepted or
    /// dialed; plaintext peers and certificates of another CA are refused.
    /// The node id is then derived from the certificate's name and
    /// [`Config::node_id`] (or a random seed), so peers can check it.
    pub tls: Option<Arc<TlsCredentials>>,
    /// Largest frame body accepted or sent, in bytes.
    pub max_frame_len: usize,
    /// Deadline of a call that sets none.
    pub call_timeout: Duration,
    /// Requests one connection may have running here at once; more get `Overloaded`.
    pub max_inflight_per_connection: usize,
    /// Connections a listening node accepts at once; more wait in the backlog.
    pub max_connections: usize,
    /// Time a new connection has to complete its handshake.
    pub handshake_timeout: Duration,
    /// Time in-flight calls get to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Lease this node takes on objects it holds proxies to, and the grace an
    /// object it sends gets before the receiver's lease must have arrived.
    pub lease: Duration,
    /// Encoded size above which a value goes through the large message proxy.
    pub large_threshold: usize,
    /// Bytes per chunk of a transfer.
    pub chunk_size: usize,
    /// Chunk requests a receiver keeps in flight per transfer.
    pub transfer_window: usize,
    /// Time a transfer may go without progress before it is dropped.
    pub transfer_timeout: Duration,
    /// Largest value this node pulls into memory.
    pub max_large_value: u64,
    /// Idle time after which a connection pings its peer.
    pub keepalive_interval: Duration,
    /// Time without any frame from the peer after which the connection is closed
    /// and its calls fail with `ConnectionLost`.
    pub keepalive_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: None,
            advertise: None,
            tls: None,
            max_frame_len: MAX_FRAME_LEN,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_inflight_per_connection: MAX_INFLIGHT_PER_CONNECTION,
            max_connections: MAX_CONNECTIONS,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            shutdown_grace: SHUTDOWN_GRACE,
            lease: DEFAULT_LEASE,
            large_threshold: LARGE_THRESHOLD,
            chunk_size: CHUNK_SIZE,
            transfer_window: TRANSFER_WINDOW,
            transfer_timeout: TRANSFER_TIMEOUT,
            max_large_value: MAX_LARGE_VALUE,
            keepalive_interval: KEEPALIVE_INTERVAL,
            keepalive_timeout: KEEPALIVE_TIMEOUT,
        }
    }
}
