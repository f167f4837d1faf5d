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

use crate::error::RpcError;
use crate::ids::{NodeId, TransferId};
use crate::node::NodeInner;
use crate::transport::connection::Connection;
use crate::wire::{Arg, Message, Payload, TransferMeta};
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Largest value whose whole CRC-32 is computed up front (on the sending
/// task: about 0.1 s per GiB); above it the per-chunk CRCs carry integrity.
pub const WHOLE_CHECKSUM_LIMIT: usize = 16 * 1024 * 1024;

/// The whole-value checksum announced for `bytes`, if it is cheap enough.
fn whole_checksum(bytes: &[u8]) -> Option<u32> {
    (bytes.len() <= WHOLE_CHECKSUM_LIMIT).then(|| crc32fast::hash(bytes))
}

/// Bytes a chunk frame needs besides its data (envelope, ids, CRC), with room to spare.
const CHUNK_FRAME_OVERHEAD: usize = 256;

/// Where an outgoing transfer's bytes are.
#[derive(Clone)]
pub(crate) enum Source {
    /// In memory, shared with nobody else who could change it.
    Memory(Arc<Vec<u8>>),
    /// In a file, read chunk by chunk.
    File(Arc<std::fs::File>),
}

/// Called with (bytes sent, total) as the receiver pulls a blob.
pub(crate) type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// A value this node keeps until its receiver pulled it (the seed's OngoingTransfer).
struct Outgoing {
    receiver: NodeId,
    size: u64,
    source: Source,
    /// Told after every chunk sent, if the blob asked for it.
    progress: Option<Progress>,
    /// Last time the receiver asked for something; idle transfers are dropped.
    touched: Mutex<Instant>,
    /// Chunk requests, served in order off the connection's reader by one
    /// blocking thread per transfer (started on demand, gone when idle).
    serve_queue: Mutex<Option<std::sync::mpsc::Sender<(Arc<Connection>, u64, u32)>>>,
}

impl Outgoing {
    /// The transfer is over: drops the chunk server's queue, so that its
    /// thread ends at once instead of waiting out its idle time (which held
    /// a process that had finished up to `CHUNK_SERVER_IDLE` at exit, since
    /// the runtime waits for its blocking threads).
    fn stop_serving(&self) {
        drop(self.serve_queue.lock().take());
    }
}

/// What the reader hands an incoming transfer.
pub(crate) enum ChunkEvent {
    /// Bytes at `offset`, with their CRC-32 as the sender computed it.
    Data {
        offset: u64,
        data: Vec<u8>,
        crc: u32,
    },
    /// The sender refused, or the connection is gone.
    Failed(RpcError),
}

/// A transfer this node is pulling (the seed's IncomingTransfer).
struct Incoming {
    sender: NodeId,
    tx: mpsc::Sender<ChunkEvent>,
}

/// Both directions of one node's transfers.
#[derive(Default)]
pub(crate) struct Transfers {
    /// Values we keep for others; short critical sections only.
    outgoing: Mutex<HashMap<TransferId, Arc<Outgoing>>>,
    /// Values we are pulling, by transfer id, to route arriving chunks.
    incoming: Mutex<HashMap<TransferId, Incoming>>,
}

fn failed(reason: impl Into<String>) -> RpcError {
    RpcError::TransferFailed {
        reason: reason.into(),
    }
}

impl Transfers {
    /// Keeps `source` for `receiver` and returns the reference to send instead.
    pub(crate) fn offer(
        &self,
        me: NodeId,
        receiver: NodeId,
        source: Source,
        size: u64,
        checksum: Option<u32>,
        progress: Option<Progress>,
    ) -> TransferMeta {
        let id = TransferId::random();
        self.outgoing.lock().insert(
            id,
            Arc::new(Outgoing {
                receiver,
                size,
                source,
                progress,
                touched: Mutex::new(Instant::now()),
                serve_queue: Mutex::new(None),
            }),
        );
        TransferMeta {
            id,
            sender: me,
            receiver,
            size,
            checksum,
        }
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
        *out.touched.lock() = Instant::now();
        let mut q = out.serve_queue.lock();
        let req = (Arc::clone(conn), offset, len);
        // A server thread that went idle has dropped its receiver: start another.
        let req = match q.as_ref() {
            Some(tx) => match tx.send(req) {
                Ok(()) => return,
                Err(std::sync::mpsc::SendError(req)) => req,
            },
            None => req,
        };
        let tx = spawn_chunk_server(id, Arc::clone(&out));
        let _ = tx.send(req);
        *q = Some(tx);
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
        }
    }

    /// The receiver is done with `id`: free it.
    pub(crate) fn on_end(&self, conn: &Connection, id: TransferId) {
        let mut m = self.outgoing.lock();
        if m.get(&id).is_some_and(|o| o.receiver == conn.peer)
            && let Some(o) = m.remove(&id)
        {
            o.stop_serving();
        }
    }

    /// `peer` is gone: drop what we keep for it and fail what we pull from it.
    pub(crate) fn peer_gone(&self, peer: NodeId, why: &RpcError) {
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

    /// (outgoing, incoming) transfers open now.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.outgoing.lock().len(), self.incoming.lock().len())
    }
}

