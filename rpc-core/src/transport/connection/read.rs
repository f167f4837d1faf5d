//! The read path of a connection: one reader task decodes frames; a
//! response completes the waiting caller, a request goes to the handler
//! (which runs each on its own task), a protocol error closes the connection.

use super::{Connection, Handler, io_reason};
use crate::error::RpcError;
use crate::transport::stream::ReadHalf;
use crate::wire::codec::LEN_PREFIX;
use crate::wire::{self, Message};
use bytes::{Buf, BytesMut};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::AsyncReadExt;

/// Requests decoded from one read before the reader lets them run.
const REQUESTS_PER_YIELD: u32 = 16;

/// How long the reader reads on after a write failed, for a close frame
/// the peer sent before its socket went. It is normally read at once: the
/// peer's frames came before the failure.
const LAST_WORDS: std::time::Duration = std::time::Duration::from_secs(1);

/// Frames above this size flush the answers corked before them.
const CORK_FRAME_LIMIT: usize = 16 * 1024;

impl Connection {
    /// Waits until the bytes waiting for the peer fall to half the limit;
    /// true if the connection closed meanwhile.
    pub(crate) async fn wait_for_drain(&self) -> bool {
        tracing::debug!(peer = ?self.peer, backlog = self.backlog(), "peer does not read; pausing");
        loop {
            let drained = self.writer.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.backlog() <= self.max_queued / 2 {
                return false;
            }
            tokio::select! {
                () = drained => {}
                () = self.stop.cancelled() => return true,
            }
        }
    }

    /// Reader task: decodes frames until the peer closes or breaks the protocol.
    pub(super) async fn run_reader(self: Arc<Self>, mut rd: ReadHalf, handler: Arc<dyn Handler>) {
        let reason = self.read_loop(&mut rd, &handler).await;
        let reason = {
            let c = self.closed.lock();
            c.clone().unwrap_or(reason)
        };
        handler.on_closed(&self, &reason);
        if !self.closing() {
            // (A close frame still queued: the writer closes after it.)
            self.close(&reason);
        }
    }

