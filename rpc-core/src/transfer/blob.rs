//! [`Blob`]: a byte value that travels through the large message proxy
//! (in-memory bytes up to the threshold go inline), backed by memory or a
//! file on the sending side, pulled into memory or straight into a file on
//! the receiving side.

use super::sink::{ChunkSink, FileWriter, ReadAt, WRITEBACK_STEP, WriterSink};
use super::table::{Progress, Source};
use super::{Transfers, failed, whole_checksum};
use crate::error::RpcError;
use crate::wire::{Message, TransferMeta};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest CBOR head of an inline blob's byte string.
const INLINE_HEAD: usize = 9;

/// Why a blob cannot be encoded or decoded outside a call.
const NOT_IN_CALL: &str = "a Blob can only be encoded and decoded by the rpc runtime";

/// A large byte value that crosses the wire through the large message proxy:
/// backed by memory or by a file on the sending side, and pulled on demand —
/// into memory or straight into a file — on the receiving side. In-memory
/// bytes that fit under `Config::large_threshold` travel inline instead (and
/// arrive as a local blob).
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
        /// CRC-32 of the whole file, when the owner knows it (stored data).
        checksum: Option<u32>,
    },
    /// Anything else read by offset (a database's chunk table, say).
    Reader { reader: Arc<dyn ReadAt>, size: u64 },
    /// Announced by a peer, not pulled yet.
    Remote {
        meta: TransferMeta,
        hub: Arc<Transfers>,
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
            BlobRepr::Reader { size, .. } => write!(f, "Blob({size} bytes from a reader)"),
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
                checksum: None,
            },
            progress: None,
        })
    }

    /// A blob of `size` bytes read from `reader` by offset, chunk by chunk as
    /// a receiver pulls them (nothing is read before): for values kept
    /// somewhere that is not one file.
    pub fn from_reader(reader: Arc<dyn ReadAt>, size: u64) -> Blob {
        Blob {
            repr: BlobRepr::Reader { reader, size },
            progress: None,
        }
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
            BlobRepr::File { size, .. } | BlobRepr::Reader { size, .. } => *size,
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
            // Taken out, not cloned: a blob that alone holds its bytes
            // gives them back without a copy.
            BlobRepr::Bytes(b) => Ok(Arc::unwrap_or_clone(std::mem::take(b))),
            BlobRepr::File { path, .. } => tokio::fs::read(&path)
                .await
                .map_err(|e| failed(format!("could not read {}: {e}", path.display()))),
            BlobRepr::Reader { reader, size } => {
                let (reader, size) = (Arc::clone(reader), *size);
                tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; usize::try_from(size).unwrap_or(usize::MAX)];
                    reader.read_exact_at(&mut buf, 0).map(|()| buf)
                })
                .await
                .map_err(|e| failed(format!("reader failed: {e}")))?
                .map_err(|e| failed(format!("could not read the value: {e}")))
            }
            BlobRepr::Remote { meta, hub, pulled } => {
                if meta.size > hub.config.max_large_value {
                    return Err(failed(format!(
                        "blob of {} bytes is over this node's in-memory limit; use save_to",
                        meta.size
                    )));
                }
                // Until `pulled` is set, dropping the blob tells the sender.
                let room = hub.memory_for(meta.sender, meta.size)?;
                let conn = hub.conn_for(meta)?;
                *pulled = true;
                let mut sink = WriterSink::memory(meta.size, hub.config.transfer_window)?;
                super::pull::pull(hub, &conn, meta, &mut sink, |_, _| {}).await?;
                drop(room);
                sink.into_inner()
                    .ok_or_else(|| failed("the memory sink was lost"))
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
            BlobRepr::Reader { .. } => self.save_checked(&path).await.map(|(n, _)| n),
            BlobRepr::Remote { meta, hub, pulled } => {
                let room = hub.disk_for(meta.sender, meta.size, &path)?;
                let conn = hub.conn_for(meta)?;
                let depth = hub.config.transfer_window;
                let mut sink = WriterSink::file(path.clone(), depth).map_err(io)?;
                *pulled = true;
                super::pull::pull(hub, &conn, meta, &mut sink, progress).await?;
                drop(room);
                Ok(meta.size)
            }
        }
    }
}