fn send_chunk(conn: &Connection, id: TransferId, offset: u64, data: Vec<u8>) {
    let crc = crc32fast::hash(&data);
    let sent = conn.send_bulk(&Message::Chunk {
        id,
        offset,
        data: Payload(data),
        crc,
    });
    if let Err(e @ RpcError::Encode { .. }) = sent {
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
fn spawn_chunk_server(
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
            let data = match &out.source {
                Source::Memory(bytes) => Ok(bytes[offset as usize..end as usize].to_vec()),
                Source::File(file) => {
                    use std::os::unix::fs::FileExt;
                    let mut buf = vec![0u8; len as usize];
                    file.read_exact_at(&mut buf, offset).map(|()| buf)
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
                        error: failed(format!("sender could not read its file: {e}")),
                    });
                }
            }
        }
    });
    tx
}

/// Where a pull puts the bytes.
pub(crate) enum Sink {
    /// Into memory.
    Memory(Vec<u8>),
    /// Into a file, by a writer thread; removed if the pull fails.
    File(FileSink),
}

/// A file written in order by one blocking thread, fed through a bounded
/// channel (a few chunks of write-behind), synced to disk at the end.
pub(crate) struct FileSink {
    /// Chunks for the writer thread; dropped to tell it the value is complete.
    tx: Option<mpsc::Sender<Vec<u8>>>,
    /// The writer thread: its result says whether every byte reached the disk.
    writer: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The file's path, to name it in errors and remove a partial file.
    path: PathBuf,
}

impl FileSink {
    /// Creates (truncates) the file at `path` and starts its writer.
    pub(crate) fn create(path: PathBuf, depth: usize) -> std::io::Result<FileSink> {
        let mut file = std::fs::File::create(&path)?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(depth.max(1));
        let writer = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = rx.blocking_recv() {
                file.write_all(&chunk)?;
            }
            file.sync_all()
        });
        Ok(FileSink {
            tx: Some(tx),
            writer: Some(writer),
            path,
        })
    }

    async fn write(&mut self, data: Vec<u8>) -> Result<(), RpcError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(data).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer stopped: its result says why.
        Err(self
            .finish()
            .await
            .err()
            .unwrap_or_else(|| failed("file writer stopped")))
    }

    /// Waits until every chunk is written and synced.
    async fn finish(&mut self) -> Result<(), RpcError> {
        drop(self.tx.take());
        let Some(w) = self.writer.take() else {
            return Ok(());
        };
        match w.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(failed(format!(
                "could not write {}: {e}",
                self.path.display()
            ))),
            Err(e) => Err(failed(format!("file writer failed: {e}"))),
        }
    }
}

impl Sink {
    async fn write(&mut self, data: Vec<u8>) -> Result<(), RpcError> {
        match self {
            Sink::Memory(v) => {
                v.extend_from_slice(&data);
                Ok(())
            }
            Sink::File(f) => f.write(data).await,
        }
    }
}

