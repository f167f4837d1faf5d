//! The large message proxy: values too big to travel inline are kept by their
//! sender as an outgoing transfer, announced by a [`TransferMeta`], and pulled
//! by the receiver in chunks with a window of requests in flight.
//!
//! Pulling keeps the connection free for other calls: at most `window` chunks
//! of one transfer are ever in flight, and chunk frames go through the
//! connection's low-priority queue, behind small frames. [`Blob`] carries a
//! value that stays on disk on the sending side and can be written to disk
//! chunk by chunk on the receiving side, so a file larger than memory crosses
//! with bounded memory.
//!
//! - `table`: the transfers of one node, both directions (offer, chunk
//!   requests, ends, a peer gone, idle sweep).
//! - `serve`: the sender's chunk server threads.
//! - `sink`: where a pull puts the bytes (memory, or a file by a writer thread).
//! - `pull`: the receiver's windowed pull, and the routing of call values
//!   (inline, or a transfer) both ways.
//! - `blob`: [`Blob`], the byte value that always travels as a transfer.

pub(crate) mod blob;
pub(crate) mod pull;
pub(crate) mod serve;
pub(crate) mod sink;
pub(crate) mod table;

pub use blob::Blob;

use crate::config::Config;
use crate::error::RpcError;
use crate::ids::{NodeId, TransferId};
use crate::transport::connection::Connection;
use crate::transport::peers::Peers;
use crate::wire::TransferMeta;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest value whose whole CRC-32 is computed up front (on the sending
/// task: about 0.1 s per GiB); above it the per-chunk CRCs carry integrity.
pub(crate) const WHOLE_CHECKSUM_LIMIT: usize = 16 * 1024 * 1024;

/// The whole-value checksum announced for `bytes`, if it is cheap enough.
fn whole_checksum(bytes: &[u8]) -> Option<u32> {
    (bytes.len() <= WHOLE_CHECKSUM_LIMIT).then(|| crc32fast::hash(bytes))
}

/// Bytes a chunk frame needs besides its data (envelope, ids, CRC), with room to spare.
const CHUNK_FRAME_OVERHEAD: usize = 256;

/// Both directions of one node's transfers, and what pulling needs: the
/// node's id, its limits and its connections.
pub(crate) struct Transfers {
    /// This node's id: the sender of what it offers.
    me: NodeId,
    /// Chunk size, window, timeouts, thresholds.
    config: Config,
    /// Connections, to find the one to a transfer's sender.
    peers: Arc<Peers>,
    /// Values we keep for others; short critical sections only.
    outgoing: Mutex<HashMap<TransferId, Arc<table::Outgoing>>>,
    /// Values we are pulling, by transfer id, to route arriving chunks.
    incoming: Mutex<HashMap<TransferId, table::Incoming>>,
}

impl Transfers {
    /// The transfers of node `me`, over its connections `peers`.
    pub(crate) fn new(me: NodeId, config: Config, peers: Arc<Peers>) -> Transfers {
        Transfers {
            me,
            config,
            peers,
            outgoing: Mutex::new(HashMap::new()),
            incoming: Mutex::new(HashMap::new()),
        }
    }

    /// The connection to pull transfer `meta` over: the one to its sender.
    pub(crate) fn conn_for(&self, meta: &TransferMeta) -> Result<Arc<Connection>, RpcError> {
        self.peers
            .get(&meta.sender)
            .ok_or_else(|| failed("the connection to the sender is gone"))
    }
}

pub(crate) fn failed(reason: impl Into<String>) -> RpcError {
    RpcError::TransferFailed {
        reason: reason.into(),
    }
}

thread_local! {
    /// The transfers of the node encoding or decoding call values on this
    /// thread, and the call's peer: what a [`Blob`] offers itself to, or is
    /// pulled through. Set by the dispatch layer around every encode and decode.
    static SCOPE: RefCell<Option<(Arc<Transfers>, Option<NodeId>)>> = const { RefCell::new(None) };
}

/// Runs `f` with `transfers` as this thread's scope for values exchanged with `peer`.
pub(crate) fn with_scope<R>(
    transfers: &Arc<Transfers>,
    peer: Option<NodeId>,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<(Arc<Transfers>, Option<NodeId>)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCOPE.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let prev = SCOPE.with(|c| c.borrow_mut().replace((Arc::clone(transfers), peer)));
    let _restore = Restore(prev);
    f()
}

/// The scope set by [`with_scope`] on this thread.
fn scope() -> Option<(Arc<Transfers>, Option<NodeId>)> {
    SCOPE.with(|c| c.borrow().clone())
}
