//! Work on a transfer's bytes, done in order on the blocking pool by a job
//! that holds a thread only while items wait: a writer waiting for the
//! next chunk, or a chunk server waiting for the next request, holds none.
//!
//! Holding a thread per open transfer let peers that pull slowly, or never
//! send what they announced, take the whole blocking pool (512 threads by
//! default, against 1024 transfers) and stall every other transfer and file
//! operation of the process.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

/// What a waiting item waits for.
pub(crate) type Ready = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a [`Serial`] runs its items with, one at a time and in order.
/// (No bounds on the structs that hold one: a `Box<dyn ChunkSink>` job
/// would then have to prove itself `'static` inside async fns, which the
/// compiler cannot do with the lifetimes it erases there.)
pub(crate) trait Job<I> {
    /// Handles `item` on a blocking thread. An error stops the queue: the
    /// items after it are dropped and the error is kept for the owner.
    fn run(&mut self, item: I) -> std::io::Result<Ran<I>>;
}

/// How a [`Job::run`] went.
pub(crate) enum Ran<I> {
    /// Done; on to the next item.
    Done,
    /// Not now: `I` goes back to the front of the queue and the job gives
    /// its thread back until the future completes.
    Later(I, Ready),
}

/// Why [`Serial::push`] refused an item.
pub(crate) enum Refused<I> {
    /// The queue holds its limit of items already.
    Full(I),
    /// The job failed or was stopped; no more items are taken.
    Stopped(I),
}

struct State<J, I> {
    queue: VecDeque<I>,
    /// The job, while no thread runs it (and until it is taken back).
    job: Option<J>,
    /// A thread is running the queue.
    running: bool,
    /// Waiting for a [`Ran::Later`] future; pushes do not start a thread.
    parked: bool,
    /// No more items: the job failed, or its owner stopped it.
    stopped: bool,
    /// The error that stopped the job.
    failure: Option<std::io::Error>,
}

struct Shared<J, I> {
    state: Mutex<State<J, I>>,
    /// Told whenever the queue shrinks or the thread stops.
    changed: Notify,
    /// The runtime the jobs and park futures run on (pushes also come from
    /// blocking threads).
    rt: tokio::runtime::Handle,
    /// Most items queued at once.
    cap: usize,
}

/// A queue of items for one [`Job`], run in order on the blocking pool by
/// one thread at a time, started when an item arrives and given back when
/// the queue is empty. Dropping it stops the job after its current item.
pub(crate) struct Serial<J, I> {
    shared: Arc<Shared<J, I>>,
}

impl<J: Job<I> + Send + 'static, I: Send + 'static> Serial<J, I> {
    /// A queue of at most `cap` items for `job`. Must be called within a
    /// tokio runtime.
    pub(crate) fn new(job: J, cap: usize) -> Serial<J, I> {
        Serial {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    job: Some(job),
                    running: false,
                    parked: false,
                    stopped: false,
                    failure: None,
                }),
                changed: Notify::new(),
                rt: tokio::runtime::Handle::current(),
                cap: cap.max(1),
            }),
        }
    }

    /// Queues `item`, starting a thread for the queue if none runs it.
    pub(crate) fn push(&self, item: I) -> Result<(), Refused<I>> {
        let mut st = self.shared.state.lock();
        if st.stopped {
            return Err(Refused::Stopped(item));
        }
        if st.queue.len() >= self.shared.cap {
            return Err(Refused::Full(item));
        }
        st.queue.push_back(item);
        Shared::start(&self.shared, &mut st);
        Ok(())
    }

    /// Waits until the queue has room for an item, or the job stopped.
    pub(crate) async fn room(&self) {
        self.shared
            .wait_until(|st, cap| st.stopped || st.queue.len() < cap)
            .await;
    }

    /// Waits until every queued item was run (or dropped) and no thread
    /// holds the job; then the error that stopped it, if any.
    pub(crate) async fn idle(&self) -> Result<(), std::io::Error> {
        self.shared
            .wait_until(|st, _| !st.running && (st.stopped || st.queue.is_empty()))
            .await;
        match self.shared.state.lock().failure.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Takes the job back once [`Serial::idle`]; `None` while a thread
    /// still runs it, or when it was taken already.
    pub(crate) fn take_job(&self) -> Option<J> {
        let mut st = self.shared.state.lock();
        if st.running {
            return None;
        }
        st.stopped = true;
        st.job.take()
    }

    /// Drops what is queued and takes no more items; a running item ends
    /// first.
    pub(crate) fn stop(&self) {
        self.shared.stop();
    }
}

