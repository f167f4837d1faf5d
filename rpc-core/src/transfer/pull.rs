//! The receiver's side: pulling a transfer with a window of chunk requests
//! in flight, and the routing of call values both ways (inline below the
//! threshold, kept as a transfer above it; pulled back into bytes on arrival).

use super::sink::{ChunkSink, WriterSink};
use super::table::{ChunkEvent, Source};
use super::{CHUNK_FRAME_OVERHEAD, Transfers, failed, whole_checksum};
use crate::error::RpcError;
use crate::ids::NodeId;
use crate::transport::connection::Connection;
use crate::wire::{Arg, Message, Payload, TransferMeta};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Pulls the transfer `meta` from the peer of `conn` into `sink`, keeping up to
/// `window` chunk requests in flight, checking every chunk and the total.
/// Returns the CRC-32 of all bytes, so that a caller who knows the value's
/// checksum from elsewhere (the data manager) can check it without a second pass.
pub(crate) async fn pull<S: ChunkSink>(
    transfers: &Transfers,
    conn: &Arc<Connection>,
    meta: &TransferMeta,
    sink: &mut WriterSink<S>,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<u32, RpcError> {
    let cfg = &transfers.config;
    let slot = match transfers.open_slot(meta.sender) {
        Ok(g) => g,
        Err(e) => {
            let _ = conn.send(&Message::TransferEnd {
                id: meta.id,
                ok: false,
            });
            sink.abort().await;
            return Err(e);
        }
    };
    let window = cfg.transfer_window.max(1);
    // A chunk and its frame header must fit in the smaller of both frame limits.
    let chunk = cfg
        .chunk_size
        .min(conn.max_send().saturating_sub(CHUNK_FRAME_OVERHEAD))
        .clamp(1, u32::MAX as usize) as u64;
    let (tx, mut rx) = mpsc::channel(window + 1);
    transfers.expect(meta.id, meta.sender, tx);
    // If this future is dropped mid-pull (the call it serves was cancelled,
    // its connection closed), the guard forgets the transfer and tells the
    // sender; a file sink removes its partial file on drop.
    let mut guard = PullGuard {
        transfers,
        conn,
        id: meta.id,
        armed: true,
    };
    let result = async {
        let mut next = 0u64;
        let mut received = 0u64;
        let mut hasher = crc32fast::Hasher::new();
        let ask = |next: &mut u64| -> Result<(), RpcError> {
            let len = chunk.min(meta.size - *next);
            conn.send(&Message::ChunkRequest {
                id: meta.id,
                offset: *next,
                len: len as u32,
            })
            .map_err(|e| failed(format!("lost the connection to the sender: {e}")))?;
            *next += len;
            Ok(())
        };
        while next < meta.size && next < chunk * window as u64 {
            ask(&mut next)?;
        }
        while received < meta.size {
            let ev = tokio::time::timeout(cfg.transfer_timeout, rx.recv())
                .await
                .map_err(|_| {
                    failed(format!(
                        "no chunk from the sender for {} ms",
                        cfg.transfer_timeout.as_millis()
                    ))
                })?
                .ok_or_else(|| failed("transfer abandoned"))?;
            match ev {
                ChunkEvent::Failed(e) => return Err(e),
                ChunkEvent::Data { offset, data, crc } => {
                    if offset != received || data.is_empty() {
                        return Err(failed(format!(
                            "chunk at {offset} arrived where {received} was expected"
                        )));
                    }
                    // One pass: the chunk's CRC, then folded into the total.
                    let mut h = crc32fast::Hasher::new();
                    h.update(&data);
                    if h.clone().finalize() != crc {
                        return Err(failed(format!(
                            "checksum mismatch in the chunk at {offset}"
                        )));
                    }
                    hasher.combine(&h);
                    received += data.len() as u64;
                    if received > meta.size {
                        return Err(failed("more bytes than announced"));
                    }
                    // Ask for more before writing, so that disk and network overlap.
                    if next < meta.size {
                        ask(&mut next)?;
                    }
                    sink.write(data).await?;
                    progress(received, meta.size);
                }
            }
        }
        let crc = hasher.finalize();
        if meta.checksum.is_some_and(|want| want != crc) {
            return Err(failed("checksum mismatch over the whole value"));
        }
        Ok(crc)
    }
    .await;
    guard.armed = false;
    transfers.unexpect(&meta.id);
    let _ = conn.send(&Message::TransferEnd {
        id: meta.id,
        ok: result.is_ok(),
    });
    // A file is complete only once its writer has written and synced it.
    let result = match result {
        Ok(crc) => sink.finish().await.map(|()| crc),
        r => r,
    };
    if result.is_err() {
        sink.abort().await;
    }
    drop(slot);
    result
}

/// Forgets a pull whose future is dropped before it ends, and tells the
/// sender, so that nothing of it is left on either side.
struct PullGuard<'a> {
    transfers: &'a Transfers,
    conn: &'a Arc<Connection>,
    id: crate::ids::TransferId,
    /// Cleared once the pull ended by itself.
    armed: bool,
}