/// Pulls the transfer `meta` from the peer of `conn` into `sink`, keeping up to
/// `window` chunk requests in flight, checking every chunk and the total.
/// Returns the CRC-32 of all bytes, so that a caller who knows the value's
/// checksum from elsewhere (the data manager) can check it without a second pass.
pub(crate) async fn pull(
    node: &NodeInner,
    conn: &Arc<Connection>,
    meta: &TransferMeta,
    sink: &mut Sink,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<u32, RpcError> {
    let cfg = &node.config;
    let window = cfg.transfer_window.max(1);
    // A chunk and its frame header must fit in the smaller of both frame limits.
    let chunk = cfg
        .chunk_size
        .min(conn.max_send().saturating_sub(CHUNK_FRAME_OVERHEAD))
        .clamp(1, u32::MAX as usize) as u64;
    let (tx, mut rx) = mpsc::channel(window + 1);
    node.transfers.incoming.lock().insert(
        meta.id,
        Incoming {
            sender: meta.sender,
            tx,
        },
    );
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
    node.transfers.incoming.lock().remove(&meta.id);
    let _ = conn.send(&Message::TransferEnd {
        id: meta.id,
        ok: result.is_ok(),
    });
    // A file is complete only once its writer has written and synced it.
    let result = match (result, &mut *sink) {
        (Ok(crc), Sink::File(f)) => f.finish().await.map(|()| crc),
        (r, _) => r,
    };
    if result.is_err()
        && let Sink::File(f) = sink
    {
        let _ = f.finish().await;
        let _ = tokio::fs::remove_file(&f.path).await;
    }
    result
}

impl NodeInner {
    /// Replaces payloads above the threshold by transfers kept for `receiver`.
    pub(crate) fn route_out(&self, args: Vec<Payload>, receiver: NodeId) -> Vec<Arg> {
        args.into_iter()
            .map(|p| self.route_one(p, receiver))
            .collect()
    }

    /// One payload: inline, or kept here as a transfer for `receiver`.
    pub(crate) fn route_one(&self, p: Payload, receiver: NodeId) -> Arg {
        if p.0.len() <= self.config.large_threshold {
            return Arg::Inline(p);
        }
        let size = p.0.len() as u64;
        let checksum = whole_checksum(&p.0);
        Arg::Transfer(self.transfers.offer(
            self.id,
            receiver,
            Source::Memory(Arc::new(p.0)),
            size,
            checksum,
            None,
        ))
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
                if meta.sender != conn.peer || meta.receiver != self.id {
                    return Err(failed("transfer reference names other nodes"));
                }
                if meta.size > self.config.max_large_value {
                    let _ = conn.send(&Message::TransferEnd {
                        id: meta.id,
                        ok: false,
                    });
                    return Err(failed(format!(
                        "value of {} bytes is over this node's limit of {} bytes (use a Blob)",
                        meta.size, self.config.max_large_value
                    )));
                }
                let mut sink = Sink::Memory(Vec::with_capacity(meta.size as usize));
                pull(self, conn, &meta, &mut sink, |_, _| {}).await?;
                match sink {
                    Sink::Memory(v) => Ok(Payload(v)),
                    Sink::File(_) => Err(failed("memory sink became a file")),
                }
            }
        }
    }

    /// [`NodeInner::materialize`] for every argument.
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

/// A large byte value that crosses the wire through the large message proxy
/// whatever its size: backed by memory or by a file on the sending side, and
/// pulled on demand — into memory or straight into a file — on the receiving side.
pub struct Blob {
    repr: BlobRepr,
    /// Told (bytes sent, total) as a receiver pulls this blob from here.
    progress: Option<Progress>,
}

enum BlobRepr {
    /// Local bytes.
    Bytes(Arc<Vec<u8>>),
    /// A local file, read chunk by chunk when sent.
    File {
        file: Arc<std::fs::File>,
        path: PathBuf,
        size: u64,
    },
    /// Announced by a peer, not pulled yet.
    Remote {
        meta: TransferMeta,
        node: Arc<NodeInner>,
        pulled: bool,
    },
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            BlobRepr::Bytes(b) => write!(f, "Blob({} bytes in memory)", b.len()),
            BlobRepr::File { path, size, .. } => {
                write!(f, "Blob({size} bytes in {})", path.display())
            }
            BlobRepr::Remote { meta, .. } => {
                write!(f, "Blob({} bytes on {:?})", meta.size, meta.sender)
            }
        }
    }
}

