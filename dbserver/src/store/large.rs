//! Bytes values kept out of line, so that a row stays small however large
//! its values: a bytes value over [`OUT_OF_LINE`] is cut into chunk rows of
//! [`CHUNK`] bytes under a random blob id, and its cell holds
//! [`Value::Blob`] (its size) with the blob id in [`LARGE`], keyed by the
//! cell's table, row and column. Reading another cell of the row never
//! touches the chunks; [`ChunkReader`] reads them by offset for a transfer,
//! from one snapshot.
//!
//! A value streamed in ([`BlobWriter`]) is written in several transactions
//! before its cell is set: its blob id stays in [`PENDING`] until the write
//! that sets the cell removes it, so that what a failed or interrupted
//! upload left behind is deleted (at once, or when the store next opens).

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use uuid::Uuid;

use super::{StorageExt, Store, corrupt};
use crate::error::DbError;
use crate::value::Value;

/// Bytes values larger than this are kept out of line.
pub const OUT_OF_LINE: usize = 64 * 1024;

/// Size of one chunk row: a little under 1 MiB, so that a chunk and its
/// page header fit a 1 MiB page (redb rounds pages up to powers of two: a
/// chunk of exactly 1 MiB took 2 MiB of file).
pub(super) const CHUNK: usize = (1 << 20) - 4096;

/// Bytes a [`BlobWriter`] gathers before writing them in one transaction.
const WRITE_BATCH: usize = 4 * CHUNK;

/// (table id, row, column index) -> (blob id, size), for each out-of-line cell.
pub(super) const LARGE: TableDefinition<'static, (u128, u64, u32), (u128, u64)> =
    TableDefinition::new("large");
/// (blob id, chunk index) -> the chunk's bytes.
pub(super) const CHUNKS: TableDefinition<'static, (u128, u64), &'static [u8]> =
    TableDefinition::new("chunks");
/// Blob id -> bytes written so far, for blobs being streamed in.
pub(super) const PENDING: TableDefinition<'static, u128, u64> = TableDefinition::new("pending");

/// Where an out-of-line value's chunks are and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BlobId {
    pub(super) id: u128,
    pub(super) size: u64,
}

/// Key of a cell in [`LARGE`].
fn cell_key(table: Uuid, row: u64, idx: usize) -> (u128, u64, u32) {
    (table.as_u128(), row, u32::try_from(idx).unwrap_or(u32::MAX))
}

/// Writes `bytes` as chunks of `blob`, the first one numbered `first`.
fn write_chunks(
    txn: &WriteTransaction,
    blob: u128,
    first: u64,
    bytes: &[u8],
) -> Result<(), DbError> {
    let mut chunks = txn.open_table(CHUNKS).storage()?;
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        chunks.insert((blob, first + i as u64), chunk).storage()?;
    }
    Ok(())
}

/// Deletes every chunk of `blob`.
fn delete_chunks(txn: &WriteTransaction, blob: u128) -> Result<(), DbError> {
    txn.open_table(CHUNKS)
        .storage()?
        .retain_in((blob, 0)..=(blob, u64::MAX), |_, _| false)
        .storage()
}

/// Frees the out-of-line bytes of one cell, if it has any.
pub(super) fn free_cell(
    txn: &WriteTransaction,
    table: Uuid,
    row: u64,
    idx: usize,
) -> Result<(), DbError> {
    let removed = txn
        .open_table(LARGE)
        .storage()?
        .remove(cell_key(table, row, idx))
        .storage()?
        .map(|v| v.value().0);
    match removed {
        Some(blob) => delete_chunks(txn, blob),
        None => Ok(()),
    }
}

/// Frees the out-of-line bytes of every cell of `values` (a row being deleted).
pub(super) fn free_row(
    txn: &WriteTransaction,
    table: Uuid,
    row: u64,
    values: &[Value],
) -> Result<(), DbError> {
    for (idx, v) in values.iter().enumerate() {
        if matches!(v, Value::Blob { .. }) {
            free_cell(txn, table, row, idx)?;
        }
    }
    Ok(())
}

