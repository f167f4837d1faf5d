//! The write path of a connection: a caller writes its own frame without
//! waiting when the stream is free and the connection quiet; otherwise it
//! queues, and the writer task sends everything queued in one write. Bulk
//! frames (transfer chunks) go out only when no small frame waits.

use super::{Connection, io_reason};
use crate::error::RpcError;
use crate::transport::stream::WriteHalf;
use crate::wire::{self, FrameError, Message};
use parking_lot::Mutex;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::Notify;

/// Send side state, guarded by [`Writer::state`].
#[derive(Default)]
pub(super) struct WriteState {
    /// Frames queued while someone else owns the socket.
    queue: Vec<u8>,
    /// Bulk frames (transfer chunks), written only when `queue` is empty, so
    /// that small calls never wait behind them in this process.
    bulk: std::collections::VecDeque<Vec<u8>>,
    /// Bytes in `bulk`.
    bulk_bytes: usize,
    /// Bytes the writer task took out of the queues and is writing now.
    in_writer: usize,
    /// Someone (a caller or the writer task) is writing; others only queue.
    writing: bool,
    /// The reader is running a batch of the peer's requests: their answers
    /// (and anything else sent meanwhile) queue without waking the writer,
    /// and the reader writes them all in one go when the batch ends.
    corked: bool,
    /// The stream holds written bytes it has not pushed out yet (TLS):
    /// the writer task must flush it before giving up the write slot.
    unflushed: bool,
    /// The connection is closed: refuse new frames.
    pub(super) closed: bool,
    /// The connection closes once what is queued is written (a `close`
    /// frame last): refuse new frames, and the writer closes it with this
    /// reason when the queue is empty.
    pub(super) closing: Option<RpcError>,
}

pub(super) struct Writer {
    pub(super) sock: Box<dyn WriteHalf>,
    /// Protects the queue and the write slot; held only for bookkeeping, never
    /// across a syscall or an await, so a parking_lot mutex is right.
    pub(super) state: Mutex<WriteState>,
    /// Wakes the writer task when a caller hands it bytes the socket refused.
    pub(super) wake: Notify,
    /// Told when the bytes waiting for the peer fell below half the limit:
    /// the reader waits on it while the peer does not read.
    pub(super) drained: Notify,
    /// Set when the socket refused a write (the peer closed or reset it):
    /// nothing more is written, and the reader reads the peer's last words
    /// before the connection closes with this, or with what they say. Read
    /// without a lock: every call asks whether the connection is usable.
    pub(super) failure: std::sync::OnceLock<RpcError>,
    /// Told when a write failed: the reader then gives the peer a moment to
    /// finish, not forever.
    pub(super) failed: Notify,
}

impl Connection {
    /// Bytes waiting to be written to the peer.
    pub(crate) fn backlog(&self) -> usize {
        let st = self.writer.state.lock();
        st.queue.len() + st.bulk_bytes + st.in_writer
    }

    /// Wakes the reader if the backlog is low enough to read requests again.
    fn maybe_drained(&self, backlog: usize) {
        if backlog <= self.max_queued / 2 {
            self.writer.drained.notify_waiters();
        }
    }

    /// True when other calls are under way on this connection in either
    /// direction, so that more frames are likely to follow within this tick.
    fn busy(&self) -> bool {
        self.pending.lock().len() + self.inflight.lock().len() > 1
    }

    /// Queues one encoded frame; writes it at once if the socket is free and
    /// the connection is quiet.
    ///
    /// A lone call writes its own frame (no task hop: lowest latency). When
    /// other calls are under way, the frame goes to the writer task instead,
    /// which sends everything queued meanwhile in one syscall: one write per
    /// frame was the throughput limit with many callers.
    pub(super) fn send_frame(&self, frame: Vec<u8>) -> Result<(), RpcError> {
        let defer = self.busy();
        let out = {
            let mut st = self.writer.state.lock();
            if st.closed || st.closing.is_some() {
                return Err(self.closed_error(false));
            }
            if st.writing || st.corked {
                st.queue.extend_from_slice(&frame);
                return Ok(());
            }
            st.writing = true;
            if defer {
                st.queue.extend_from_slice(&frame);
                drop(st);
                self.writer.wake.notify_one();
                return Ok(());
            }
            frame
        };
        self.write_owned(out, true)
    }

    /// Holds back frames sent from now on until [`Connection::uncork`]:
    /// the reader does this around a batch of requests it runs inline.
    pub(super) fn cork(&self) {
        self.writer.state.lock().corked = true;
    }