    async fn read_loop(
        self: &Arc<Self>,
        rd: &mut ReadHalf,
        handler: &Arc<dyn Handler>,
    ) -> RpcError {
        let mut buf = BytesMut::with_capacity(crate::config::READ_BUFFER);
        let mut since_yield = 0;
        // Made once, not on every read: a future polled anew per read
        // registers with its notifier (or reads the clock) each time.
        let stopped = self.stop.cancelled();
        tokio::pin!(stopped);
        let write_failed = self.writer.failed.notified();
        tokio::pin!(write_failed);
        // Armed once a write failed: until then the peer's last frames are read.
        let last_words = tokio::time::sleep(LAST_WORDS);
        tokio::pin!(last_words);
        let mut failing = false;
        loop {
            // Decode every whole frame in the buffer. Requests run inline
            // as far as they can without waiting; their answers are corked
            // and leave together when the batch ends (before any await).
            self.cork();
            loop {
                // A peer that does not read what we send gets no more of its
                // frames taken until the backlog drains.
                if self.backlog() > self.max_queued {
                    self.uncork();
                    if self.wait_for_drain().await {
                        return self.closed.lock().clone().unwrap_or(RpcError::Shutdown);
                    }
                    self.cork();
                }
                if let Ok(Some(len)) = wire::codec::peek_len(&buf, self.max_frame)
                    && len > CORK_FRAME_LIMIT
                {
                    // A big frame (a transfer chunk) takes a while to decode
                    // and hand on: what answers are queued leave first.
                    self.uncork();
                    self.cork();
                    // A whole chunk: its bytes go on as a slice of this
                    // buffer, not copied out on this (runtime) thread.
                    let body = buf.get(LEN_PREFIX..LEN_PREFIX + len);
                    if let Some(chunk) = body.and_then(wire::chunk_parts) {
                        let frame = buf.split_to(LEN_PREFIX + len).freeze();
                        let data =
                            frame.slice(LEN_PREFIX + chunk.data.start..LEN_PREFIX + chunk.data.end);
                        handler.on_chunk(self, chunk.id, chunk.offset, data, chunk.crc);
                        continue;
                    }
                }
                match wire::decode_frame(&buf, self.max_frame) {
                    Ok(Some((msg, used))) => {
                        buf.advance(used);
                        let from_peer = matches!(msg, Message::Close(_));
                        if matches!(msg, Message::Request(_)) {
                            since_yield += 1;
                        }
                        if let Err(e) = self.on_message(msg, handler) {
                            self.uncork();
                            if from_peer {
                                // The peer is closing: nothing to tell it
                                // (a reply would only hit its closed socket).
                                self.close(&e);
                            } else {
                                self.fail(&e);
                            }
                            return e;
                        }
                        if since_yield >= REQUESTS_PER_YIELD {
                            // Let the requests just started run (and queue
                            // their replies) before taking more: the backlog
                            // check above then sees what they produce.
                            since_yield = 0;
                            self.uncork();
                            tokio::task::yield_now().await;
                            self.cork();
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.uncork();
                        let err = RpcError::protocol(e.to_string());
                        tracing::warn!(peer = ?self.peer, error = %err, "closing connection");
                        self.fail(&err);
                        return err;
                    }
                }
            }
            self.uncork();
            if let Ok(Some(len)) = wire::codec::peek_len(&buf, self.max_frame) {
                buf.reserve(len + wire::codec::LEN_PREFIX - buf.len());
            } else if buf.capacity() - buf.len() < 4096 {
                buf.reserve(crate::config::READ_BUFFER);
            }
            let read = tokio::select! {
                r = rd.read_buf(&mut buf) => r,
                () = &mut stopped => {
                    return self.closed.lock().clone().unwrap_or(RpcError::Shutdown);
                }
                () = &mut write_failed, if !failing => {
                    failing = true;
                    last_words.as_mut().reset(tokio::time::Instant::now() + LAST_WORDS);
                    continue;
                }
                () = &mut last_words, if failing => {
                    return self.write_failure().unwrap_or(RpcError::Shutdown);
                }
            };
            self.last_rx_ms.store(self.now_ms(), Ordering::Relaxed);
            match read {
                Ok(0) => {
                    return RpcError::ConnectionLost {
                        peer: self.peer_name(),
                        reason: if buf.is_empty() {
                            "peer closed the connection".into()
                        } else {
                            "peer closed the connection mid-frame".into()
                        },
                    };
                }
                Ok(n) => {
                    self.traffic.received.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    return RpcError::ConnectionLost {
                        peer: self.peer_name(),
                        reason: io_reason(&e),
                    };
                }
            }
        }
    }

    fn on_message(
        self: &Arc<Self>,
        msg: Message,
        handler: &Arc<dyn Handler>,
    ) -> Result<(), RpcError> {
        match msg {
            Message::Response(resp) => {
                if let Some(tx) = self.pending.lock().remove(&resp.ipc.call_id) {
                    let _ = tx.send(Ok(resp.body));
                }
                // A response to a call we gave up on: drop it.
                Ok(())
            }
            Message::Request(req) => {
                // Read among the peer's last words, after a write failed:
                // its answer cannot be sent, so it does not run.
                if self.write_failure().is_none() {
                    Arc::clone(handler).on_request(self, req);
                } else {
                    tracing::debug!(peer = ?self.peer, call_id = req.ipc.call_id,
                        "request after a failed write not run");
                }
                Ok(())
            }
            Message::Cancel(ipc) => {
                if let Some(Some(h)) = self.inflight.lock().remove(&ipc.call_id) {
                    h.abort();
                }
                Ok(())
            }
            Message::Close(RpcError::Shutdown) => Err(RpcError::Unreachable {
                peer: self.peer_name(),
                reason: "the peer shut down after answering every request it had read".into(),
            }),
            Message::Close(e) => Err(e),
            Message::Ping(n) => {
                let _ = self.send(&Message::Pong(n));
                Ok(())
            }
            Message::Pong(_) => Ok(()),
            msg @ (Message::Dirty { .. } | Message::Clean { .. }) => {
                handler.on_lease(self, msg);
                Ok(())
            }
            msg @ (Message::ChunkRequest { .. }
            | Message::Chunk { .. }
            | Message::ChunkError { .. }
            | Message::TransferEnd { .. }) => {
                handler.on_transfer(self, msg);
                Ok(())
            }
            Message::Hello(_) => Err(RpcError::protocol("unexpected hello after handshake")),
        }
    }
}