/// Frees the out-of-line bytes of every cell of a table being dropped.
pub(super) fn free_table(txn: &WriteTransaction, table: Uuid) -> Result<(), DbError> {
    let t = table.as_u128();
    let range = (t, 0, 0)..=(t, u64::MAX, u32::MAX);
    let mut blobs = Vec::new();
    {
        let large = txn.open_table(LARGE).storage()?;
        for entry in large.range(range.clone()).storage()? {
            blobs.push(entry.storage()?.1.value().0);
        }
    }
    txn.open_table(LARGE)
        .storage()?
        .retain_in(range, |_, _| false)
        .storage()?;
    for blob in blobs {
        delete_chunks(txn, blob)?;
    }
    Ok(())
}

/// Puts `value` into a cell whose previous stored value was `old` (`None`
/// for a new row): frees the old out-of-line bytes, keeps large new bytes
/// out of line. Returns what the row holds for the cell. Everything must be
/// checked before: this writes.
pub(super) fn put_cell(
    txn: &WriteTransaction,
    table: Uuid,
    row: u64,
    idx: usize,
    old: Option<&Value>,
    value: Value,
) -> Result<Value, DbError> {
    if old.is_some_and(|o| matches!(o, Value::Blob { .. })) {
        free_cell(txn, table, row, idx)?;
    }
    match value {
        Value::Bytes(bytes) if bytes.len() > OUT_OF_LINE => {
            let blob = BlobId {
                id: Uuid::new_v4().as_u128(),
                size: bytes.len() as u64,
            };
            write_chunks(txn, blob.id, 0, &bytes)?;
            link(txn, table, row, idx, blob)
        }
        other => Ok(other),
    }
}

/// Makes `blob` the out-of-line value of a cell; returns what its row holds.
pub(super) fn link(
    txn: &WriteTransaction,
    table: Uuid,
    row: u64,
    idx: usize,
    blob: BlobId,
) -> Result<Value, DbError> {
    txn.open_table(LARGE)
        .storage()?
        .insert(cell_key(table, row, idx), (blob.id, blob.size))
        .storage()?;
    Ok(Value::Blob { size: blob.size })
}

/// The out-of-line value of a cell, if it has one.
pub(super) fn locate(
    txn: &ReadTransaction,
    table: Uuid,
    row: u64,
    idx: usize,
) -> Result<Option<BlobId>, DbError> {
    Ok(txn
        .open_table(LARGE)
        .storage()?
        .get(cell_key(table, row, idx))
        .storage()?
        .map(|v| {
            let (id, size) = v.value();
            BlobId { id, size }
        }))
}

/// Deletes what unfinished uploads left (at open, before anything else runs).
pub(super) fn remove_pending(txn: &WriteTransaction) -> Result<usize, DbError> {
    let mut ids = Vec::new();
    {
        let pending = txn.open_table(PENDING).storage()?;
        for entry in pending.iter().storage()? {
            ids.push(entry.storage()?.0.value());
        }
    }
    for id in &ids {
        delete_chunks(txn, *id)?;
    }
    txn.open_table(PENDING)
        .storage()?
        .retain(|_, _| false)
        .storage()?;
    Ok(ids.len())
}

/// Reads an out-of-line value by offset, from the snapshot it was opened in
/// (a concurrent overwrite does not change what a transfer sends).
pub struct ChunkReader {
    chunks: redb::ReadOnlyTable<(u128, u64), &'static [u8]>,
    blob: BlobId,
    /// The chunk read last: a transfer asks for it piece by piece, in
    /// order, and reading it from redb once per piece was the slow part.
    last: parking_lot::Mutex<Option<(u64, Vec<u8>)>>,
}

impl std::fmt::Debug for ChunkReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field("size", &self.blob.size)
            .finish_non_exhaustive()
    }
}

impl ChunkReader {
    /// A reader of `blob`'s chunks in `txn`'s snapshot.
    pub(super) fn open(txn: &ReadTransaction, blob: BlobId) -> Result<ChunkReader, DbError> {
        Ok(ChunkReader {
            chunks: txn.open_table(CHUNKS).storage()?,
            blob,
            last: parking_lot::Mutex::new(None),
        })
    }