impl Blob {
    /// A blob of in-memory bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Blob {
        Blob {
            repr: BlobRepr::Bytes(Arc::new(bytes)),
            progress: None,
        }
    }

    /// A blob backed by the file at `path`, read chunk by chunk when sent.
    ///
    /// # Errors
    /// When the file cannot be opened or its size read.
    pub fn from_file(path: impl AsRef<Path>) -> std::io::Result<Blob> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::File::open(&path)?;
        let size = file.metadata()?.len();
        Ok(Blob {
            repr: BlobRepr::File {
                file: Arc::new(file),
                path,
                size,
            },
            progress: None,
        })
    }

    /// The same blob, calling `progress(sent, total)` as a receiver pulls it
    /// from this node (for a progress bar on the sending side).
    pub fn with_progress(mut self, progress: impl Fn(u64, u64) + Send + Sync + 'static) -> Blob {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        match &self.repr {
            BlobRepr::Bytes(b) => b.len() as u64,
            BlobRepr::File { size, .. } => *size,
            BlobRepr::Remote { meta, .. } => meta.size,
        }
    }

    /// True for an empty blob.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the bytes are on another node, not pulled yet.
    pub fn is_remote(&self) -> bool {
        matches!(self.repr, BlobRepr::Remote { .. })
    }

    /// The bytes, in memory (pulled from the sender if the blob is remote).
    ///
    /// # Errors
    /// [`RpcError::TransferFailed`] when the pull fails or the value is over
    /// the node's in-memory limit; I/O errors of a local file.
    pub async fn into_bytes(mut self) -> Result<Vec<u8>, RpcError> {
        match &mut self.repr {
            BlobRepr::Bytes(b) => Ok(Arc::unwrap_or_clone(Arc::clone(b))),
            BlobRepr::File { path, .. } => tokio::fs::read(&path)
                .await
                .map_err(|e| failed(format!("could not read {}: {e}", path.display()))),
            BlobRepr::Remote { meta, node, pulled } => {
                if meta.size > node.config.max_large_value {
                    return Err(failed(format!(
                        "blob of {} bytes is over this node's in-memory limit; use save_to",
                        meta.size
                    )));
                }
                *pulled = true;
                let conn = node.conn_for_transfer(meta)?;
                let mut sink = Sink::Memory(Vec::with_capacity(meta.size as usize));
                pull(node, &conn, meta, &mut sink, |_, _| {}).await?;
                match sink {
                    Sink::Memory(v) => Ok(v),
                    Sink::File(_) => Err(failed("memory sink became a file")),
                }
            }
        }
    }

    /// Writes the bytes to `path`, chunk by chunk; returns the size. A partly
    /// written file is removed when the transfer fails.
    ///
    /// # Errors
    /// As [`Blob::into_bytes`], and I/O errors on `path`.
    pub async fn save_to(self, path: impl AsRef<Path>) -> Result<u64, RpcError> {
        self.save_to_with_progress(path, |_, _| {}).await
    }

    /// [`Blob::save_to`], calling `progress(done, total)` after every chunk.
    ///
    /// # Errors
    /// As [`Blob::save_to`].
    pub async fn save_to_with_progress(
        mut self,
        path: impl AsRef<Path>,
        progress: impl FnMut(u64, u64) + Send,
    ) -> Result<u64, RpcError> {
        let path = path.as_ref().to_path_buf();
        let io = |e: std::io::Error| failed(format!("could not write {}: {e}", path.display()));
        match &mut self.repr {
            BlobRepr::Bytes(b) => {
                tokio::fs::write(&path, &**b).await.map_err(io)?;
                Ok(b.len() as u64)
            }
            BlobRepr::File { path: from, .. } => tokio::fs::copy(&from, &path).await.map_err(io),
            BlobRepr::Remote { meta, node, pulled } => {
                *pulled = true;
                let conn = node.conn_for_transfer(meta)?;
                let depth = node.config.transfer_window;
                let mut sink = Sink::File(FileSink::create(path.clone(), depth).map_err(io)?);
                pull(node, &conn, meta, &mut sink, progress).await?;
                Ok(meta.size)
            }
        }
    }
}

impl Blob {
    /// A blob over shared in-memory bytes (the data manager's memory store),
    /// without copying them.
    pub(crate) fn from_shared(bytes: Arc<Vec<u8>>) -> Blob {
        Blob {
            repr: BlobRepr::Bytes(bytes),
            progress: None,
        }
    }

    /// A blob announced by a peer in `meta`, to be pulled by `node`.
    pub(crate) fn announced(meta: TransferMeta, node: Arc<NodeInner>) -> Blob {
        Blob {
            repr: BlobRepr::Remote {
                meta,
                node,
                pulled: false,
            },
            progress: None,
        }
    }