    /// Writes what queued while corked, in one write if the socket takes
    /// it (the rest goes to the writer task). Never waits.
    pub(super) fn uncork(&self) {
        let out = {
            let mut st = self.writer.state.lock();
            st.corked = false;
            if st.writing || st.queue.is_empty() || st.closed {
                return;
            }
            st.writing = true;
            std::mem::take(&mut st.queue)
        };
        let _ = self.write_owned(out, false);
    }

    /// Writes `out` with the write slot held (`writing` set by the caller),
    /// then whatever others queued meanwhile; hands the rest to the writer
    /// task when the socket would block. `own`: `out` starts with the
    /// caller's own frame, which is reported unsent if the socket fails
    /// before its first byte.
    fn write_owned(&self, mut out: Vec<u8>, own: bool) -> Result<(), RpcError> {
        // We own the write slot: write until drained, taking up what others queue.
        let mut off = 0;
        // Until a byte of it is written, our own frame has not left: a
        // failing socket then means the request was never sent.
        let mut own_unsent = own;
        loop {
            while off < out.len() {
                match self.writer.sock.try_write(&out[off..]) {
                    Ok(0) => {
                        self.close(&RpcError::ConnectionLost {
                            peer: self.peer_name(),
                            reason: "peer stopped reading".into(),
                        });
                        return Ok(());
                    }
                    Ok(n) => {
                        self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
                        off += n;
                        own_unsent = false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Hand the rest to the writer task, ahead of what others queued.
                        let mut st = self.writer.state.lock();
                        let mut rest = out.split_off(off);
                        rest.extend_from_slice(&st.queue);
                        st.queue = rest;
                        drop(st);
                        self.writer.wake.notify_one();
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.write_failed(&e);
                        if own_unsent && off == 0 {
                            return Err(RpcError::Unreachable {
                                peer: self.peer_name(),
                                reason: io_reason(&e),
                            });
                        }
                        return Ok(());
                    }
                }
            }
            own_unsent = false;
            let mut st = self.writer.state.lock();
            if st.queue.is_empty() {
                let flushed = match self.writer.sock.try_flush() {
                    Ok(done) => done,
                    Err(e) => {
                        drop(st);
                        self.write_failed(&e);
                        return Ok(());
                    }
                };
                if st.bulk.is_empty() && flushed {
                    st.writing = false;
                    drop(st);
                    self.maybe_drained(0);
                } else {
                    // Bulk data and a stream that would block on its flush are
                    // the writer task's job; stay "writing" for it.
                    st.unflushed |= !flushed;
                    drop(st);
                    self.writer.wake.notify_one();
                }
                return Ok(());
            }
            out.clear();
            std::mem::swap(&mut out, &mut st.queue);
            off = 0;
        }
    }

    /// Writer task: drains what callers handed over when the stream would
    /// block, and flushes a stream that buffers.
    pub(super) async fn run_writer(self: Arc<Self>) {
        let mut buf = Vec::new();
        loop {
            self.writer.wake.notified().await;
            // Let the tasks that are ready now queue their frames too, so that
            // they leave in this batch.
            tokio::task::yield_now().await;
            loop {
                {
                    let mut st = self.writer.state.lock();
                    if st.closed {
                        return;
                    }
                    buf.clear();
                    if !st.queue.is_empty() {
                        std::mem::swap(&mut buf, &mut st.queue);
                    } else if let Some(chunk) = st.bulk.pop_front() {
                        // One bulk frame, then small frames get another look.
                        st.bulk_bytes -= chunk.len();
                        buf = chunk;
                    } else if st.unflushed {
                        st.unflushed = false;
                    } else if let Some(reason) = st.closing.take() {
                        // Everything, the close frame last, is written.
                        drop(st);
                        self.close(&reason);
                        return;
                    } else {
                        st.writing = false;
                        break;
                    }
                    st.in_writer = buf.len();
                }
                let wrote = self.write_out(&buf).await;
                let backlog = {
                    let mut st = self.writer.state.lock();
                    st.in_writer = 0;
                    st.queue.len() + st.bulk_bytes
                };
                self.maybe_drained(backlog);
                if let Err(e) = wrote {
                    self.write_failed(&e);
                    return;
                }
            }
        }
    }

