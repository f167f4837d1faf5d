//! One TCP connection between two nodes, carrying calls in both directions.
//!
//! Writes: a caller appends its frame and, if nobody is writing, writes it itself
//! with a non-blocking `try_write`, together with whatever other callers queued
//! meanwhile. Nothing awaits while holding the write slot, so a dropped call
//! future can never leave half a frame on the wire. Only when the socket would
//! block does the connection's writer task take over and wait for it.
//!
//! Reads: one reader task decodes frames; responses complete the waiting
//! caller's oneshot, requests go to the [`Handler`] (which runs each on its own task).

use crate::error::RpcError;
use crate::ids::{CallId, Capability, NodeId};
use crate::wire::{
    self, ArgList, FrameError, Hello, IpcHeader, Message, MessageKind, PROTOCOL_VERSION, Request,
    RequestHeader, Response, ResponseBody,
};
use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;

/// What a connection hands incoming requests and its end to.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The connection is ready; called before its reader starts, so that
    /// the node knows the connection before any request on it runs (a
    /// request carrying a blob is pulled over it at once).
    fn on_open(&self, conn: &Arc<Connection>);
    /// Runs `req` (on a task of its own) and answers through `conn`.
    fn on_request(self: Arc<Self>, conn: &Arc<Connection>, req: Request);
    /// A transfer message (chunk request, chunk, refusal, end) from the peer.
    fn on_transfer(&self, conn: &Arc<Connection>, msg: Message);
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

/// Send side state, guarded by [`Writer::state`].
#[derive(Default)]
struct WriteState {
    /// Frames queued while someone else owns the socket.
    queue: Vec<u8>,
    /// Bulk frames (transfer chunks), written only when `queue` is empty, so
    /// that small calls never wait behind them in this process.
    bulk: std::collections::VecDeque<Vec<u8>>,
    /// Someone (a caller or the writer task) is writing; others only queue.
    writing: bool,
    /// The connection is closed: refuse new frames.
    closed: bool,
}

struct Writer {
    sock: OwnedWriteHalf,
    /// Protects the queue and the write slot; held only for bookkeeping, never
    /// across a syscall or an await, so a parking_lot mutex is right.
    state: Mutex<WriteState>,
    /// Wakes the writer task when a caller hands it bytes the socket refused.
    wake: Notify,
}

/// A live connection to one peer node.
pub(crate) struct Connection {
    /// The peer's node id, from its handshake.
    pub(crate) peer: NodeId,
    /// The peer's listening address, if it listens.
    pub(crate) peer_listen: Option<String>,
    /// Our node id, written into every IPC header.
    local: NodeId,
    /// Largest frame body we accept.
    max_frame: usize,
    /// Largest frame body we send: the smaller of both sides' limits.
    max_send: usize,
    writer: Writer,
    next_call: AtomicU64,
    /// Our calls waiting for a response; the reader task completes them and
    /// fails them all when the connection closes.
    pending: Mutex<HashMap<CallId, oneshot::Sender<CallResult>>>,
    /// Requests of the peer running here, so that a cancel can abort them. The
    /// entry is reserved (None) before the task is spawned, so the count limit
    /// and the task's own removal at its end cannot race.
    inflight: Mutex<HashMap<CallId, Option<AbortHandle>>>,
    /// Connection slot of the accepting node, released on close.
    permit: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
    /// Start of the connection: the zero of `last_rx_ms`.
    born: std::time::Instant,
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

/// Local identity offered in the handshake.
pub(crate) struct LocalHello {
    pub(crate) node: NodeId,
    pub(crate) listen: Option<String>,
    pub(crate) max_frame: usize,
}

fn io_reason(e: &io::Error) -> String {
    e.to_string()
}

async fn read_hello(stream: &mut TcpStream, max: usize) -> Result<Hello, RpcError> {
    let mut prefix = [0u8; wire::codec::LEN_PREFIX];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| RpcError::protocol(format!("handshake read failed: {}", io_reason(&e))))?;
    let len = match wire::codec::peek_len(&prefix, max) {
        Ok(Some(len)) => len,
        Ok(None) => return Err(RpcError::protocol("handshake frame truncated")),
        Err(e) => return Err(RpcError::protocol(e.to_string())),
    };
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| RpcError::protocol(format!("handshake read failed: {}", io_reason(&e))))?;
    match wire::codec::decode_body(&body) {
        Ok(Message::Hello(h)) => Ok(h),
        Ok(Message::Close(e)) => Err(e),
        Ok(_) => Err(RpcError::protocol("expected a hello frame first")),
        Err(e) => Err(RpcError::protocol(e.to_string())),
    }
}

