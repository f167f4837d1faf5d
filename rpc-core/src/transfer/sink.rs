//! Where a pull puts the bytes: a [`ChunkSink`] (memory, a file, or
//! anything else that takes bytes in order) fed on the blocking pool and told
//! nothing more when the pull fails; a file is then removed. And what a blob
//! can be served from besides memory: a [`ReadAt`].

use super::failed;
use super::serial::{Job, Ran, Serial};
use crate::error::RpcError;
use std::io::Write as _;
use std::path::PathBuf;

/// Takes a blob's bytes in order, on a blocking thread (see
/// [`crate::Blob::save_into`]): a file, a database's chunk table, a hasher.
pub trait ChunkSink: Send + 'static {
    /// Takes the next bytes.
    ///
    /// # Errors
    /// Whatever stops the sink; the pull then fails with it.
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()>;
    /// Every byte was written and checked: make them durable. Not called
    /// when the pull fails; the sink is dropped instead.
    ///
    /// # Errors
    /// Whatever keeps the bytes from being kept; the pull then fails with it.
    fn finish(&mut self) -> std::io::Result<()>;
}

/// Bytes a blob can be sent from by offset, chunk by chunk as the receiver
/// asks (see [`crate::Blob::from_reader`]): a file, or a database's chunk
/// table. Called on a blocking thread.
pub trait ReadAt: Send + Sync + 'static {
    /// Fills `buf` with the bytes at `offset`.
    ///
    /// # Errors
    /// When they cannot be read; the transfer then fails with it.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// A boxed sink, as [`crate::Blob::save_into`] and files are kept.
impl<T: ChunkSink + ?Sized> ChunkSink for Box<T> {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        (**self).write(chunk)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        (**self).finish()
    }
}

