//! One connection between two nodes, over any byte stream, carrying calls in
//! both directions.
//!
//! Writes: a caller appends its frame and, if nobody is writing, writes it itself
//! without waiting (the stream seam's `try_write`), together with whatever other
//! callers queued meanwhile. Nothing awaits while holding the write slot, so a
//! dropped call future can never leave half a frame on the wire. Only when the
//! stream would block (or holds bytes it must flush) does the connection's
//! writer task take over and wait for it.
//!
//! Reads: one reader task decodes frames; responses complete the waiting
//! caller's oneshot, requests go to the [`Handler`] (which runs each on its own task).

use crate::budget::Grant;
use crate::error::RpcError;
use crate::ids::{CallId, Capability, IdMap, Identity, NodeId, TransferId};
use crate::transfer::Transfers;
use crate::transport::stream::{ReadHalf, WriteHalf};
use crate::wire::{
    ArgList, Hello, IpcHeader, Message, MessageKind, Request, RequestHeader, Response, ResponseBody,
};
use bytes::Bytes;
use parking_lot::Mutex;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;

/// What a connection hands incoming requests and its end to.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Runs `req` (on a task of its own) and answers through `conn`.
    fn on_request(self: Arc<Self>, conn: &Arc<Connection>, req: Request);
    /// A transfer message (chunk request, chunk, refusal, end) from the peer.
    fn on_transfer(&self, conn: &Arc<Connection>, msg: Message);
    /// A chunk of transfer `id` from the peer: `data` at `offset`, with the
    /// sender's CRC-32. The reader hands large chunks here directly, their
    /// bytes a slice of its buffer.
    fn on_chunk(&self, conn: &Arc<Connection>, id: TransferId, offset: u64, data: Bytes, crc: u32);
    /// A lease message (dirty or clean) from the peer.
    fn on_lease(&self, conn: &Arc<Connection>, msg: Message);
    /// The connection is closed; `reason` says why.
    fn on_closed(&self, conn: &Arc<Connection>, reason: &RpcError);
}

/// Bytes a node's connections wrote and read, summed over all of them (the
/// handshake excepted): what [`crate::NodeStats`] reports, and what tests
/// count to prove that a value crossed the wire only once.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    /// Bytes written to sockets.
    pub(crate) sent: AtomicU64,
    /// Bytes read from sockets.
    pub(crate) received: AtomicU64,
}

/// Result of a call as the caller sees it.
pub(crate) type CallResult = Result<ResponseBody, RpcError>;

/// A live connection to one peer node.
pub(crate) struct Connection {
    /// The peer's node id, from its handshake.
    pub(crate) peer: NodeId,
    /// Who the peer is: its node id and, over TLS, its certificate's name.
    pub(crate) identity: Arc<Identity>,
    /// The peer's listening address, if it listens.
    pub(crate) peer_listen: Option<String>,
    /// Our node id, written into every IPC header.
    local: NodeId,
    /// Largest frame body we accept.
    max_frame: usize,
    /// Largest frame body we send: the smaller of both sides' limits.
    max_send: usize,
    /// Bytes that may wait for a peer that does not read before the reader
    /// stops taking its requests.
    max_queued: usize,
    writer: Writer,
    next_call: AtomicU64,
    /// Our calls waiting for a response; the reader task completes them and
    /// fails them all when the connection closes.
    pending: Mutex<IdMap<CallId, oneshot::Sender<CallResult>>>,
    /// Requests of the peer running here, so that a cancel can abort them. The
    /// entry is reserved (None) before the task is spawned, so the count limit
    /// and the task's own removal at its end cannot race.
    inflight: Mutex<IdMap<CallId, Option<AbortHandle>>>,
    /// The accepting node's connection slot (per address and in total),
    /// given back on close.
    permit: Mutex<Option<Grant<IpAddr>>>,
    /// Start of the connection: the zero of `last_rx_ms` (tokio's clock, so
    /// that keepalive runs on a paused clock in tests).
    born: tokio::time::Instant,
    /// When the reader last got bytes, in ms since `born`; read by keepalive.
    last_rx_ms: AtomicU64,
    /// Cancelled by `close`: stops the reader, which then reports the close.
    stop: tokio_util::sync::CancellationToken,
    /// Why the connection closed, once it has.
    closed: Mutex<Option<RpcError>>,
    /// Writer and keepalive tasks, aborted on close.
    tasks: Mutex<Vec<AbortHandle>>,
    /// The node's byte counters, shared by all its connections.
    traffic: Arc<Traffic>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("peer_listen", &self.peer_listen)
            .finish_non_exhaustive()
    }
}

