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
/// Default chunk size of transfers, in bytes. Each chunk costs a request,
/// a frame and a hop to the blocking pool on each side: at 64 KiB that was
/// most of a transfer's CPU (1.9 s per GiB in-memory against 1.4 s at
/// 256 KiB, and 0.9 against 1.3 GB/s).
pub(crate) const CHUNK_SIZE: usize = 256 * 1024;
/// Default number of chunk requests a receiver keeps in flight per transfer.
/// The bytes in flight (window times chunk) are what small calls on the same
/// connection may queue behind, so a larger chunk comes with a smaller window:
/// 512 KiB in flight either way.
pub(crate) const TRANSFER_WINDOW: usize = 2;
/// Default time a transfer may go without progress before either side drops it.
pub(crate) const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30);
/// Default largest value pulled into memory (automatic routing, `Blob::into_bytes`), in bytes.
pub(crate) const MAX_LARGE_VALUE: u64 = 2 * 1024 * 1024 * 1024;
/// Initial capacity of a connection's read buffer, in bytes.
pub(crate) const READ_BUFFER: usize = 64 * 1024;
/// Default largest hello frame accepted, in bytes: a hello is a few hundred
/// bytes, and this is all an unauthenticated peer can make a node buffer.
pub(crate) const MAX_HELLO_LEN: usize = 4 * 1024;
/// Default cap on handshakes in progress, over all peers.
pub(crate) const MAX_HANDSHAKES: usize = 256;
/// Default cap on handshakes in progress from one remote address.
pub(crate) const MAX_HANDSHAKES_PER_ADDRESS: usize = 64;
/// Default cap on accepted connections from one remote address.
pub(crate) const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// Default cap on bytes queued for a peer that does not read, per connection.
pub(crate) const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;
/// Default cap on bytes of in-memory values kept for one peer to pull.
pub(crate) const MAX_OFFERED_BYTES_PER_PEER: u64 = 2 * 1024 * 1024 * 1024;
/// Default cap on bytes of in-memory values kept for all peers to pull.
pub(crate) const MAX_OFFERED_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Default cap on transfers open with one peer (offered and pulled), each
/// holding memory or a file descriptor.
pub(crate) const MAX_TRANSFERS_PER_PEER: usize = 64;
/// Default cap on transfers open with all peers.
pub(crate) const MAX_TRANSFERS: usize = 1024;
/// Default cap on bytes being pulled into memory from one peer at once.
pub(crate) const MAX_PULL_MEMORY_PER_PEER: u64 = 2 * 1024 * 1024 * 1024;
/// Default cap on bytes being pulled into memory from all peers at once.
pub(crate) const MAX_PULL_MEMORY: u64 = 4 * 1024 * 1024 * 1024;
/// Default cap on bytes being pulled to disk from one peer at once.
pub(crate) const MAX_PULL_DISK_PER_PEER: u64 = 64 * 1024 * 1024 * 1024;
/// Default free space a node keeps on a disk it writes pulled values to.
pub(crate) const MIN_FREE_DISK: u64 = 1024 * 1024 * 1024;

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
    /// Deadline of a call that sets none. It bounds the method, not the time
    /// the call's large values take to move: while a transfer with the peer
    /// keeps making progress, the call waits (see `transfer_timeout`). A
    /// deadline set with `with_timeout` bounds everything.
    pub call_timeout: Duration,
    /// Requests one connection may have running here at once, counted by
    /// call (default 4096); more get `Overloaded`. Reusing the id of a call
    /// still running is a protocol error.
    pub max_inflight_per_connection: usize,
    /// Connections a listening node accepts at once, all peers (default
    /// 1024); more are refused with `Overloaded`.
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
    /// Time a transfer may go without progress before it is dropped, and
    /// what bounds a moving transfer under the default call deadline.
    pub transfer_timeout: Duration,
    /// Largest value this node pulls into memory.
    pub max_large_value: u64,
    /// Idle time after which a connection pings its peer.
    pub keepalive_interval: Duration,
    /// Time without any frame from the peer after which the connection is closed
    /// and its calls fail with `ConnectionLost`.
    pub keepalive_timeout: Duration,

    // Budgets: what a peer can make this node hold. Each refusal is a typed
    // error the peer can act on (`Overloaded`, `TooLarge`, `QuotaExceeded`),
    // and the node goes on serving everyone else.
    /// Largest hello frame accepted, in bytes (default 4 KiB): what an
    /// unauthenticated peer can make the node buffer.
    pub max_hello_len: usize,
    /// Handshakes in progress at once, all peers (default 256); each lasts
    /// at most `handshake_timeout`, and a new one beyond the cap drops the
    /// oldest (a peer holding a socket open without a word).
    pub max_handshakes: usize,
    /// Handshakes in progress at once from one remote address (default 64),
    /// the oldest of that address dropped for a new one.
    pub max_handshakes_per_address: usize,
    /// Accepted connections from one remote address (default 256); more are
    /// refused with `Overloaded`.
    pub max_connections_per_address: usize,
    /// Bytes queued for a peer that does not read, per connection (default
    /// 16 MiB): while over, the connection reads no more of its requests.
    pub max_queued_bytes: usize,
    /// Bytes of in-memory values (large results and arguments) kept for one
    /// peer to pull (default 2 GiB); more fail with `Overloaded`.
    pub max_offered_bytes_per_peer: u64,
    /// The same for all peers together (default 4 GiB).
    pub max_offered_bytes: u64,
    /// Transfers open with one peer, offered and pulled, each holding
    /// memory or a file descriptor (default 64); more fail with `Overloaded`.
    pub max_transfers_per_peer: usize,
    /// The same for all peers together (default 1024).
    pub max_transfers: usize,
    /// Bytes being pulled into memory from one peer at once (default 2 GiB);
    /// more fail with `Overloaded`.
    pub max_pull_memory_per_peer: u64,
    /// The same for all peers together (default 4 GiB).
    pub max_pull_memory: u64,
    /// Bytes being pulled to disk from one peer at once (default 64 GiB).
    pub max_pull_disk_per_peer: u64,
    /// Free space kept on a disk that pulled values are written to (default
    /// 1 GiB): a value that would leave less fails with `QuotaExceeded`
    /// before a byte of it is written.
    pub min_free_disk: u64,
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
            max_hello_len: MAX_HELLO_LEN,
            max_handshakes: MAX_HANDSHAKES,
            max_handshakes_per_address: MAX_HANDSHAKES_PER_ADDRESS,
            max_connections_per_address: MAX_CONNECTIONS_PER_ADDRESS,
            max_queued_bytes: MAX_QUEUED_BYTES,
            max_offered_bytes_per_peer: MAX_OFFERED_BYTES_PER_PEER,
            max_offered_bytes: MAX_OFFERED_BYTES,
            max_transfers_per_peer: MAX_TRANSFERS_PER_PEER,
            max_transfers: MAX_TRANSFERS,
            max_pull_memory_per_peer: MAX_PULL_MEMORY_PER_PEER,
            max_pull_memory: MAX_PULL_MEMORY,
            max_pull_disk_per_peer: MAX_PULL_DISK_PER_PEER,
            min_free_disk: MIN_FREE_DISK,
        }
    }
}