/// Memory as a [`ChunkSink`]: the bytes appended in order.
impl ChunkSink for Vec<u8> {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(chunk);
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Bytes a [`FileWriter`] writes before it starts their write-out to disk.
/// Left to the final sync, the write-out of a large file came after its
/// transfer instead of during it: the last 0.3-0.5 s of a 1 GiB file
/// transfer here was the sync. Started every 16 MiB, the disk works while
/// the bytes arrive.
pub(crate) const WRITEBACK_STEP: u64 = 16 << 20;

/// A file as a [`ChunkSink`]: written out to disk as it grows, synced at
/// the end. Every value rpc-core writes to a file goes through one.
pub(crate) struct FileWriter {
    file: std::fs::File,
    /// Bytes written.
    written: u64,
    /// Bytes whose write-out was started.
    started: u64,
}

impl FileWriter {
    /// Creates (truncates) the file at `path`.
    pub(crate) fn create(path: &std::path::Path) -> std::io::Result<FileWriter> {
        Ok(FileWriter {
            file: std::fs::File::create(path)?,
            written: 0,
            started: 0,
        })
    }
}

impl ChunkSink for FileWriter {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk)?;
        self.written += chunk.len() as u64;
        if let Some(len) = std::num::NonZeroU64::new(self.written - self.started)
            && len.get() >= WRITEBACK_STEP
        {
            // POSIX_FADV_DONTNEED starts the write-out of the range's dirty
            // pages without waiting for it (Linux), and drops only clean
            // pages: these, dirty or under write-out now, stay cached
            // (first in line for reclaim). It is the safe call that does
            // this (`sync_file_range` has no safe binding in rustix or
            // nix). A hint: if it fails, the final sync does the work and
            // reports real failures.
            let _ = rustix::fs::fadvise(
                &self.file,
                self.started,
                Some(len),
                rustix::fs::Advice::DontNeed,
            );
            self.started = self.written;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

/// What the writer is given.
enum Step {
    /// The next bytes.
    Chunk(bytes::Bytes),
    /// The value is complete: finish the sink.
    Done,
}

/// A sink as the job of a [`Serial`] queue.
struct Feed<S>(S);

impl<S: ChunkSink> Job<Step> for Feed<S> {
    fn run(&mut self, step: Step) -> std::io::Result<Ran<Step>> {
        match step {
            Step::Chunk(c) => self.0.write(&c)?,
            Step::Done => self.0.finish()?,
        }
        Ok(Ran::Done)
    }
}

/// Where a pull puts the bytes: a [`ChunkSink`] fed in order on the
/// blocking pool, a few chunks of write-behind, holding a thread only while
/// chunks wait (see [`Serial`]). Memory sinks over [`INLINE_MEMORY`] go
/// through it too: copying a large value into fresh pages (first touches
/// cost about as much as the copy) would otherwise hold a runtime worker
/// for the whole transfer, and with it the small calls queued behind it.
/// A file sink removes its file unless the value was completed.
pub(crate) struct WriterSink<S: ChunkSink = Box<dyn ChunkSink>> {
    /// A sink small enough to be written in place, on the caller's task.
    inline: Option<S>,
    /// The sink's queue; gone once finished or aborted.
    queue: Option<Serial<Feed<S>, Step>>,
    /// The sink, once finished.
    done: Option<S>,
    /// The file written, if it is one: named in errors, removed unless kept.
    path: Option<PathBuf>,
    /// Set once the value is complete.
    kept: bool,
}

impl WriterSink {
    /// Creates (truncates) the file at `path` and starts its writer.
    pub(crate) fn file(path: PathBuf, depth: usize) -> std::io::Result<WriterSink> {
        let file = FileWriter::create(&path)?;
        let mut sink = WriterSink::new(Box::new(file) as Box<dyn ChunkSink>, depth);
        sink.path = Some(path);
        Ok(sink)
    }
}

/// Values up to this size are copied into memory in place: the whole copy,
/// first touches included, holds the reader well under a millisecond, not
/// worth a hop to the blocking pool for each chunk.
const INLINE_MEMORY: u64 = 1 << 20;

impl WriterSink<Vec<u8>> {
    /// A sink that collects `size` bytes in memory, allocated at once.
    pub(crate) fn memory(size: u64, depth: usize) -> Result<WriterSink<Vec<u8>>, RpcError> {
        let n = usize::try_from(size).map_err(|_| failed("value too large for memory"))?;
        let v = Vec::with_capacity(n);
        if size > INLINE_MEMORY {
            return Ok(WriterSink::new(v, depth));
        }
        Ok(WriterSink {
            inline: Some(v),
            queue: None,
            done: None,
            path: None,
            kept: false,
        })
    }
}

impl<S: ChunkSink> WriterSink<S> {
    /// A writer for `sink` with `depth` chunks of write-behind. Must be
    /// called within a tokio runtime.
    pub(crate) fn new(sink: S, depth: usize) -> WriterSink<S> {
        WriterSink {
            inline: None,
            queue: Some(Serial::new(Feed(sink), depth)),
            done: None,
            path: None,
            kept: false,
        }
    }

    /// The sink's error `e`, naming the file if it is one.
    fn write_error(&self, e: &std::io::Error) -> RpcError {
        let what = match &self.path {
            Some(p) => p.display().to_string(),
            None => "the receiving sink".to_owned(),
        };
        failed(format!("could not write {what}: {e}"))
    }

    /// Hands the next bytes to the writer, waiting while it is `depth`
    /// chunks behind.
    pub(crate) async fn write(&mut self, data: bytes::Bytes) -> Result<(), RpcError> {
        if let Some(s) = &mut self.inline {
            return s.write(&data).map_err(|e| self.write_error(&e));
        }
        self.put(Step::Chunk(data)).await
    }

    /// Queues `step`; the writer's error if it stopped.
    async fn put(&mut self, step: Step) -> Result<(), RpcError> {
        let Some(q) = &self.queue else {
            return Err(failed("the writer stopped"));
        };
        q.room().await;
        if q.push(step).is_ok() {
            return Ok(());
        }
        // Stopped: its error says why.
        let stopped = q.idle().await;
        Err(match stopped {
            Err(e) => self.write_error(&e),
            Ok(()) => failed("the writer stopped"),
        })
    }

    /// The value is complete: waits until the sink took and finished it.
    pub(crate) async fn finish(&mut self) -> Result<(), RpcError> {
        if let Some(mut s) = self.inline.take() {
            s.finish().map_err(|e| self.write_error(&e))?;
            self.done = Some(s);
            self.kept = true;
            return Ok(());
        }
        self.put(Step::Done).await?;
        let Some(q) = self.queue.take() else {
            return Err(failed("the writer stopped"));
        };
        if let Err(e) = q.idle().await {
            return Err(self.write_error(&e));
        }
        let Some(Feed(s)) = q.take_job() else {
            return Err(failed("the writer stopped before the end"));
        };
        self.done = Some(s);
        self.kept = true;
        Ok(())
    }

    /// The finished sink (after [`WriterSink::finish`]).
    pub(crate) fn into_inner(mut self) -> Option<S> {
        self.done.take()
    }

    /// The pull failed: ends the writer without finishing the sink and
    /// removes a file.
    pub(crate) async fn abort(&mut self) {
        self.inline = None;
        if let Some(q) = self.queue.take() {
            q.stop();
            let _ = q.idle().await;
            // Off the runtime: freeing a large value unmaps its pages.
            if let Some(job) = q.take_job() {
                drop(tokio::task::spawn_blocking(move || drop(job)));
            }
        }
        if let Some(p) = &self.path {
            let _ = tokio::fs::remove_file(p).await;
        }
    }
}

impl<S: ChunkSink> Drop for WriterSink<S> {
    fn drop(&mut self) {
        if !self.kept
            && let Some(p) = &self.path
        {
            // A writer may still hold the file: unlinking it now frees its
            // blocks as soon as the writer lets go.
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both kinds of memory sink: in place up to `INLINE_MEMORY`, on the
    /// blocking pool above it.
    #[tokio::test]
    async fn memory_sinks_collect_in_order_in_place_or_on_the_pool() {
        for size in [
            0u64,
            1000,
            INLINE_MEMORY,
            INLINE_MEMORY + 1,
            3 * INLINE_MEMORY,
        ] {
            let want: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let mut sink = WriterSink::memory(size, 2).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(sink.inline.is_some(), size <= INLINE_MEMORY);
            for c in want.chunks(64 << 10) {
                sink.write(bytes::Bytes::copy_from_slice(c))
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            sink.finish().await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(sink.into_inner().as_deref(), Some(&want[..]), "size {size}");

            let mut dropped = WriterSink::memory(size, 2).unwrap_or_else(|e| panic!("{e}"));
            dropped
                .write(vec![1; 10].into())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            dropped.abort().await;
            // Aborted, it cannot be completed any more, nor give anything back.
            assert!(dropped.finish().await.is_err(), "size {size}");
            assert!(dropped.into_inner().is_none());
        }
    }

    /// A file writer keeps every byte of uneven writes, and starts the
    /// write-out of each step it completes.
    #[test]
    fn a_file_writer_keeps_every_byte_and_writes_out_in_steps() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("f");
        let size = 3 * WRITEBACK_STEP as usize + 12_345;
        let want: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let mut w = FileWriter::create(&path).unwrap_or_else(|e| panic!("{e}"));
        for c in want.chunks(1_000_003) {
            w.write(c).unwrap_or_else(|e| panic!("{e}"));
            assert!(w.written - w.started < WRITEBACK_STEP);
        }
        w.finish().unwrap_or_else(|e| panic!("{e}"));
        assert!(w.started >= 2 * WRITEBACK_STEP, "started at {}", w.started);
        drop(w);
        let got = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(got == want, "the file differs");
    }
}
