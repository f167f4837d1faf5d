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
//! - `serial`: in-order work on the blocking pool that holds a thread only
//!   while it has work (chunk servers and writers).
//! - `serve`: the sender's chunk servers.
//! - `sink`: where a pull puts the bytes (memory, or a file by a writer).
//! - `pull`: the receiver's windowed pull, and the routing of call values
//!   (inline, or a transfer) both ways.
//! - `blob`: [`Blob`], the byte value that always travels as a transfer.

pub(crate) mod blob;
pub(crate) mod pull;
pub(crate) mod serial;
pub(crate) mod serve;
pub(crate) mod sink;
pub(crate) mod table;

pub use blob::Blob;
pub use sink::{ChunkSink, ReadAt};

use crate::budget::{Budget, Grant};
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

/// Values from this size up are freed on the blocking pool: unmapping a
/// touched 512 MiB takes about 30 ms here, which on the connection's reader
/// (where a transfer's end is handled) or on a caller's task (which drops
/// its `Blob` when the call returns) stalled every call on that worker.
const FREE_OFF_RUNTIME: usize = 8 << 20;

/// Takes the bytes out of `bytes` and frees them on the blocking pool if
/// this is their last holder, they are large and a runtime is at hand;
/// otherwise leaves them to be dropped where they are.
fn free_off_runtime(bytes: &mut Arc<Vec<u8>>) {
    if bytes.len() >= FREE_OFF_RUNTIME
        && Arc::strong_count(bytes) == 1
        && let Ok(rt) = tokio::runtime::Handle::try_current()
    {
        let bytes = std::mem::take(bytes);
        drop(rt.spawn_blocking(move || free_in_steps(bytes)));
    }
}

/// Frees `bytes` if this is their last holder, as [`free_bytes`] does.
pub(crate) fn free_shared(mut bytes: Arc<Vec<u8>>) {
    free_off_runtime(&mut bytes);
}

/// Unlinks the file at `path` on the blocking pool when a runtime is at
/// hand, at once otherwise. For files under a name no one else will take
/// and in a directory emptied at the next start (the data store's `tmp/`),
/// so that a failed or never-run unlink leaves nothing for long. Unlinking
/// a large file waits for the file system to free its blocks, 40-60 ms for
/// 256 MiB here: too long to hold a runtime worker, or a caller that need
/// not wait for it.
pub(crate) fn unlink_off_runtime(path: std::path::PathBuf) {
    let unlink = move || {
        let _ = std::fs::remove_file(path);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(unlink)),
        Err(_) => unlink(),
    }
}

/// Frees a byte buffer as rpc-core frees the large values it holds, for an
/// application done with a large received value: from 8 MiB up and inside
/// a tokio runtime, on the blocking pool and 8 MiB at a time; smaller ones
/// (or outside a runtime) at once.
///
/// Dropping a touched 1 GiB `Vec` unmaps it in one call, which takes
/// 50-100 ms on a small VM and holds the kernel's mmap lock meanwhile:
/// every thread of the process that maps memory (any buffer that grows)
/// waits that long, runtime workers and their calls included, wherever the
/// drop runs.
///
/// ```
/// # async fn f(blob: rpc_core::Blob) -> Result<(), rpc_core::RpcError> {
/// let value = blob.into_bytes().await?;
/// // ... use it ...
/// rpc_core::free_bytes(value);
/// # Ok(())
/// # }
/// ```
pub fn free_bytes(bytes: Vec<u8>) {
    free_shared(Arc::new(bytes));
}

/// Bytes given back to the system per step by [`free_in_steps`].
const FREE_STEP: usize = 8 << 20;

/// Pause between two steps of [`free_in_steps`]: long enough for a thread
/// woken on the lock to take it (after a mere yield, the next step took it
/// again first, and a waiting `mmap` still waited up to 16 ms).
const FREE_PAUSE: std::time::Duration = std::time::Duration::from_micros(50);

/// Frees `bytes` (if this is their last holder) a [`FREE_STEP`] at a time
/// from the end, on a blocking thread. Unmapping holds the kernel's mmap
/// lock: one unmap of a touched 1 GiB held it for 60-110 ms here, and every
/// thread of the process that mapped memory meanwhile (malloc growing a
/// buffer) waited that long. In steps, an `mmap` in a test program waited
/// 0.5-0.7 ms at most, against 60-64 ms, and the free took 80 ms instead of
/// 60. glibc and musl shrink a large block in place (mremap). An allocator
/// that keeps the memory of a shrunk block (the first step gave nothing
/// back), or moves the block (it was copied), gets the rest dropped at once.
fn free_in_steps(bytes: Arc<Vec<u8>>) {
    let Ok(mut v) = Arc::try_unwrap(bytes) else {
        return;
    };
    let mut first = true;
    while v.capacity() > FREE_STEP {
        let (at, cap) = (v.as_ptr(), v.capacity());
        let before = first.then(resident_pages).flatten();
        let keep = cap - FREE_STEP;
        v.truncate(keep);
        v.shrink_to(keep);
        if v.as_ptr() != at || v.capacity() >= cap {
            break;
        }
        if first {
            first = false;
            let given = before
                .zip(resident_pages())
                .map(|(b, a)| b.saturating_sub(a));
            if given.is_none_or(|pages| pages < (FREE_STEP / 4096 / 2) as u64) {
                break;
            }
        }
        std::thread::sleep(FREE_PAUSE);
    }
}