    /// Writes the bytes to `path` (created or truncated) and syncs it; returns
    /// the size and the CRC-32 of all bytes. A partly written file is removed
    /// when this fails. Local files are copied on a blocking thread, remote
    /// blobs are pulled chunk by chunk: memory stays bounded either way.
    ///
    /// # Errors
    /// As [`Blob::save_to`].
    pub(crate) async fn save_checked(mut self, path: &Path) -> Result<(u64, u32), RpcError> {
        let io = |e: std::io::Error| failed(format!("could not write {}: {e}", path.display()));
        match &mut self.repr {
            BlobRepr::Remote { meta, node, pulled } => {
                *pulled = true;
                let conn = node.conn_for_transfer(meta)?;
                let depth = node.config.transfer_window;
                let mut sink = Sink::File(FileSink::create(path.to_owned(), depth).map_err(io)?);
                let crc = pull(node, &conn, meta, &mut sink, |_, _| {}).await?;
                Ok((meta.size, crc))
            }
            BlobRepr::Bytes(b) => {
                let bytes = Arc::clone(b);
                let to = path.to_owned();
                let r = tokio::task::spawn_blocking(move || {
                    let mut f = std::fs::File::create(&to)?;
                    f.write_all(&bytes)?;
                    f.sync_all()?;
                    Ok((bytes.len() as u64, crc32fast::hash(&bytes)))
                })
                .await
                .map_err(|e| failed(format!("file writer failed: {e}")))?;
                finish_local_copy(r, path).await.map_err(io)
            }
            BlobRepr::File { file, size, .. } => {
                let (from, size, to) = (Arc::clone(file), *size, path.to_owned());
                let r = tokio::task::spawn_blocking(move || copy_with_crc(&from, size, &to))
                    .await
                    .map_err(|e| failed(format!("file copy failed: {e}")))?;
                finish_local_copy(r, path).await.map_err(io)
            }
        }
    }
}

/// Removes a partly written copy when writing it failed.
async fn finish_local_copy(
    r: std::io::Result<(u64, u32)>,
    path: &Path,
) -> std::io::Result<(u64, u32)> {
    if r.is_err() {
        let _ = tokio::fs::remove_file(path).await;
    }
    r
}

/// Bytes read per step by [`copy_with_crc`].
const COPY_STEP: usize = 1024 * 1024;

/// Copies `size` bytes of `from` into a new file `to` in steps of
/// [`COPY_STEP`], computing their CRC-32 on the way; syncs `to`.
fn copy_with_crc(from: &std::fs::File, size: u64, to: &Path) -> std::io::Result<(u64, u32)> {
    use std::os::unix::fs::FileExt;
    let mut out = std::fs::File::create(to)?;
    let mut buf = vec![0u8; COPY_STEP];
    let mut hasher = crc32fast::Hasher::new();
    let mut off = 0u64;
    while off < size {
        let n = usize::try_from((size - off).min(COPY_STEP as u64)).unwrap_or(COPY_STEP);
        from.read_exact_at(&mut buf[..n], off)?;
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        off += n as u64;
    }
    out.sync_all()?;
    Ok((size, hasher.finalize()))
}

impl Drop for Blob {
    fn drop(&mut self) {
        // Tell the sender at once when a remote blob is dropped unread.
        if let BlobRepr::Remote {
            meta,
            node,
            pulled: false,
        } = &self.repr
            && let Ok(conn) = node.conn_for_transfer(meta)
        {
            let _ = conn.send(&Message::TransferEnd {
                id: meta.id,
                ok: false,
            });
        }
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (node, receiver) = crate::dispatch::current_node_and_peer()
            .map_err(|e| serde::ser::Error::custom(e.to_string()))?;
        let Some(receiver) = receiver else {
            return Err(serde::ser::Error::custom(
                "a Blob can only be sent as an argument or result of a call",
            ));
        };
        let meta = match &self.repr {
            BlobRepr::Bytes(b) => node.transfers.offer(
                node.id,
                receiver,
                Source::Memory(Arc::clone(b)),
                b.len() as u64,
                whole_checksum(b),
                self.progress.clone(),
            ),
            BlobRepr::File { file, size, .. } => node.transfers.offer(
                node.id,
                receiver,
                Source::File(Arc::clone(file)),
                *size,
                None,
                self.progress.clone(),
            ),
            BlobRepr::Remote { .. } => {
                return Err(serde::ser::Error::custom(
                    "a Blob received from another node must be read (into_bytes or save_to) before it is sent on",
                ));
            }
        };
        meta.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let meta = TransferMeta::deserialize(d)?;
        let (node, _) = crate::dispatch::current_node_and_peer()
            .map_err(|e| serde::de::Error::custom(e.to_string()))?;
        if meta.receiver != node.id {
            return Err(serde::de::Error::custom("a Blob meant for another node"));
        }
        Ok(Blob {
            repr: BlobRepr::Remote {
                meta,
                node,
                pulled: false,
            },
            progress: None,
        })
    }
}