fn io_reason(e: &io::Error) -> String {
    e.to_string()
}

mod read;
mod write;

use write::{WriteState, Writer};

impl Connection {
    /// Wraps the halves of a handshaken stream and spawns its reader and
    /// writer tasks. `register` runs before the reader starts, so that the
    /// node knows the connection before any request on it runs (a request
    /// carrying a blob is pulled over it at once); when it refuses, the peer
    /// is sent a `Close` saying why and nothing of it runs. `permit` is the accepting
    /// node's connection slot, released when the connection closes.
    #[allow(clippy::too_many_arguments)] // one call site per side, all parts needed
    pub(crate) fn start(
        (rd, wr): (ReadHalf, Box<dyn WriteHalf>),
        local: NodeId,
        peer: &Hello,
        identity: Identity,
        config: &crate::config::Config,
        handler: Arc<dyn Handler>,
        traffic: Arc<Traffic>,
        permit: Option<Grant<IpAddr>>,
        register: impl FnOnce(&Arc<Connection>) -> Result<(), RpcError>,
    ) -> Result<Arc<Connection>, RpcError> {
        let max_frame = config.max_frame_len;
        let conn = Arc::new(Connection {
            peer: peer.node,
            identity: Arc::new(identity),
            peer_listen: peer.listen.clone(),
            local,
            max_frame,
            max_send: max_frame.min(usize::try_from(peer.max_frame).unwrap_or(usize::MAX)),
            max_queued: config.max_queued_bytes,
            writer: Writer {
                sock: wr,
                state: Mutex::new(WriteState::default()),
                wake: Notify::new(),
                drained: Notify::new(),
                failure: std::sync::OnceLock::new(),
                failed: Notify::new(),
            },
            next_call: AtomicU64::new(1),
            pending: Mutex::new(IdMap::default()),
            inflight: Mutex::new(IdMap::default()),
            closed: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            permit: Mutex::new(permit),
            born: tokio::time::Instant::now(),
            last_rx_ms: AtomicU64::new(0),
            stop: tokio_util::sync::CancellationToken::new(),
            traffic,
        });
        if let Err(e) = register(&conn) {
            // Refused before its reader ran: no request of it was seen.
            conn.fail(&e);
            return Err(e);
        }
        // The reader is not aborted on close: it stops through `stop` and then
        // reports the close to the handler, whoever closed the connection.
        tokio::spawn(Arc::clone(&conn).run_reader(rd, handler));
        let writer = tokio::spawn(Arc::clone(&conn).run_writer());
        let keepalive = tokio::spawn(
            Arc::clone(&conn).run_keepalive(config.keepalive_interval, config.keepalive_timeout),
        );
        conn.tasks
            .lock()
            .extend([writer.abort_handle(), keepalive.abort_handle()]);
        Ok(conn)
    }

    /// Milliseconds since the connection started, the clock of `last_rx_ms`.
    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    /// Keepalive task: pings an idle peer and closes the connection when
    /// nothing at all has come from it for `timeout`.
    async fn run_keepalive(self: Arc<Self>, interval: Duration, timeout: Duration) {
        let tick = interval.min(timeout).max(Duration::from_millis(1));
        let mut seq = 0u64;
        loop {
            tokio::time::sleep(tick).await;
            let idle = Duration::from_millis(
                self.now_ms()
                    .saturating_sub(self.last_rx_ms.load(Ordering::Relaxed)),
            );
            if idle >= timeout {
                self.close(&RpcError::ConnectionLost {
                    peer: self.peer_name(),
                    reason: format!(
                        "no frame from the peer for {} ms (keepalive timeout)",
                        idle.as_millis()
                    ),
                });
                return;
            }
            if idle >= interval {
                seq += 1;
                let _ = self.send(&Message::Ping(seq));
            }
        }
    }

    /// Largest frame body sent on this connection (both sides' limits).
    pub(crate) fn max_send(&self) -> usize {
        self.max_send
    }

    /// Bytes that may wait for the peer before it is served no more.
    pub(crate) fn max_queued(&self) -> usize {
        self.max_queued
    }

    /// Completes once the connection is closed, with why.
    ///
    /// # Cancel safety
    /// Cancel safe: it only waits.
    pub(crate) async fn closed(&self) -> RpcError {
        self.stop.cancelled().await;
        self.closed_error(true)
    }