impl Blob {
    /// Hands the bytes to `sink` in order, chunk by chunk (pulled from the
    /// sender if the blob is remote, checked chunk by chunk and whole), then
    /// calls its `finish`; returns the size. When anything fails, the sink
    /// is dropped unfinished. Memory stays at a few chunks whatever the size.
    ///
    /// # Errors
    /// As [`Blob::save_to`], and what the sink fails with.
    pub async fn save_into(mut self, sink: impl ChunkSink) -> Result<u64, RpcError> {
        let mut sink: Box<dyn ChunkSink> = Box::new(sink);
        let size = self.len();
        let local: Arc<dyn ReadAt> = match &mut self.repr {
            BlobRepr::Remote { meta, hub, pulled } => {
                let conn = hub.conn_for(meta)?;
                let depth = hub.config.transfer_window;
                let mut writer = WriterSink::new(sink, depth);
                *pulled = true;
                super::pull::pull(hub, &conn, meta, &mut writer, |_, _| {}).await?;
                return Ok(meta.size);
            }
            BlobRepr::Bytes(b) => Arc::new(Arc::clone(b)),
            BlobRepr::File { file, .. } => Arc::clone(file) as Arc<dyn ReadAt>,
            BlobRepr::Reader { reader, .. } => Arc::clone(reader),
        };
        tokio::task::spawn_blocking(move || {
            copy_with_crc(&*local, size, &mut |chunk| sink.write(chunk))?;
            sink.finish()
        })
        .await
        .map_err(|e| failed(format!("the writer failed: {e}")))?
        .map_err(|e| failed(format!("could not write the value: {e}")))?;
        Ok(size)
    }

    /// A blob over shared in-memory bytes (the data manager's memory store),
    /// without copying them.
    pub(crate) fn from_shared(bytes: Arc<Vec<u8>>) -> Blob {
        Blob {
            repr: BlobRepr::Bytes(bytes),
            progress: None,
        }
    }

    /// The same blob, announcing `crc` as the CRC-32 of the whole file, so
    /// that the receiver checks the whole value (the data manager knows it).
    pub(crate) fn with_checksum(mut self, crc: u32) -> Blob {
        if let BlobRepr::File { checksum, .. } = &mut self.repr {
            *checksum = Some(crc);
        }
        self
    }

    /// A blob announced in `meta` to the node decoding on this thread, or
    /// `None` when it is meant for another node (a reference read back from
    /// storage, say) or nothing is being decoded.
    pub(crate) fn announced_here(meta: TransferMeta) -> Option<Blob> {
        let (hub, _) = super::scope()?;
        (meta.receiver == hub.me).then(|| Blob {
            repr: BlobRepr::Remote {
                meta,
                hub,
                pulled: false,
            },
            progress: None,
        })
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
            BlobRepr::Remote { meta, hub, pulled } => {
                let room = hub.disk_for(meta.sender, meta.size, path)?;
                let conn = hub.conn_for(meta)?;
                let depth = hub.config.transfer_window;
                let mut sink = WriterSink::file(path.to_owned(), depth).map_err(io)?;
                *pulled = true;
                let crc = super::pull::pull(hub, &conn, meta, &mut sink, |_, _| {}).await?;
                drop(room);
                Ok((meta.size, crc))
            }
            BlobRepr::Bytes(b) => {
                let bytes = Arc::clone(b);
                let to = path.to_owned();
                let r = tokio::task::spawn_blocking(move || {
                    let mut f = FileWriter::create(&to)?;
                    for c in bytes.chunks(WRITEBACK_STEP as usize) {
                        f.write(c)?;
                    }
                    f.finish()?;
                    Ok((bytes.len() as u64, crc32fast::hash(&bytes)))
                })
                .await
                .map_err(|e| failed(format!("file writer failed: {e}")))?;
                finish_local_copy(r, path).await.map_err(io)
            }
            BlobRepr::File { file, size, .. } => {
                let from: Arc<dyn ReadAt> = Arc::clone(file) as Arc<dyn ReadAt>;
                copy_local(from, *size, path).await
            }
            BlobRepr::Reader { reader, size } => copy_local(Arc::clone(reader), *size, path).await,
        }
    }
}

/// Copies a local blob into a new file at `path`, on a blocking thread.
async fn copy_local(from: Arc<dyn ReadAt>, size: u64, path: &Path) -> Result<(u64, u32), RpcError> {
    let io = |e: std::io::Error| failed(format!("could not write {}: {e}", path.display()));
    let to = path.to_owned();
    let r = tokio::task::spawn_blocking(move || {
        let mut out = FileWriter::create(&to)?;
        let crc = copy_with_crc(&*from, size, &mut |chunk| out.write(chunk))?;
        out.finish()?;
        Ok((size, crc))
    })
    .await
    .map_err(|e| failed(format!("file copy failed: {e}")))?;
    finish_local_copy(r, path).await.map_err(io)
}

/// In-memory bytes read by offset, to copy them like a file.
impl ReadAt for Arc<Vec<u8>> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
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