    /// The value's size.
    pub fn size(&self) -> u64 {
        self.blob.size
    }
}

impl rpc_core::ReadAt for ChunkReader {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let io = |e: DbError| std::io::Error::other(e.to_string());
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|end| *end <= self.blob.size)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        let mut last = self.last.lock();
        let mut at = offset;
        while at < end {
            let index = at / CHUNK as u64;
            let within = (at % CHUNK as u64) as usize;
            if last.as_ref().is_none_or(|(i, _)| *i != index) {
                let chunk = self
                    .chunks
                    .get((self.blob.id, index))
                    .storage()
                    .map_err(io)?
                    .ok_or_else(|| io(corrupt(&format!("chunk {index} of a blob is missing"))))?;
                *last = Some((index, chunk.value().to_vec()));
            }
            let bytes = last.as_ref().map_or(&[][..], |(_, b)| b.as_slice());
            let from = (at - offset) as usize;
            let n = (bytes.len().saturating_sub(within)).min((end - at) as usize);
            if n == 0 {
                return Err(io(corrupt("a blob's chunk is short")));
            }
            buf[from..from + n].copy_from_slice(&bytes[within..within + n]);
            at += n as u64;
        }
        Ok(())
    }
}

/// A blob streamed in by a [`BlobWriter`], complete but not yet in a cell
/// (see [`Store::link_blob`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingBlob(pub(super) u128);

/// Streams a value into the store as chunk rows of a pending blob, a few
/// chunks per transaction (not synced: the write that sets the cell is).
/// Dropped unfinished, it deletes what it wrote.
pub struct BlobWriter {
    store: Store,
    blob: u128,
    /// Bytes not written yet.
    buf: Vec<u8>,
    /// Chunks written so far.
    chunks: u64,
    /// Bytes taken so far.
    size: u64,
    /// Set by `finish`: the blob is complete and waits to be linked.
    finished: bool,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl BlobWriter {
    /// A writer of a new pending blob.
    pub(super) fn new(store: Store) -> BlobWriter {
        BlobWriter {
            store,
            blob: Uuid::new_v4().as_u128(),
            buf: Vec::with_capacity(WRITE_BATCH),
            chunks: 0,
            size: 0,
            finished: false,
        }
    }

    /// The blob this writes, to link once it is complete.
    pub fn pending(&self) -> PendingBlob {
        PendingBlob(self.blob)
    }

    /// Writes the whole chunks gathered or, with `all`, everything.
    fn flush(&mut self, all: bool) -> Result<(), DbError> {
        let n = if all {
            self.buf.len()
        } else {
            self.buf.len() / CHUNK * CHUNK
        };
        let bytes: Vec<u8> = self.buf.drain(..n).collect();
        let (blob, first) = (self.blob, self.chunks);
        self.chunks += bytes.len().div_ceil(CHUNK) as u64;
        let written = self.size - self.buf.len() as u64;
        self.store.write_job(false, move |txn, _| {
            txn.open_table(PENDING)
                .storage()?
                .insert(blob, written)
                .storage()?;
            write_chunks(txn, blob, first, &bytes)
        })
    }
}

impl rpc_core::ChunkSink for BlobWriter {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(chunk);
        self.size += chunk.len() as u64;
        if self.buf.len() >= WRITE_BATCH {
            self.flush(false)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.flush(true)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.finished = true;
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.finished && self.chunks > 0 {
            // Unfinished: delete what was written, without waiting.
            let blob = self.blob;
            self.store.forget_job(move |txn| discard(txn, blob));
        }
    }
}

/// Removes `blob` from the pending ones: it is linked to a cell in this transaction.
pub(super) fn adopt(txn: &WriteTransaction, blob: u128) -> Result<bool, DbError> {
    Ok(txn
        .open_table(PENDING)
        .storage()?
        .remove(blob)
        .storage()?
        .is_some())
}

/// Deletes a complete blob that will not be linked after all.
pub(super) fn discard(txn: &WriteTransaction, blob: u128) -> Result<(), DbError> {
    delete_chunks(txn, blob)?;
    txn.open_table(PENDING).storage()?.remove(blob).storage()?;
    Ok(())
}