/// Pages of memory this process has resident (Linux), to see whether a
/// shrunk block gave its memory back. (Counted as 4 KiB pages above: with
/// larger pages the check errs towards dropping the value at once.)
fn resident_pages() -> Option<u64> {
    std::fs::read_to_string("/proc/self/statm")
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
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
    /// When a transfer with each peer last moved, either way (a chunk asked
    /// for, a chunk received, a transfer ended): calls under the default
    /// deadline wait while their values move.
    moved_at: Mutex<HashMap<NodeId, tokio::time::Instant>>,
    /// Transfers open with each peer, both ways (each may hold memory or a
    /// file descriptor).
    open: Arc<Budget<NodeId>>,
    /// Bytes of in-memory values kept for each peer to pull.
    offered: Arc<Budget<NodeId>>,
    /// Bytes being pulled into memory from each peer.
    pull_memory: Arc<Budget<NodeId>>,
    /// Bytes being pulled to disk from each peer.
    pull_disk: Arc<Budget<NodeId>>,
}

impl Transfers {
    /// The transfers of node `me`, over its connections `peers`.
    pub(crate) fn new(me: NodeId, config: Config, peers: Arc<Peers>) -> Transfers {
        Transfers {
            me,
            open: Budget::new(
                config.max_transfers_per_peer as u64,
                config.max_transfers as u64,
            ),
            offered: Budget::new(config.max_offered_bytes_per_peer, config.max_offered_bytes),
            pull_memory: Budget::new(config.max_pull_memory_per_peer, config.max_pull_memory),
            pull_disk: Budget::new(config.max_pull_disk_per_peer, u64::MAX),
            config,
            peers,
            outgoing: Mutex::new(HashMap::new()),
            incoming: Mutex::new(HashMap::new()),
            moved_at: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for one more transfer with `peer`.
    ///
    /// # Errors
    /// [`RpcError::Overloaded`] naming the limit.
    fn open_slot(&self, peer: NodeId) -> Result<Grant<NodeId>, RpcError> {
        self.open.take(&peer, 1).map_err(|x| RpcError::Overloaded {
            reason: format!("too many transfers open ({x})"),
        })
    }

    /// Room for `size` bytes pulled into memory from `peer`.
    ///
    /// # Errors
    /// [`RpcError::Overloaded`] naming the limit.
    fn memory_for(&self, peer: NodeId, size: u64) -> Result<Grant<NodeId>, RpcError> {
        self.pull_memory
            .take(&peer, size)
            .map_err(|x| RpcError::Overloaded {
                reason: format!("cannot pull {size} more bytes into memory now ({x})"),
            })
    }

    /// Room for `size` bytes pulled from `peer` into a new file at `path`:
    /// the peer's share, and the free space the node keeps on that disk.
    ///
    /// # Errors
    /// [`RpcError::QuotaExceeded`] when the disk would keep less than
    /// [`Config::min_free_disk`] free, or the peer's share is used up.
    fn disk_for(
        &self,
        peer: NodeId,
        size: u64,
        path: &std::path::Path,
    ) -> Result<Grant<NodeId>, RpcError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if let Ok(st) = rustix::fs::statvfs(dir) {
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            let keep = self.config.min_free_disk;
            if size.saturating_add(keep) > free {
                return Err(RpcError::QuotaExceeded {
                    reason: format!(
                        "writing {size} bytes to {} would leave less than {keep} of its {free} free bytes",
                        dir.display()
                    ),
                });
            }
        }
        self.pull_disk
            .take(&peer, size)
            .map_err(|x| RpcError::QuotaExceeded {
                reason: format!("cannot write {size} more bytes to disk for this peer now ({x})"),
            })
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

thread_local! {
    /// The typed error of the last blob that failed to encode on this
    /// thread (serde only carries strings).
    static ERROR: RefCell<Option<RpcError>> = const { RefCell::new(None) };
}

/// Keeps `e` for [`take_error`] and returns its message, for serde.
fn stash(e: RpcError) -> String {
    let msg = e.to_string();
    ERROR.with(|slot| *slot.borrow_mut() = Some(e));
    msg
}

/// The typed error of the last blob that failed to encode on this thread.
pub(crate) fn take_error() -> Option<RpcError> {
    ERROR.with(|slot| slot.borrow_mut().take())
}

/// The scope set by [`with_scope`] on this thread.
fn scope() -> Option<(Arc<Transfers>, Option<NodeId>)> {
    SCOPE.with(|c| c.borrow().clone())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Weak;

    /// Runs `queue` in a current-thread runtime while the blocking pool's
    /// only thread is busy, so that what `queue` hands to the pool is still
    /// undone when it returns; then frees the pool and waits (bounded) for
    /// `done`, failing with `what` if it never comes.
    fn while_the_pool_is_busy(queue: impl FnOnce(), done: impl Fn() -> bool, what: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            let (gate, wait) = std::sync::mpsc::channel::<()>();
            let busy = tokio::task::spawn_blocking(move || wait.recv());
            queue();
            gate.send(()).unwrap_or_else(|e| panic!("{e}"));
            let _ = busy.await;
            for _ in 0..2000 {
                if done() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            panic!("{what}");
        });
    }

    /// Lets go of a large, a small and a shared value through `free`, while
    /// the blocking pool's only thread is busy: the large one must outlive
    /// its drop (it is queued for the pool) and be freed once the pool is
    /// free; the others go where they are dropped (the shared one with its
    /// last holder).
    pub(crate) fn large_values_are_freed_off_the_runtime(free: fn(Arc<Vec<u8>>)) {
        let large = Arc::new(vec![7u8; FREE_OFF_RUNTIME]);
        let wl: Weak<_> = Arc::downgrade(&large);
        let queue = || {
            let small = Arc::new(vec![7u8; 1024]);
            let shared = Arc::new(vec![7u8; FREE_OFF_RUNTIME]);
            let (ws, wsh): (Weak<_>, Weak<_>) = (Arc::downgrade(&small), Arc::downgrade(&shared));
            free(large);
            free(small);
            free(Arc::clone(&shared));
            assert!(wl.upgrade().is_some(), "freed on the dropping thread");
            assert!(ws.upgrade().is_none());
            assert!(wsh.upgrade().is_some());
            drop(shared);
            assert!(wsh.upgrade().is_none());
        };
        while_the_pool_is_busy(
            queue,
            || wl.upgrade().is_none(),
            "the large value was never freed",
        );
    }

    /// A file is unlinked on the blocking pool inside a runtime (it is still
    /// there while the pool's only thread is busy, gone once it is free),
    /// and at once outside one.
    #[test]
    fn files_are_unlinked_off_the_runtime() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (inside, outside) = (dir.path().join("in"), dir.path().join("out"));
        for p in [&inside, &outside] {
            std::fs::write(p, b"x").unwrap_or_else(|e| panic!("{e}"));
        }
        unlink_off_runtime(outside.clone());
        assert!(!outside.exists());
        let queue = || {
            unlink_off_runtime(inside.clone());
            assert!(inside.exists(), "unlinked on the calling thread");
        };
        while_the_pool_is_busy(queue, || !inside.exists(), "the file was never unlinked");
    }

    /// A value freed in steps is gone at the end, whatever its size; a
    /// shared one is left to its other holder.
    #[test]
    fn a_value_freed_in_steps_is_gone() {
        for size in [0, 1000, FREE_STEP, 3 * FREE_STEP + 12345] {
            let v = Arc::new(vec![7u8; size]);
            let w = Arc::downgrade(&v);
            free_in_steps(v);
            assert!(w.upgrade().is_none(), "size {size}");
        }
        let v = Arc::new(vec![7u8; 2 * FREE_STEP]);
        free_in_steps(Arc::clone(&v));
        assert_eq!(v.len(), 2 * FREE_STEP);
    }

    /// A local blob hands back the very bytes it was made of; shared ones
    /// (kept for a transfer meanwhile) are copied.
    #[tokio::test]
    async fn a_local_blob_gives_its_bytes_back_without_a_copy() {
        let v = vec![7u8; 1 << 20];
        let at = v.as_ptr();
        let back = Blob::from_bytes(v).into_bytes().await;
        assert_eq!(back.map(|b| b.as_ptr()).ok(), Some(at));
        let shared = Arc::new(vec![7u8; 1000]);
        let back = Blob::from_shared(Arc::clone(&shared)).into_bytes().await;
        assert_eq!(back.ok().as_ref(), Some(&*shared));
    }

    /// The last holder is a transfer: its end is handled on the
    /// connection's reader.
    #[test]
    fn a_large_value_kept_for_a_transfer_is_freed_off_the_runtime() {
        large_values_are_freed_off_the_runtime(|v| drop(table::Source::Memory(v)));
    }

    /// The last holder is the caller's blob, dropped on its task when the
    /// call returns.
    #[test]
    fn a_large_blob_is_freed_off_the_runtime() {
        large_values_are_freed_off_the_runtime(|v| drop(Blob::from_shared(v)));
    }

    /// What a memory store's item goes through when its last holder lets
    /// go (the store's own paths are in `data::catalogue`'s tests).
    #[test]
    fn a_large_stored_value_is_freed_off_the_runtime() {
        large_values_are_freed_off_the_runtime(free_shared);
    }
}
