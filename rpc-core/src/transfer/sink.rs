//! Where a pull puts the bytes: memory, or a file written in order by a
//! writer thread and removed if the pull fails.

use super::failed;
use crate::error::RpcError;
use std::io::Write as _;
use std::path::PathBuf;
use tokio::sync::mpsc;

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
    pub(crate) path: PathBuf,
    /// Set once the file is complete: otherwise dropping the sink (a pull
    /// that failed or was abandoned) removes the partial file.
    kept: bool,
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
            kept: false,
        })
    }

    /// The file is complete: keep it when the sink is dropped.
    pub(crate) fn keep(&mut self) {
        self.kept = true;
    }

    pub(crate) async fn write(&mut self, data: Vec<u8>) -> Result<(), RpcError> {
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
    pub(crate) async fn finish(&mut self) -> Result<(), RpcError> {
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

impl Drop for FileSink {
    fn drop(&mut self) {
        if !self.kept {
            // The writer thread may still hold the file: unlinking it now
            // frees its blocks as soon as the thread lets go.
            let _ = std::fs::remove_file(&self.path);
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
            Sink::File(f) => f.write(data).await,
        }
    }
}
