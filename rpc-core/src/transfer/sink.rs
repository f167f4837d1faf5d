//! Where a pull puts the bytes: memory, or a [`ChunkSink`] (a file, or
//! anything else that takes bytes in order) fed by a writer thread and told
//! nothing more when the pull fails; a file is then removed. And what a blob
//! can be served from besides memory: a [`ReadAt`].

use super::failed;
use crate::error::RpcError;
use std::io::Write as _;
use std::path::PathBuf;
use tokio::sync::mpsc;

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

/// A file as a [`ChunkSink`]: synced at the end.
struct FileWriter(std::fs::File);

impl ChunkSink for FileWriter {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.0.write_all(chunk)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.0.sync_all()
    }
}

/// Where a pull puts the bytes.
pub(crate) enum Sink {
    /// Into memory.
    Memory(Vec<u8>),
    /// Into a [`ChunkSink`], by a writer thread.
    Writer(WriterSink),
}

/// What the writer thread is sent.
enum Step {
    /// The next bytes.
    Chunk(Vec<u8>),
    /// The value is complete: finish the sink.
    Done,
}

/// A [`ChunkSink`] fed in order by one blocking thread through a bounded
/// channel (a few chunks of write-behind). A file sink removes its file
/// unless the value was completed.
pub(crate) struct WriterSink {
    /// Steps for the writer thread; dropped to end it.
    tx: Option<mpsc::Sender<Step>>,
    /// The writer thread: its result says whether every byte was taken and,
    /// once `Done` was sent, finished.
    writer: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The file written, if it is one: named in errors, removed unless kept.
    path: Option<PathBuf>,
    /// Set once the value is complete.
    kept: bool,
}

impl WriterSink {
    /// Creates (truncates) the file at `path` and starts its writer.
    pub(crate) fn file(path: PathBuf, depth: usize) -> std::io::Result<WriterSink> {
        let file = std::fs::File::create(&path)?;
        let mut sink = WriterSink::new(Box::new(FileWriter(file)), depth);
        sink.path = Some(path);
        Ok(sink)
    }

    /// Starts a writer thread for `sink`.
    pub(crate) fn new(mut sink: Box<dyn ChunkSink>, depth: usize) -> WriterSink {
        let (tx, mut rx) = mpsc::channel::<Step>(depth.max(1));
        let writer = tokio::task::spawn_blocking(move || {
            while let Some(step) = rx.blocking_recv() {
                match step {
                    Step::Chunk(c) => sink.write(&c)?,
                    Step::Done => return sink.finish(),
                }
            }
            // Abandoned: the sink is dropped unfinished.
            Ok(())
        });
        WriterSink {
            tx: Some(tx),
            writer: Some(writer),
            path: None,
            kept: false,
        }
    }

    fn what(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "the receiving sink".to_owned(),
        }
    }

    pub(crate) async fn write(&mut self, data: Vec<u8>) -> Result<(), RpcError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(Step::Chunk(data)).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer stopped: its result says why.
        Err(self
            .join()
            .await
            .err()
            .unwrap_or_else(|| failed("the writer stopped")))
    }

    /// The value is complete: waits until the sink took and finished it.
    pub(crate) async fn finish(&mut self) -> Result<(), RpcError> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Step::Done).await;
        }
        self.join().await?;
        self.kept = true;
        Ok(())
    }

    /// The pull failed: ends the writer without finishing the sink and
    /// removes a file.
    pub(crate) async fn abort(&mut self) {
        drop(self.tx.take());
        let _ = self.join().await;
        if let Some(p) = &self.path {
            let _ = tokio::fs::remove_file(p).await;
        }
    }

    async fn join(&mut self) -> Result<(), RpcError> {
        drop(self.tx.take());
        let Some(w) = self.writer.take() else {
            return Ok(());
        };
        match w.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(failed(format!("could not write {}: {e}", self.what()))),
            Err(e) => Err(failed(format!("the writer failed: {e}"))),
        }
    }
}

impl Drop for WriterSink {
    fn drop(&mut self) {
        if !self.kept
            && let Some(p) = &self.path
        {
            // The writer thread may still hold the file: unlinking it now
            // frees its blocks as soon as the thread lets go.
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Sink {
    pub(crate) async fn write(&mut self, data: Vec<u8>) -> Result<(), RpcError> {
        match self {
            Sink::Memory(v) => {
                v.extend_from_slice(&data);
                Ok(())
            }
            Sink::Writer(f) => f.write(data).await,
        }
    }
}
