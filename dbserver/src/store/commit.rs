//! Group commit: every write of a [`super::Store`] is a job for one committer
//! thread, which runs all jobs queued at the time in one redb write
//! transaction, commits it with a single fsync and only then answers each
//! job. While one batch is being synced the next one queues up, so many
//! concurrent writers share each fsync instead of taking turns at it.
//!
//! A job validates everything before it writes anything (see the store's
//! operations), so a job that fails leaves nothing in the shared transaction
//! and its neighbours commit as usual. A storage failure (redb refusing a
//! write, or the commit itself) aborts the whole batch: every job of it is
//! answered with that failure, and none of them changed anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use redb::{Database, Durability, WriteTransaction};

use crate::error::DbError;

/// Most jobs that share one transaction: bounds the time a job waits behind
/// others and the size of one commit.
const MAX_BATCH: usize = 256;

/// What a job leaves to do once its batch's fate is known: called with the
/// commit's outcome, on the committer thread, in commit order.
pub(super) type Done = Box<dyn FnOnce(Result<(), DbError>) + Send>;

/// What a job's body returns: its answer (to send once the commit is known)
/// and whether its failure poisons the transaction.
pub(super) struct Ran {
    /// Called with the commit's outcome.
    pub(super) done: Done,
    /// The job failed with a storage error after it may have written:
    /// the whole batch must be abandoned.
    pub(super) poisoned: bool,
}

/// One write: its body and whether it must be on disk before it is answered.
pub(super) struct Job {
    /// Runs inside the batch's transaction, or is told why there is none.
    pub(super) run: Box<dyn FnOnce(Result<&WriteTransaction, DbError>) -> Ran + Send>,
    /// False for writes whose durability a later durable write of the same
    /// writer provides (chunks of a large value, say): a batch of only such
    /// writes is committed without an fsync.
    pub(super) durable: bool,
}

/// The committer thread and the queue to it. Dropping it ends the thread
/// once the queue is drained and waits for it, so the database is closed
/// when the last store handle is gone.
pub(super) struct Committer {
    queue: Option<mpsc::Sender<Job>>,
    /// Transactions committed so far (each one fsync when durable).
    commits: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").finish_non_exhaustive()
    }
}

impl Committer {
    /// Starts the committer thread over `db`.
    pub(super) fn start(db: Arc<Database>) -> Result<Committer, DbError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&commits);
        let thread = std::thread::Builder::new()
            .name("dbserver-commit".into())
            .spawn(move || run(&db, &rx, &counted))
            .map_err(|e| DbError::Storage {
                reason: format!("cannot start the committer thread: {e}"),
            })?;
        Ok(Committer {
            queue: Some(tx),
            commits,
            thread: Some(thread),
        })
    }

    /// Transactions committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queues `job`.
    pub(super) fn submit(&self, job: Job) -> Result<(), DbError> {
        self.queue
            .as_ref()
            .and_then(|q| q.send(job).ok())
            .ok_or_else(|| DbError::Storage {
                reason: "the store is closed".into(),
            })
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The committer loop: one batch per turn until every sender is gone.
fn run(db: &Database, rx: &mpsc::Receiver<Job>, commits: &AtomicU64) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if commit_batch(db, batch) {
            commits.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs `batch` in one transaction, commits it, answers every job; true if
/// it committed.
fn commit_batch(db: &Database, batch: Vec<Job>) -> bool {
    let mut txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            let e = storage(e);
            for job in batch {
                ((job.run)(Err(e.clone())).done)(Err(e.clone()));
            }
            return false;
        }
    };
    let durable = batch.iter().any(|j| j.durable);
    // Immediate is what makes an answer mean "on disk"; it is set, not left to
    // a default that could change.
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    });
    let mut dones = Vec::with_capacity(batch.len());
    let mut poisoned = false;
    for job in batch {
        let ran = (job.run)(Ok(&txn));
        poisoned |= ran.poisoned;
        dones.push(ran.done);
    }
    let outcome = if poisoned {
        // Dropping an uncommitted transaction aborts it.
        drop(txn);
        Err(DbError::Storage {
            reason: "a write of the same batch failed in storage; nothing was written".into(),
        })
    } else {
        txn.commit().map_err(storage)
    };
    let committed = outcome.is_ok();
    for done in dones {
        done(outcome.clone());
    }
    committed
}

fn storage(e: impl Into<redb::Error>) -> DbError {
    DbError::Storage {
        reason: e.into().to_string(),
    }
}
