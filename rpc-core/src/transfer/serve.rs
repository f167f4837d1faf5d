//! The sender's side of a pull: each transfer's chunk requests are served
//! in order on the blocking pool, reading memory or the file, checksumming
//! and framing off the connection's reader and off the runtime's workers;
//! a peer that does not read what it asked for is served no more until it
//! does.

use super::failed;
use super::serial::{Job, Ran};
use super::table::{Progress, Source};
use crate::ids::TransferId;
use crate::transport::connection::Connection;
use crate::wire::Message;
use std::sync::Arc;

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

/// A chunk request: on which connection, at which offset, how many bytes.
pub(crate) type ChunkRequest = (Arc<Connection>, u64, u32);

/// Chunk requests one transfer queues at most; more are refused. A puller
/// keeps its window in flight (2 by default), so only a peer that asks
/// without reading what it is sent comes near it.
pub(crate) const MAX_QUEUED_REQUESTS: usize = 1024;

/// The largest chunk a node configured with `chunk_size` serves in one
/// frame: four of its own chunks, and never less than four default ones,
/// so that a node set to small chunks still serves peers that ask in the
/// default size. A chunk served past the send queue's limit is the most
/// that a peer that does not read can add to it.
pub(crate) fn largest_served_chunk(chunk_size: usize) -> u32 {
    let most = chunk_size.max(crate::config::CHUNK_SIZE).saturating_mul(4);
    u32::try_from(most).unwrap_or(u32::MAX)
}

/// Serves the chunk requests of one transfer in order on the blocking pool
/// (see [`super::serial::Serial`]): copying, reading from disk,
/// checksumming and framing never run on the connection's reader or on a
/// runtime worker; a request hops to the pool only when it finds the queue
/// idle.
pub(crate) struct ChunkServer {
    pub(crate) id: TransferId,
    pub(crate) source: Source,
    pub(crate) size: u64,
    pub(crate) progress: Option<Progress>,
}

impl Job<ChunkRequest> for ChunkServer {
    fn run(&mut self, req: ChunkRequest) -> std::io::Result<Ran<ChunkRequest>> {
        let (conn, offset, len) = req;
        if conn.backlog() > conn.max_queued() && !conn.is_closed() {
            // The peer does not read what it asked for: serve it no more
            // until what it was sent drains (as its requests are no longer
            // read either), so that it cannot make this node hold its
            // whole value in the send queue.
            let waits = Arc::clone(&conn);
            return Ok(Ran::Later(
                (conn, offset, len),
                Box::pin(async move {
                    waits.wait_for_drain().await;
                }),
            ));
        }
        let id = self.id;
        let end = offset + u64::from(len);
        let mut buf = Vec::new();
        let data = match &self.source {
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
                if let Some(p) = &self.progress {
                    p(end, self.size);
                }
            }
            Err(e) => {
                let _ = conn.send(&Message::ChunkError {
                    id,
                    error: failed(format!("sender could not read the value: {e}")),
                });
            }
        }
        Ok(Ran::Done)
    }
}
