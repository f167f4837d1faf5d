//! The sender's side of a pull: one blocking thread per transfer serves its
//! chunk requests in order, reading memory or the file, checksumming and
//! framing off the connection's reader and off the runtime's workers.

use super::failed;
use super::table::{Outgoing, Source};
use crate::ids::TransferId;
use crate::transport::connection::Connection;
use crate::wire::Message;
use std::sync::Arc;
use std::time::Duration;

fn send_chunk(conn: &Connection, id: TransferId, offset: u64, data: &[u8]) {
    let crc = crc32fast::hash(data);
    let sent = conn.send_chunk(id, offset, data, crc);
    if let Err(e @ crate::error::RpcError::Encode { .. }) = sent {
        // Never leave a request unanswered: the receiver would wait for it.
        let _ = conn.send(&Message::ChunkError {
            id,
            error: failed(format!("chunk could not be sent: {e}")),
        });
    }
}

/// How long a transfer's chunk server waits for the next request before its
/// thread goes back to the pool (the next request starts another).
const CHUNK_SERVER_IDLE: Duration = Duration::from_secs(2);

/// Serves the chunk requests of one transfer in order on a blocking thread:
/// copying, reading from disk, checksumming and framing never run on the
/// connection's reader or on a runtime worker, and cost no task hop per chunk.
pub(crate) fn spawn_chunk_server(
    id: TransferId,
    out: Arc<Outgoing>,
) -> std::sync::mpsc::Sender<(Arc<Connection>, u64, u32)> {
    let (tx, rx) = std::sync::mpsc::channel::<(Arc<Connection>, u64, u32)>();
    tokio::task::spawn_blocking(move || {
        loop {
            let (conn, offset, len) = match rx.recv_timeout(CHUNK_SERVER_IDLE) {
                Ok(req) => req,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    // Leave only under the queue's lock, after a last look, so
                    // that no request is queued to a thread that is gone.
                    let mut q = out.serve_queue.lock();
                    match rx.try_recv() {
                        Ok(req) => req,
                        Err(_) => {
                            *q = None;
                            return;
                        }
                    }
                }
            };
            let end = offset + u64::from(len);
            let mut buf = Vec::new();
            let data = match &out.source {
                // Framed straight from the value: one copy.
                Source::Memory(bytes) => Ok(&bytes[offset as usize..end as usize]),
                Source::Reader(r) => {
                    buf.resize(len as usize, 0);
                    r.read_exact_at(&mut buf, offset).map(|()| &buf[..])
                }
            };
            match data {
                Ok(data) => {
                    send_chunk(&conn, id, offset, data);
                    if let Some(p) = &out.progress {
                        p(end, out.size);
                    }
                }
                Err(e) => {
                    let _ = conn.send(&Message::ChunkError {
                        id,
                        error: failed(format!("sender could not read the value: {e}")),
                    });
                }
            }
        }
    });
    tx
}