impl<J, I> Drop for Serial<J, I> {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

impl<J, I> Shared<J, I> {
    fn stop(&self) {
        let mut st = self.state.lock();
        st.stopped = true;
        st.queue.clear();
        drop(st);
        self.changed.notify_waiters();
    }

    /// Waits until `done` holds of the state (and the queue's limit).
    async fn wait_until(&self, done: impl Fn(&State<J, I>, usize) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.state.lock(), self.cap) {
                return;
            }
            changed.await;
        }
    }
}

impl<J: Job<I> + Send + 'static, I: Send + 'static> Shared<J, I> {
    /// Starts a thread for the queue unless one runs it, it waits, or it
    /// is empty (called with the state locked).
    fn start(this: &Arc<Self>, st: &mut State<J, I>) {
        if st.running || st.parked || st.stopped || st.queue.is_empty() {
            return;
        }
        let Some(job) = st.job.take() else {
            return;
        };
        st.running = true;
        let shared = Arc::clone(this);
        // Not awaited: the thread reports through the state.
        drop(this.rt.spawn_blocking(move || shared.drain(job)));
    }

    /// The thread's body: runs items until the queue is empty, the job
    /// fails or is stopped, or an item has to wait; then gives the job
    /// back, under the same lock that saw why it ends (a push in between
    /// would otherwise find the queue running and start no thread).
    fn drain(self: Arc<Self>, mut job: J) {
        let (mut st, wait) = loop {
            let mut st = self.state.lock();
            let item = match st.queue.pop_front() {
                Some(item) if !st.stopped => item,
                _ => {
                    st.queue.clear();
                    break (st, None);
                }
            };
            drop(st);
            self.changed.notify_waiters();
            match job.run(item) {
                Ok(Ran::Done) => {}
                Ok(Ran::Later(item, ready)) => {
                    let mut st = self.state.lock();
                    st.queue.push_front(item);
                    break (st, Some(ready));
                }
                Err(e) => {
                    let mut st = self.state.lock();
                    st.failure = Some(e);
                    st.stopped = true;
                    st.queue.clear();
                    break (st, None);
                }
            }
        };
        st.job = Some(job);
        st.running = false;
        st.parked = wait.is_some();
        drop(st);
        if let Some(ready) = wait {
            let shared = Arc::clone(&self);
            drop(self.rt.spawn(async move {
                // A stopped queue needs no more waiting (and lets go of the
                // job, and what it holds, at once).
                tokio::select! {
                    () = ready => {}
                    () = shared.wait_until(|st, _| st.stopped) => {}
                }
                let mut st = shared.state.lock();
                st.parked = false;
                Shared::start(&shared, &mut st);
            }));
        }
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Appends what it is given to a shared vector; fails on item 0.
    struct Collect(Arc<Mutex<Vec<u32>>>);

    impl Job<u32> for Collect {
        fn run(&mut self, item: u32) -> std::io::Result<Ran<u32>> {
            if item == 0 {
                return Err(std::io::Error::other("zero"));
            }
            self.0.lock().push(item);
            Ok(Ran::Done)
        }
    }

    /// Many queues, each waiting for its next item, share a pool of one
    /// thread: none holds it while it waits. (A thread per queue would
    /// leave all but the first queue stuck behind it.)
    #[test]
    fn waiting_queues_hold_no_thread() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            let out: Vec<_> = (0..8).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
            let queues: Vec<_> = out
                .iter()
                .map(|o| Serial::new(Collect(Arc::clone(o)), 4))
                .collect();
            let all = async {
                for round in 1..=20u32 {
                    for q in &queues {
                        q.room().await;
                        assert!(q.push(round).is_ok());
                    }
                }
                for q in &queues {
                    q.idle().await.unwrap_or_else(|e| panic!("{e}"));
                    assert!(q.take_job().is_some());
                }
            };
            tokio::time::timeout(Duration::from_secs(20), all)
                .await
                .unwrap_or_else(|_| panic!("a waiting queue held the only thread"));
            for o in &out {
                assert_eq!(*o.lock(), (1..=20).collect::<Vec<_>>());
            }
        });
    }

    /// Runs each item once the test opens its gate; fails on item 0.
    struct Gated(std::sync::mpsc::Receiver<()>, Arc<Mutex<Vec<u32>>>);

    impl Job<u32> for Gated {
        fn run(&mut self, item: u32) -> std::io::Result<Ran<u32>> {
            let _ = self.0.recv();
            if item == 0 {
                return Err(std::io::Error::other("zero"));
            }
            self.1.lock().push(item);
            Ok(Ran::Done)
        }
    }

    /// Waits (bounded) until the running item left the queue.
    async fn taken<J, I>(q: &Serial<J, I>) {
        for _ in 0..2000 {
            if q.shared.state.lock().queue.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the job never took its item");
    }

    /// A full queue refuses items; a failed item stops the queue, drops
    /// what follows and is reported once; a stopped queue refuses items.
    #[tokio::test]
    async fn a_failure_stops_the_queue_and_is_reported() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let (gate, rx) = std::sync::mpsc::channel();
        let q = Serial::new(Gated(rx, Arc::clone(&out)), 2);
        assert!(q.push(1).is_ok());
        taken(&q).await;
        assert!(q.push(0).is_ok());
        assert!(q.push(2).is_ok());
        assert!(matches!(q.push(3), Err(Refused::Full(3))));
        for _ in 0..3 {
            gate.send(()).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(
            q.idle().await.map_err(|e| e.to_string()).err().as_deref(),
            Some("zero")
        );
        assert!(matches!(q.push(4), Err(Refused::Stopped(4))));
        assert_eq!(*out.lock(), vec![1]);
        assert!(q.idle().await.is_ok(), "reported once");
    }

    /// Waits once, on its first item, for the test to say go.
    struct Parks(
        Option<tokio::sync::oneshot::Receiver<()>>,
        Arc<Mutex<Vec<u32>>>,
    );

    impl Job<u32> for Parks {
        fn run(&mut self, item: u32) -> std::io::Result<Ran<u32>> {
            if let Some(rx) = self.0.take() {
                return Ok(Ran::Later(
                    item,
                    Box::pin(async move {
                        let _ = rx.await;
                    }),
                ));
            }
            self.1.lock().push(item);
            Ok(Ran::Done)
        }
    }

    /// An item that has to wait goes back to the front; nothing runs,
    /// pushes included, until its future completes; then all run in order.
    #[tokio::test]
    async fn a_waiting_item_holds_the_queue_until_ready() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let (go, rx) = tokio::sync::oneshot::channel();
        let q = Serial::new(Parks(Some(rx), Arc::clone(&out)), 8);
        assert!(q.push(1).is_ok());
        for _ in 0..2000 {
            if q.shared.state.lock().parked {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(q.shared.state.lock().parked, "the job never parked");
        assert!(q.push(2).is_ok());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(out.lock().is_empty());
        go.send(())
            .unwrap_or_else(|()| panic!("the job dropped its wait"));
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                q.idle().await.unwrap_or_else(|e| panic!("{e}"));
                if q.shared.state.lock().queue.is_empty() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the queue never ran again"));
        assert_eq!(*out.lock(), vec![1, 2]);
    }
}