async fn write_msg(stream: &mut TcpStream, msg: &Message, max: usize) -> Result<(), RpcError> {
    let mut buf = Vec::new();
    wire::encode_frame(msg, &mut buf, max).map_err(|e| RpcError::protocol(e.to_string()))?;
    stream
        .write_all(&buf)
        .await
        .map_err(|e| RpcError::protocol(format!("handshake write failed: {}", io_reason(&e))))
}

fn hello_msg(local: &LocalHello) -> Message {
    Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        node: local.node,
        listen: local.listen.clone(),
        max_frame: local.max_frame as u64,
    })
}

/// Client side of the handshake: send our hello, read theirs.
pub(crate) async fn handshake_connect(
    stream: &mut TcpStream,
    local: &LocalHello,
    max: usize,
) -> Result<Hello, RpcError> {
    write_msg(stream, &hello_msg(local), max).await?;
    let theirs = read_hello(stream, max).await?;
    check_version(&theirs)?;
    Ok(theirs)
}

/// Server side of the handshake: read their hello, refuse another protocol
/// version with a `Close` frame, answer with ours.
pub(crate) async fn handshake_accept(
    stream: &mut TcpStream,
    local: &LocalHello,
    max: usize,
) -> Result<Hello, RpcError> {
    let theirs = read_hello(stream, max).await?;
    if let Err(e) = check_version(&theirs) {
        let _ = write_msg(stream, &Message::Close(e.clone()), max).await;
        return Err(e);
    }
    write_msg(stream, &hello_msg(local), max).await?;
    Ok(theirs)
}

fn check_version(h: &Hello) -> Result<(), RpcError> {
    if h.version != PROTOCOL_VERSION {
        return Err(RpcError::protocol(format!(
            "protocol version mismatch: peer speaks {}, this node speaks {PROTOCOL_VERSION}",
            h.version
        )));
    }
    Ok(())
}

