//! The transfers of one node in both directions: what it keeps for others
//! (the seed's OngoingTransfer) and what it pulls (IncomingTransfer), with
//! the bookkeeping of chunk requests, ends, peers that go away and idle
//! transfers.

use super::serial::{Refused, Serial};
use super::serve::{ChunkRequest, ChunkServer, MAX_QUEUED_REQUESTS};
use super::{Transfers, failed};
use crate::budget::Grant;
use crate::error::RpcError;
use crate::ids::{NodeId, TransferId};
use crate::transport::connection::Connection;
use crate::wire::{Message, TransferMeta};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
// tokio's clock, so that lease tests can run on a paused clock.
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Where an outgoing transfer's bytes are.
#[derive(Clone)]
pub(crate) enum Source {
    /// In memory, shared with nobody else who could change it.
    Memory(Arc<Vec<u8>>),
    /// In a file or anything else read by offset, chunk by chunk.
    Reader(Arc<dyn super::sink::ReadAt>),
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Source::Memory(bytes) = self {
            super::free_off_runtime(bytes);
        }
    }
}

/// Called with (bytes sent, total) as the receiver pulls a blob.
pub(crate) type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// A value this node keeps until its receiver pulled it (the seed's OngoingTransfer).
pub(crate) struct Outgoing {
    pub(crate) receiver: NodeId,
    pub(crate) size: u64,
    pub(crate) source: Source,
    /// Told after every chunk sent, if the blob asked for it.
    pub(crate) progress: Option<Progress>,
    /// Last time the receiver asked for something; idle transfers are dropped.
    touched: Mutex<Instant>,
    /// Chunk requests, served in order off the connection's reader on the
    /// blocking pool; made at the first request (offers may be made off
    /// the runtime).
    serve: std::sync::OnceLock<Serial<ChunkServer, ChunkRequest>>,
    /// The transfer's slot and, for memory, its bytes in the receiver's
    /// budgets: given back when the last holder drops this.
    _held: (Grant<NodeId>, Option<Grant<NodeId>>),
}

impl Outgoing {
    /// The transfer is over: drops its queued chunk requests.
    fn stop_serving(&self) {
        if let Some(s) = self.serve.get() {
            s.stop();
        }
    }
}

/// Shortest wait between two looks at a pull that keeps a call waiting.
const PATIENCE_STEP: Duration = Duration::from_millis(10);

/// What the reader hands an incoming transfer.
pub(crate) enum ChunkEvent {
    /// Bytes at `offset`, with their CRC-32 as the sender computed it.
    Data {
        offset: u64,
        /// A slice of the connection's read buffer, or a decoded chunk.
        data: bytes::Bytes,
        crc: u32,
    },
    /// The sender refused, or the connection is gone.
    Failed(RpcError),
}

/// A transfer this node is pulling (the seed's IncomingTransfer).
pub(crate) struct Incoming {
    pub(crate) sender: NodeId,
    pub(crate) tx: mpsc::Sender<ChunkEvent>,
}

impl Transfers {
    /// Keeps `source` for `receiver` and returns the reference to send instead.
    ///
    /// # Errors
    /// [`RpcError::Overloaded`] when `receiver` has too many transfers open
    /// or too many bytes kept for it already.
    pub(crate) fn offer(
        &self,
        receiver: NodeId,
        source: Source,
        size: u64,
        checksum: Option<u32>,
        progress: Option<Progress>,
    ) -> Result<TransferMeta, RpcError> {
        let slot = self.open_slot(receiver)?;
        let bytes = match &source {
            Source::Memory(_) => Some(self.offered.take(&receiver, size).map_err(|x| {
                RpcError::Overloaded {
                    reason: format!(
                        "cannot keep {size} more bytes for this peer to pull ({x}); pull or drop what it was sent"
                    ),
                }
            })?),
            Source::Reader(_) => None,
        };
        let id = TransferId::random();
        self.outgoing.lock().insert(
            id,
            Arc::new(Outgoing {
                receiver,
                size,
                source,
                progress,
                touched: Mutex::new(Instant::now()),
                serve: std::sync::OnceLock::new(),
                _held: (slot, bytes),
            }),
        );
        Ok(TransferMeta {
            id,
            sender: self.me,
            receiver,
            size,
            checksum,
        })
    }

    /// Serves a chunk request of the peer of `conn`.
    pub(crate) fn on_request(
        &self,
        conn: &Arc<Connection>,
        id: TransferId,
        offset: u64,
        len: u32,
        max_chunk: u32,
    ) {
        let refuse = |error: RpcError| {
            let _ = conn.send(&Message::ChunkError { id, error });
        };
        let Some(out) = self.outgoing.lock().get(&id).cloned() else {
            return refuse(failed(format!("no transfer {id:?} here")));
        };
        if out.receiver != conn.peer {
            // Someone else's transfer: say nothing more than for an unknown one.
            return refuse(failed(format!("no transfer {id:?} here")));
        }
        let end = offset.checked_add(u64::from(len));
        if len == 0 || len > max_chunk || end.is_none_or(|e| e > out.size) {
            return refuse(failed(format!(
                "chunk {offset}+{len} is outside transfer {id:?} of {} bytes",
                out.size
            )));
        }
        let now = Instant::now();
        *out.touched.lock() = now;
        self.moved(conn.peer, now);
        let serve = out.serve.get_or_init(|| {
            Serial::new(
                ChunkServer {
                    id,
                    source: out.source.clone(),
                    size: out.size,
                    progress: out.progress.clone(),
                },
                MAX_QUEUED_REQUESTS,
            )
        });
        match serve.push((Arc::clone(conn), offset, len)) {
            Ok(()) => {}
            Err(Refused::Full(_)) => refuse(failed(format!(
                "more than {MAX_QUEUED_REQUESTS} chunk requests of transfer {id:?} outstanding"
            ))),
            // Ended meanwhile: as for an unknown transfer.
            Err(Refused::Stopped(_)) => refuse(failed(format!("no transfer {id:?} here"))),
        }
    }