impl Drop for PullGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.transfers.unexpect(&self.id);
            let _ = self.conn.send(&Message::TransferEnd {
                id: self.id,
                ok: false,
            });
        }
    }
}

impl Transfers {
    /// Replaces payloads above the threshold by transfers kept for `receiver`.
    ///
    /// # Errors
    /// As [`Transfers::route_one`]; what was offered before the refusal is
    /// withdrawn.
    pub(crate) fn route_out(
        &self,
        args: Vec<Payload>,
        receiver: NodeId,
    ) -> Result<Vec<Arg>, RpcError> {
        let mut out = Vec::with_capacity(args.len());
        for p in args {
            match self.route_one(p, receiver) {
                Ok(a) => out.push(a),
                Err(e) => {
                    self.withdraw(&out);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// One payload: inline, or kept here as a transfer for `receiver`.
    ///
    /// # Errors
    /// [`RpcError::Overloaded`] when `receiver` may not be kept more.
    pub(crate) fn route_one(&self, p: Payload, receiver: NodeId) -> Result<Arg, RpcError> {
        if p.0.len() <= self.config.large_threshold {
            return Ok(Arg::Inline(p));
        }
        let size = p.0.len() as u64;
        let checksum = whole_checksum(&p.0);
        let meta = self.offer(
            receiver,
            Source::Memory(Arc::new(p.0)),
            size,
            checksum,
            None,
        )?;
        Ok(Arg::Transfer(meta))
    }

    /// Turns an argument into its bytes, pulling it from the peer of `conn` if
    /// it is a transfer.
    pub(crate) async fn materialize(
        &self,
        conn: &Arc<Connection>,
        a: Arg,
    ) -> Result<Payload, RpcError> {
        match a {
            Arg::Inline(p) => Ok(p),
            Arg::Transfer(meta) => {
                if meta.sender != conn.peer || meta.receiver != self.me {
                    return Err(failed("transfer reference names other nodes"));
                }
                if meta.size > self.config.max_large_value {
                    let _ = conn.send(&Message::TransferEnd {
                        id: meta.id,
                        ok: false,
                    });
                    return Err(RpcError::TooLarge {
                        what: "a value pulled into memory (send a file-backed Blob)".into(),
                        size: meta.size,
                        limit: self.config.max_large_value,
                    });
                }
                let room = match self.memory_for(meta.sender, meta.size) {
                    Ok(g) => g,
                    Err(e) => {
                        let _ = conn.send(&Message::TransferEnd {
                            id: meta.id,
                            ok: false,
                        });
                        return Err(e);
                    }
                };
                let mut sink = WriterSink::memory(meta.size, self.config.transfer_window)?;
                pull(self, conn, &meta, &mut sink, |_, _| {}).await?;
                drop(room);
                let v = sink
                    .into_inner()
                    .ok_or_else(|| failed("the memory sink was lost"))?;
                Ok(Payload(v))
            }
        }
    }

    /// [`Transfers::materialize`] for every argument.
    pub(crate) async fn materialize_all(
        &self,
        conn: &Arc<Connection>,
        args: Vec<Arg>,
    ) -> Result<Vec<Payload>, RpcError> {
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push(self.materialize(conn, a).await?);
        }
        Ok(out)
    }
}