impl Connection {
    /// Wraps a handshaken stream and spawns its reader and writer tasks.
    pub(crate) fn start(
        stream: TcpStream,
        local: NodeId,
        peer: &Hello,
        config: &crate::config::Config,
        handler: Arc<dyn Handler>,
        traffic: Arc<Traffic>,
    ) -> Arc<Connection> {
        let max_frame = config.max_frame_len;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let conn = Arc::new(Connection {
            peer: peer.node,
            peer_listen: peer.listen.clone(),
            local,
            max_frame,
            max_send: max_frame.min(usize::try_from(peer.max_frame).unwrap_or(usize::MAX)),
            writer: Writer {
                sock: wr,
                state: Mutex::new(WriteState::default()),
                wake: Notify::new(),
            },
            next_call: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            closed: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            permit: Mutex::new(None),
            born: std::time::Instant::now(),
            last_rx_ms: AtomicU64::new(0),
            stop: tokio_util::sync::CancellationToken::new(),
            traffic,
        });
        handler.on_open(&conn);
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
        conn
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

    /// True once the connection is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.lock().is_some()
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

    /// True when other calls are under way on this connection in either
    /// direction, so that more frames are likely to follow within this tick.
    fn busy(&self) -> bool {
        self.pending.lock().len() + self.inflight.lock().len() > 1
    }

    /// Queues one encoded frame; writes it at once if the socket is free and
    /// the connection is quiet.
    ///
    /// A lone call writes its own frame (no task hop: lowest latency). When
    /// other calls are under way, the frame goes to the writer task instead,
    /// which sends everything queued meanwhile in one syscall: one write per
    /// frame was the throughput limit with many callers.
    fn send_frame(&self, frame: Vec<u8>) -> Result<(), RpcError> {
        let defer = self.busy();
        let mut out = {
            let mut st = self.writer.state.lock();
            if st.closed {
                return Err(self.closed_error(false));
            }
            if st.writing {
                st.queue.extend_from_slice(&frame);
                return Ok(());
            }
            st.writing = true;
            if defer {
                st.queue.extend_from_slice(&frame);
                drop(st);
                self.writer.wake.notify_one();
                return Ok(());
            }
            frame
        };
        // We own the write slot: write until drained, taking up what others queue.
        let mut off = 0;
        loop {
            while off < out.len() {
                match self.writer.sock.try_write(&out[off..]) {
                    Ok(0) => {
                        self.close(&RpcError::ConnectionLost {
                            peer: self.peer_name(),
                            reason: "peer stopped reading".into(),
                        });
                        return Ok(());
                    }
                    Ok(n) => {
                        self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
                        off += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Hand the rest to the writer task, ahead of what others queued.
                        let mut st = self.writer.state.lock();
                        let mut rest = out.split_off(off);
                        rest.extend_from_slice(&st.queue);
                        st.queue = rest;
                        drop(st);
                        self.writer.wake.notify_one();
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.close(&RpcError::ConnectionLost {
                            peer: self.peer_name(),
                            reason: io_reason(&e),
                        });
                        return Ok(());
                    }
                }
            }
            let mut st = self.writer.state.lock();
            if st.queue.is_empty() {
                if st.bulk.is_empty() {
                    st.writing = false;
                } else {
                    // Bulk data is the writer task's job; stay "writing" for it.
                    drop(st);
                    self.writer.wake.notify_one();
                }
                return Ok(());
            }
            out.clear();
            std::mem::swap(&mut out, &mut st.queue);
            off = 0;
        }
    }

    /// Writer task: drains what callers handed over when the socket would block.
    async fn run_writer(self: Arc<Self>) {
        let mut buf = Vec::new();
        loop {
            self.writer.wake.notified().await;
            // Let the tasks that are ready now queue their frames too, so that
            // they leave in this batch.
            tokio::task::yield_now().await;
            loop {
                {
                    let mut st = self.writer.state.lock();
                    if st.closed {
                        return;
                    }
                    buf.clear();
                    if !st.queue.is_empty() {
                        std::mem::swap(&mut buf, &mut st.queue);
                    } else if let Some(chunk) = st.bulk.pop_front() {
                        // One bulk frame, then small frames get another look.
                        buf = chunk;
                    } else {
                        st.writing = false;
                        break;
                    }
                }
                let mut off = 0;
                while off < buf.len() {
                    if let Err(e) = self.writer.sock.writable().await {
                        self.close(&RpcError::ConnectionLost {
                            peer: self.peer_name(),
                            reason: io_reason(&e),
                        });
                        return;
                    }
                    match self.writer.sock.try_write(&buf[off..]) {
                        Ok(n) => {
                            self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
                            off += n;
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => {
                            self.close(&RpcError::ConnectionLost {
                                peer: self.peer_name(),
                                reason: io_reason(&e),
                            });
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Queues one bulk message (a transfer chunk) behind every small frame.
    pub(crate) fn send_bulk(&self, msg: &Message) -> Result<(), RpcError> {
        let frame = self.encode(msg)?;
        let mut st = self.writer.state.lock();
        if st.closed {
            return Err(self.closed_error(false));
        }
        st.bulk.push_back(frame);
        if !st.writing {
            st.writing = true;
            drop(st);
            self.writer.wake.notify_one();
        }
        Ok(())
    }

    fn encode(&self, msg: &Message) -> Result<Vec<u8>, RpcError> {
        let mut frame = Vec::with_capacity(128);
        wire::encode_frame(msg, &mut frame, self.max_send).map_err(|e| match e {
            FrameError::TooLarge { len, max } => RpcError::Encode {
                what: "message".into(),
                reason: format!("frame of {len} bytes exceeds the limit of {max} bytes"),
            },
            FrameError::Malformed(r) => RpcError::Encode {
                what: "message".into(),
                reason: r,
            },
        })?;
        Ok(frame)
    }

    /// Encodes and sends one message.
    pub(crate) fn send(&self, msg: &Message) -> Result<(), RpcError> {
        let frame = self.encode(msg)?;
        self.send_frame(frame)
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

    /// Reserves a slot for the peer's call `call_id`; false if too many run already.
    pub(crate) fn reserve_inflight(&self, call_id: CallId, max: usize) -> bool {
        let mut m = self.inflight.lock();
        if m.len() >= max {
            return false;
        }
        m.insert(call_id, None);
        true
    }

    /// Attaches the task running `call_id`, unless it has already finished.
    pub(crate) fn set_inflight_handle(&self, call_id: CallId, handle: AbortHandle) {
        if let Some(slot) = self.inflight.lock().get_mut(&call_id) {
            *slot = Some(handle);
        }
    }

    /// Keeps the accepting node's connection slot until this connection closes.
    pub(crate) fn hold_permit(&self, permit: tokio::sync::OwnedSemaphorePermit) {
        *self.permit.lock() = Some(permit);
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
            },
            args,
        });
        if let Err(e) = self.send(&req) {
            guard.armed = false;
            self.pending.lock().remove(&id);
            return Err(e);
        }
        // Kept only to name the method if the deadline passes.
        let method_name = match req {
            Message::Request(r) => r.args.method,
            _ => String::new(),
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(res)) => {
                guard.armed = false;
                res
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(self.closed_error(true))
            }
            Err(_) => Err(RpcError::DeadlineExceeded {
                method: method_name,
                after_ms: timeout.as_millis() as u64,
            }),
        }
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
            RpcError::ConnectionLost { .. } => reason.clone(),
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

    /// Sends `Close(err)` (best effort) and closes.
    fn fail(&self, err: &RpcError) {
        let _ = self.send(&Message::Close(err.clone()));
        self.close(err);
    }

    /// Reader task: decodes frames until the peer closes or breaks the protocol.
    async fn run_reader(self: Arc<Self>, mut rd: OwnedReadHalf, handler: Arc<dyn Handler>) {
        let reason = self.read_loop(&mut rd, &handler).await;
        let reason = {
            let c = self.closed.lock();
            c.clone().unwrap_or(reason)
        };
        handler.on_closed(&self, &reason);
        self.close(&reason);
    }

    async fn read_loop(
        self: &Arc<Self>,
        rd: &mut OwnedReadHalf,
        handler: &Arc<dyn Handler>,
    ) -> RpcError {
        let mut buf = BytesMut::with_capacity(crate::config::READ_BUFFER);
        loop {
            // Decode every whole frame in the buffer.
            loop {
                match wire::decode_frame(&buf, self.max_frame) {
                    Ok(Some((msg, used))) => {
                        buf.advance(used);
                        if let Err(e) = self.on_message(msg, handler) {
                            self.fail(&e);
                            return e;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let err = RpcError::protocol(e.to_string());
                        tracing::warn!(peer = ?self.peer, error = %err, "closing connection");
                        self.fail(&err);
                        return err;
                    }
                }
            }
            if let Ok(Some(len)) = wire::codec::peek_len(&buf, self.max_frame) {
                buf.reserve(len + wire::codec::LEN_PREFIX - buf.len());
            } else if buf.capacity() - buf.len() < 4096 {
                buf.reserve(crate::config::READ_BUFFER);
            }
            let read = tokio::select! {
                r = rd.read_buf(&mut buf) => r,
                () = self.stop.cancelled() => {
                    return self.closed.lock().clone().unwrap_or(RpcError::Shutdown);
                }
            };
            self.last_rx_ms.store(self.now_ms(), Ordering::Relaxed);
            match read {
                Ok(0) => {
                    return RpcError::ConnectionLost {
                        peer: self.peer_name(),
                        reason: if buf.is_empty() {
                            "peer closed the connection".into()
                        } else {
                            "peer closed the connection mid-frame".into()
                        },
                    };
                }
                Ok(n) => {
                    self.traffic.received.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    return RpcError::ConnectionLost {
                        peer: self.peer_name(),
                        reason: io_reason(&e),
                    };
                }
            }
        }
    }

    fn on_message(
        self: &Arc<Self>,
        msg: Message,
        handler: &Arc<dyn Handler>,
    ) -> Result<(), RpcError> {
        match msg {
            Message::Response(resp) => {
                if let Some(tx) = self.pending.lock().remove(&resp.ipc.call_id) {
                    let _ = tx.send(Ok(resp.body));
                }
                // A response to a call we gave up on: drop it.
                Ok(())
            }
            Message::Request(req) => {
                Arc::clone(handler).on_request(self, req);
                Ok(())
            }
            Message::Cancel(ipc) => {
                if let Some(Some(h)) = self.inflight.lock().remove(&ipc.call_id) {
                    h.abort();
                }
                Ok(())
            }
            Message::Close(e) => Err(e),
            Message::Ping(n) => {
                let _ = self.send(&Message::Pong(n));
                Ok(())
            }
            Message::Pong(_) => Ok(()),
            msg @ (Message::Dirty { .. } | Message::Clean { .. }) => {
                handler.on_lease(self, msg);
                Ok(())
            }
            msg @ (Message::ChunkRequest { .. }
            | Message::Chunk { .. }
            | Message::ChunkError { .. }
            | Message::TransferEnd { .. }) => {
                handler.on_transfer(self, msg);
                Ok(())
            }
            Message::Hello(_) => Err(RpcError::protocol("unexpected hello after handshake")),
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

/// Encoded request arguments for [`Connection::call`].
pub(crate) fn arg_list(method: &str, args: Vec<crate::wire::Arg>) -> ArgList {
    ArgList {
        method: method.to_owned(),
        args,
    }
}