    /// True once the connection is closed.
    pub(crate) fn is_closed(&self) -> bool {
        // A connection whose writes failed takes no calls while its reader
        // reads the peer's last words.
        self.writer.failure.get().is_some() || self.closed.lock().is_some()
    }

    /// Number of our calls waiting for an answer on this connection.
    pub(crate) fn pending_calls(&self) -> usize {
        self.pending.lock().len()
    }

    /// Number of the peer's requests running here.
    pub(crate) fn inflight_requests(&self) -> usize {
        self.inflight.lock().len()
    }

    fn peer_name(&self) -> String {
        match &self.peer_listen {
            Some(a) => a.clone(),
            None => format!("{:?}", self.peer),
        }
    }

    fn ipc(&self, kind: MessageKind, call_id: CallId) -> IpcHeader {
        IpcHeader {
            kind,
            call_id,
            sender: self.local,
            receiver: self.peer,
        }
    }

    /// Sends a response to the peer's call `call_id`.
    pub(crate) fn respond(&self, call_id: CallId, body: ResponseBody) {
        let resp = Response::new(self.ipc(MessageKind::Response, call_id), body);
        match self.send(&Message::Response(resp)) {
            Ok(()) => {}
            Err(e @ RpcError::Encode { .. }) => {
                // The result could not be framed (too large, say): tell the caller why.
                let resp = Response::new(
                    self.ipc(MessageKind::Response, call_id),
                    ResponseBody::System(e),
                );
                let _ = self.send(&Message::Response(resp));
            }
            Err(_) => {} // connection gone: nobody to answer
        }
    }

    /// Reserves a slot for the peer's call `call_id`.
    ///
    /// # Errors
    /// [`RpcError::Protocol`] when a call of that id is still running (the
    /// peer reused it), [`RpcError::Overloaded`] when `max` calls run already.
    pub(crate) fn reserve_inflight(&self, call_id: CallId, max: usize) -> Result<(), RpcError> {
        let mut m = self.inflight.lock();
        if m.contains_key(&call_id) {
            return Err(RpcError::protocol(format!(
                "call id {call_id} reused while that call is still running"
            )));
        }
        if m.len() >= max {
            return Err(RpcError::Overloaded {
                reason: format!("more than {max} calls running for this connection"),
            });
        }
        m.insert(call_id, None);
        Ok(())
    }

    /// Attaches the task running `call_id`, unless it has already finished.
    pub(crate) fn set_inflight_handle(&self, call_id: CallId, handle: AbortHandle) {
        if let Some(slot) = self.inflight.lock().get_mut(&call_id) {
            *slot = Some(handle);
        }
    }

    /// Forgets a finished call of the peer.
    pub(crate) fn untrack_inflight(&self, call_id: CallId) {
        self.inflight.lock().remove(&call_id);
    }

    /// Calls `method` on `target` over this connection and waits up to `timeout`.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes sends a cancel for the call.
    pub(crate) async fn call(
        self: &Arc<Self>,
        target: Capability,
        args: ArgList,
        timeout: Duration,
    ) -> CallResult {
        let wait = Wait {
            timeout,
            explicit: false,
            transfers: None,
        };
        self.call_or_return(target, args, wait, None, tokio::time::Instant::now())
            .await
            .map_err(|(e, _)| e)
    }