    /// Writes all of `buf` and flushes, waiting for the stream as needed.
    async fn write_out(&self, buf: &[u8]) -> io::Result<()> {
        let sock = &self.writer.sock;
        let mut off = 0;
        while off < buf.len() {
            match std::future::poll_fn(|cx| sock.poll_write(cx, &buf[off..])).await {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
                    off += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        std::future::poll_fn(|cx| sock.poll_flush(cx)).await
    }

    /// The socket refused a write. Writing stops, and what was queued is
    /// dropped (it never left). The connection is not closed yet: a peer
    /// that shut down sent a close frame before its socket went, which
    /// says whether the calls still pending here ran, and the reader may
    /// not have read it; it reads on for a moment (see
    /// [`Writer::failure`]). Calls made meanwhile are refused as not sent.
    fn write_failed(&self, e: &io::Error) {
        let lost = RpcError::ConnectionLost {
            peer: self.peer_name(),
            reason: io_reason(e),
        };
        {
            let mut st = self.writer.state.lock();
            if st.closed {
                return;
            }
            if let Some(ours) = st.closing.take() {
                // We were closing anyway: nothing more to learn from the peer.
                drop(st);
                self.close(&ours);
                return;
            }
            st.closed = true;
            let _ = self.writer.failure.set(lost);
            st.writing = false;
            st.queue = Vec::new();
            st.bulk.clear();
            st.bulk_bytes = 0;
            st.in_writer = 0;
        }
        self.writer.drained.notify_waiters();
        self.writer.failed.notify_one();
    }

    /// Why writing failed, if it did (see [`Writer::failure`]).
    pub(super) fn write_failure(&self) -> Option<RpcError> {
        self.writer.failure.get().cloned()
    }

    /// Sends `Close(err)` after what is queued, then closes: the peer learns
    /// why. When nobody is writing, the frame is written at once and the
    /// connection closed; otherwise the writer task closes it once the
    /// queue (the close frame last) is written. Bulk frames are dropped.
    /// A node shutting down after answering every request it read sends
    /// [`RpcError::Shutdown`], which tells the peer that its calls still
    /// pending were not run.
    pub(crate) fn fail(&self, err: &RpcError) {
        let Ok(frame) = self.encode(&Message::Close(err.clone())) else {
            self.close(err);
            return;
        };
        let direct = {
            let mut st = self.writer.state.lock();
            if st.closed || st.closing.is_some() {
                return;
            }
            st.bulk.clear();
            st.bulk_bytes = 0;
            if st.writing || !st.queue.is_empty() {
                // Frames queued (or corked) go first; the writer task
                // writes them, the close frame last, then closes.
                st.writing = true;
                st.queue.extend_from_slice(&frame);
                st.closing = Some(err.clone());
                false
            } else {
                st.writing = true;
                true
            }
        };
        if direct {
            // Best effort: a new or idle socket takes a small frame whole.
            let _ = self.writer.sock.try_write(&frame);
            let _ = self.writer.sock.try_flush();
            self.close(err);
        } else {
            self.writer.wake.notify_one();
        }
    }

    /// True while a close frame waits to be written before the connection closes.
    pub(super) fn closing(&self) -> bool {
        self.writer.state.lock().closing.is_some()
    }

    /// Queues a transfer chunk of `data` behind every small frame, framed
    /// straight from where the bytes lie (one copy).
    ///
    /// # Errors
    /// [`RpcError::Encode`] when the frame exceeds the peer's limit; the
    /// connection's error when it is closed.
    pub(crate) fn send_chunk(
        &self,
        id: crate::ids::TransferId,
        offset: u64,
        data: &[u8],
        crc: u32,
    ) -> Result<(), RpcError> {
        // Sized once: a chunk grown by doubling would end in a buffer of
        // twice its size, which malloc maps fresh (zeroed) for every chunk.
        let mut frame = Vec::with_capacity(data.len() + 128);
        wire::codec::frame_with(&mut frame, self.max_send, |out| {
            wire::encode_chunk(out, id, offset, data, crc);
            Ok(())
        })
        .map_err(encode_error)?;
        let mut st = self.writer.state.lock();
        if st.closed || st.closing.is_some() {
            return Err(self.closed_error(false));
        }
        st.bulk_bytes += frame.len();
        st.bulk.push_back(frame);
        if !st.writing {
            st.writing = true;
            drop(st);
            self.writer.wake.notify_one();
        }
        Ok(())
    }

    pub(super) fn encode(&self, msg: &Message) -> Result<Vec<u8>, RpcError> {
        // A null call's request is about 140 bytes: one allocation, no
        // regrowth. (Chunks are framed by `send_chunk`, at their size.)
        let mut frame = Vec::with_capacity(256);
        wire::encode_frame(msg, &mut frame, self.max_send).map_err(encode_error)?;
        Ok(frame)
    }

    /// Encodes and sends one message.
    pub(crate) fn send(&self, msg: &Message) -> Result<(), RpcError> {
        let frame = self.encode(msg)?;
        self.send_frame(frame)
    }
}

/// What a frame that cannot be encoded is to the caller.
fn encode_error(e: FrameError) -> RpcError {
    RpcError::Encode {
        what: "message".into(),
        reason: match e {
            FrameError::TooLarge { len, max } => {
                format!("frame of {len} bytes exceeds the limit of {max} bytes")
            }
            FrameError::Malformed(r) => r,
        },
    }
}