/// Hands `size` bytes of `from` to `out` in steps of [`COPY_STEP`];
/// returns their CRC-32.
fn copy_with_crc(
    from: &dyn ReadAt,
    size: u64,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<u32> {
    let mut buf = vec![0u8; COPY_STEP];
    let mut hasher = crc32fast::Hasher::new();
    let mut off = 0u64;
    while off < size {
        let n = usize::try_from((size - off).min(COPY_STEP as u64)).unwrap_or(COPY_STEP);
        from.read_exact_at(&mut buf[..n], off)?;
        hasher.update(&buf[..n]);
        out(&buf[..n])?;
        off += n as u64;
    }
    Ok(hasher.finalize())
}

impl Drop for Blob {
    fn drop(&mut self) {
        match &mut self.repr {
            // A caller's blob is dropped on its task when the call returns.
            BlobRepr::Bytes(b) => super::free_off_runtime(b),
            // Tell the sender at once when a remote blob is dropped unread.
            BlobRepr::Remote {
                meta,
                hub,
                pulled: false,
            } => {
                if let Ok(conn) = hub.conn_for(meta) {
                    let _ = conn.send(&Message::TransferEnd {
                        id: meta.id,
                        ok: false,
                    });
                }
            }
            _ => {}
        }
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some((hub, receiver)) = super::scope() else {
            return Err(serde::ser::Error::custom(NOT_IN_CALL));
        };
        let Some(receiver) = receiver else {
            return Err(serde::ser::Error::custom(
                "a Blob can only be sent as an argument or result of a call",
            ));
        };
        let offered = match &self.repr {
            BlobRepr::Bytes(b) if b.len() + INLINE_HEAD <= hub.config.large_threshold => {
                // Small enough to travel inline (head included, so that its
                // argument stays inline too): no transfer, no round trips.
                if let Some(p) = &self.progress {
                    p(b.len() as u64, b.len() as u64);
                }
                return s.serialize_bytes(b);
            }
            BlobRepr::Bytes(b) => hub.offer(
                receiver,
                Source::Memory(Arc::clone(b)),
                b.len() as u64,
                whole_checksum(b),
                self.progress.clone(),
            ),
            BlobRepr::File {
                file,
                size,
                checksum,
                ..
            } => hub.offer(
                receiver,
                Source::Reader(Arc::clone(file) as Arc<dyn ReadAt>),
                *size,
                *checksum,
                self.progress.clone(),
            ),
            BlobRepr::Reader { reader, size } => hub.offer(
                receiver,
                Source::Reader(Arc::clone(reader)),
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
        let meta = offered.map_err(|e| serde::ser::Error::custom(super::stash(e)))?;
        meta.serialize(s)
    }
}

/// A blob as it travels: a transfer reference, or (up to the sender's
/// threshold) its bytes inline.
struct BlobVisitor;

impl<'de> serde::de::Visitor<'de> for BlobVisitor {
    type Value = Result<TransferMeta, Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a transfer reference or a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(Err(v.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(Err(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // The decoder hands a byte string longer than its scratch buffer as
        // a sequence of integers; a reference starts with its transfer id.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum First {
            Id(crate::ids::TransferId),
            Byte(u8),
        }
        let missing =
            |what: &str| serde::de::Error::custom(format!("blob reference without {what}"));
        match seq.next_element::<First>()? {
            None => Ok(Err(Vec::new())),
            Some(First::Byte(b)) => {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).saturating_add(1));
                v.push(b);
                while let Some(b) = seq.next_element::<u8>()? {
                    v.push(b);
                }
                Ok(Err(v))
            }
            // The fields of `TransferMeta`, in its positional order.
            Some(First::Id(id)) => Ok(Ok(TransferMeta {
                id,
                sender: seq.next_element()?.ok_or_else(|| missing("sender"))?,
                receiver: seq.next_element()?.ok_or_else(|| missing("receiver"))?,
                size: seq.next_element()?.ok_or_else(|| missing("size"))?,
                checksum: seq.next_element()?.ok_or_else(|| missing("checksum"))?,
            })),
        }
    }
}

/// A blob as it arrives, before it is tied to this node: what a value that
/// embeds a blob of its own (a data reference's copy) decodes.
pub(crate) struct WireBlob(Result<TransferMeta, Vec<u8>>);

impl<'de> Deserialize<'de> for WireBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BlobVisitor).map(WireBlob)
    }
}

impl WireBlob {
    /// The blob, if it is meant for the node decoding it now (inline bytes
    /// always are).
    pub(crate) fn here(self) -> Option<Blob> {
        match self.0 {
            Ok(meta) => Blob::announced_here(meta),
            Err(bytes) => Some(Blob::from_bytes(bytes)),
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let meta = match WireBlob::deserialize(d)?.0 {
            Ok(meta) => meta,
            Err(bytes) => return Ok(Blob::from_bytes(bytes)),
        };
        let Some((hub, _)) = super::scope() else {
            return Err(serde::de::Error::custom(NOT_IN_CALL));
        };
        if meta.receiver != hub.me {
            return Err(serde::de::Error::custom("a Blob meant for another node"));
        }
        Ok(Blob {
            repr: BlobRepr::Remote {
                meta,
                hub,
                pulled: false,
            },
            progress: None,
        })
    }
}