    /// [`Connection::call`], but a request that was never written (the
    /// connection was closed already) gives its arguments back with the
    /// error, to be sent again elsewhere. The deadline counts from `start`
    /// (a time the caller read anyway: each clock read shows in a null
    /// call's profile).
    ///
    /// # Cancel safety
    /// As [`Connection::call`].
    pub(crate) async fn call_or_return(
        self: &Arc<Self>,
        target: Capability,
        args: ArgList,
        wait: Wait<'_>,
        trace: Option<crate::wire::TraceContext>,
        start: tokio::time::Instant,
    ) -> Result<ResponseBody, (RpcError, Option<ArgList>)> {
        let timeout = wait.timeout;
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let mut guard = CancelOnDrop {
            conn: self,
            id,
            armed: true,
        };
        let req = Message::Request(Request {
            ipc: self.ipc(MessageKind::Request, id),
            rpc: RequestHeader {
                target,
                method_id: 0,
                deadline_ms: Some(timeout.as_millis().min(u64::MAX as u128) as u64),
                deadline_explicit: wait.explicit,
                trace,
            },
            args,
        });
        if let Err(e) = self.send(&req) {
            guard.armed = false;
            self.pending.lock().remove(&id);
            let back = match req {
                Message::Request(r) if matches!(e, RpcError::Unreachable { .. }) => Some(r.args),
                _ => None,
            };
            return Err((e, back));
        }
        // Kept to name the method if the deadline passes, and to be sent
        // again if the peer closes saying it never read the request.
        let Message::Request(Request { args, .. }) = req else {
            return Err((
                RpcError::protocol("a request turned into another message"),
                None,
            ));
        };
        let res = match wait.wait_for(self.peer, start, rx).await {
            Ok(Ok(res)) => {
                guard.armed = false;
                res
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(self.closed_error(true))
            }
            Err(_) => Err(RpcError::DeadlineExceeded {
                method: args.method.clone(),
                after_ms: timeout.as_millis() as u64,
            }),
        };
        res.map_err(|e| match e {
            e @ RpcError::Unreachable { .. } => (e, Some(args)),
            e => (e, None),
        })
    }

    fn closed_error(&self, sent: bool) -> RpcError {
        let reason = match &*self.closed.lock() {
            Some(
                RpcError::ConnectionLost { reason, .. } | RpcError::Unreachable { reason, .. },
            ) => reason.clone(),
            Some(e) => e.to_string(),
            None => "connection closed".into(),
        };
        if sent {
            RpcError::ConnectionLost {
                peer: self.peer_name(),
                reason,
            }
        } else {
            RpcError::Unreachable {
                peer: self.peer_name(),
                reason,
            }
        }
    }

    /// Closes the connection: fails pending calls, aborts the peer's running
    /// requests and the I/O tasks. Idempotent.
    pub(crate) fn close(&self, reason: &RpcError) {
        {
            let mut c = self.closed.lock();
            if c.is_some() {
                return;
            }
            *c = Some(reason.clone());
        }
        self.writer.state.lock().closed = true;
        self.writer.wake.notify_one();
        let pending: Vec<_> = self.pending.lock().drain().collect();
        let lost = match reason {
            // The peer said it read no more requests: pending calls were
            // never run and may be sent again.
            RpcError::ConnectionLost { .. } | RpcError::Unreachable { .. } => reason.clone(),
            other => RpcError::ConnectionLost {
                peer: self.peer_name(),
                reason: other.to_string(),
            },
        };
        for (_, tx) in pending {
            let _ = tx.send(Err(lost.clone()));
        }
        let running: Vec<_> = self.inflight.lock().drain().collect();
        for h in running.into_iter().filter_map(|(_, h)| h) {
            h.abort();
        }
        self.permit.lock().take();
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        self.stop.cancel();
    }
}

/// How long a caller waits for its answer.
pub(crate) struct Wait<'a> {
    /// The call's deadline, from now.
    pub(crate) timeout: Duration,
    /// The caller set the deadline (not the node's default): it bounds
    /// pulling the call's large values too.
    pub(crate) explicit: bool,
    /// The caller's transfers, asked whether the peer still pulls from it
    /// when a default deadline passes.
    pub(crate) transfers: Option<&'a Transfers>,
}

impl Wait<'_> {
    /// Runs `fut` until the deadline, `timeout` from `start`; a default
    /// deadline is pushed back while the call's large values move between
    /// this node and `peer`.
    pub(crate) async fn wait_for<F: std::future::Future>(
        &self,
        peer: NodeId,
        start: tokio::time::Instant,
        fut: F,
    ) -> Result<F::Output, tokio::time::error::Elapsed> {
        let mut until = start + self.timeout;
        let mut fut = std::pin::pin!(fut);
        loop {
            let r = tokio::time::timeout_at(until, fut.as_mut()).await;
            let later = match (&r, self.explicit, self.transfers) {
                (Err(_), false, Some(t)) => t.patience(peer, self.timeout),
                _ => None,
            };
            match later {
                Some(t) => until = t,
                None => return r,
            }
        }
    }
}

/// Sends a cancel for a call whose future is dropped before its answer.
struct CancelOnDrop<'a> {
    conn: &'a Arc<Connection>,
    id: CallId,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.conn.pending.lock().remove(&self.id);
            let _ = self.conn.send(&Message::Cancel(
                self.conn.ipc(MessageKind::Cancel, self.id),
            ));
        }
    }
}