    /// Routes a chunk (or a refusal) from the peer of `conn` to its pull.
    pub(crate) fn on_chunk(&self, conn: &Connection, id: TransferId, ev: ChunkEvent) {
        let m = self.incoming.lock();
        if let Some(inc) = m.get(&id)
            && inc.sender == conn.peer
        {
            // The channel holds the whole window: a full channel means the
            // peer sent chunks nobody asked for; the pull then sees a gap.
            let _ = inc.tx.try_send(ev);
            drop(m);
            self.moved(conn.peer, Instant::now());
        }
    }

    /// The receiver is done with `id`: free it.
    pub(crate) fn on_end(&self, conn: &Connection, id: TransferId) {
        let mut m = self.outgoing.lock();
        if m.get(&id).is_some_and(|o| o.receiver == conn.peer)
            && let Some(o) = m.remove(&id)
        {
            o.stop_serving();
            drop(m);
            self.moved(conn.peer, Instant::now());
        }
    }

    /// A transfer with `peer` moved at `at`.
    fn moved(&self, peer: NodeId, at: Instant) {
        self.moved_at.lock().insert(peer, at);
    }

    /// When a call with `peer` under the default deadline `timeout` (made
    /// to it, or served for it), whose deadline just passed, may wait until:
    /// the default deadline bounds the method, not the time its large values
    /// take to move. While a transfer with the peer is open and moved within
    /// the transfer timeout, the wait goes on; once the transfers ended, the
    /// call gets `timeout` from the end. `None`: the deadline holds.
    ///
    /// Per peer, not per call (a blob is offered while its argument is
    /// encoded, before the call exists, and pulled by the method it is
    /// passed to): a call can be kept waiting by another call's transfer
    /// with the same peer, never past that transfer's end plus `timeout`.
    pub(crate) fn patience(&self, peer: NodeId, timeout: Duration) -> Option<Instant> {
        let last = *self.moved_at.lock().get(&peer)?;
        let now = Instant::now();
        let moving = self.outgoing.lock().values().any(|o| o.receiver == peer)
            || self.incoming.lock().values().any(|i| i.sender == peer);
        let until = if moving {
            // A transfer that stalled for the transfer timeout is about to
            // fail on its own: the call then gets `timeout` from there (its
            // error has to reach the caller). Look again within `timeout`:
            // the transfer may end meanwhile.
            (last + self.config.transfer_timeout + timeout).min(now + timeout.max(PATIENCE_STEP))
        } else {
            last + timeout
        };
        (until > now).then_some(until)
    }

    /// `peer` is gone: drop what we keep for it and fail what we pull from it.
    pub(crate) fn peer_gone(&self, peer: NodeId, why: &RpcError) {
        self.moved_at.lock().remove(&peer);
        self.outgoing.lock().retain(|_, o| {
            let keep = o.receiver != peer;
            if !keep {
                o.stop_serving();
            }
            keep
        });
        let m = self.incoming.lock();
        for inc in m.values().filter(|i| i.sender == peer) {
            let _ = inc.tx.try_send(ChunkEvent::Failed(why.clone()));
        }
    }

    /// Drops the transfers offered for `args` (a request that was never sent).
    pub(crate) fn withdraw(&self, args: &[crate::wire::Arg]) {
        let mut m = self.outgoing.lock();
        for a in args {
            if let crate::wire::Arg::Transfer(meta) = a
                && let Some(o) = m.remove(&meta.id)
            {
                o.stop_serving();
            }
        }
    }

    /// Drops outgoing transfers whose receiver asked nothing for `idle`.
    pub(crate) fn sweep(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let mut m = self.outgoing.lock();
        let before = m.len();
        m.retain(|_, o| {
            let keep = now.duration_since(*o.touched.lock()) < idle;
            if !keep {
                o.stop_serving();
            }
            keep
        });
        before - m.len()
    }

    /// Starts routing chunks of `id` from `sender` to `tx`.
    pub(crate) fn expect(&self, id: TransferId, sender: NodeId, tx: mpsc::Sender<ChunkEvent>) {
        self.incoming.lock().insert(id, Incoming { sender, tx });
        self.moved(sender, Instant::now());
    }

    /// Stops routing chunks of `id`.
    pub(crate) fn unexpect(&self, id: &TransferId) {
        let gone = self.incoming.lock().remove(id);
        if let Some(inc) = gone {
            self.moved(inc.sender, Instant::now());
        }
    }

    /// (outgoing, incoming) transfers open now.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.outgoing.lock().len(), self.incoming.lock().len())
    }
}
