//! What a node does with what its connections hand it: each peer request
//! runs on a task of its own (target looked up, class checked, large
//! arguments pulled, the skeleton called within the deadline); lease and
//! transfer messages go to their tables; a closed connection is forgotten.

use super::{Node, NodeInner};
use crate::dispatch::IncomingCall;
use crate::dispatch::context::as_caller;
use crate::error::RpcError;
use crate::registry::classes::class_name;
use crate::transport::connection::{Connection, Handler, Wait};
use crate::wire::{Arg, Request, ResponseBody, TraceContext, random_span_id};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::Instrument;

impl NodeInner {
    /// Runs one peer request and answers it.
    async fn serve(self: Arc<Self>, conn: Arc<Connection>, req: Request) {
        let call_id = req.ipc.call_id;
        let mut guard = AnswerOnPanic {
            conn: &conn,
            call_id,
            answered: false,
        };
        // One span per served call, a child (by id) of the caller's span:
        // nested calls and callbacks made while serving carry this span's id.
        let incoming = req.rpc.trace.unwrap_or_else(TraceContext::new_root);
        let here = TraceContext {
            trace_id: incoming.trace_id,
            parent_span: random_span_id(),
        };
        let span = tracing::debug_span!(
            target: "rpc::call",
            "rpc",
            method = %format_args!("{}.{}", class_name(req.rpc.target.class), req.args.method),
            peer = %conn.peer.0,
            call_id,
            trace_id = %format_args!("{:032x}", here.trace_id),
            span_id = %format_args!("{:016x}", here.parent_span),
            parent_span_id = %format_args!("{:016x}", incoming.parent_span),
            outcome = tracing::field::Empty,
        );
        // Labels and the clock only when something collects metrics.
        let labels = crate::telemetry::enabled().then(|| {
            (
                class_name(req.rpc.target.class),
                req.args.method.clone(),
                std::time::Instant::now(),
            )
        });
        let body = self
            .run_request(&conn, req, here)
            .instrument(span.clone())
            .await;
        let outcome = match &body {
            ResponseBody::Out(_) => "ok",
            ResponseBody::Application(_) => "error",
            ResponseBody::System(_) => "failed",
        };
        span.record("outcome", outcome);
        if let Some((class, method, started)) = labels {
            crate::telemetry::record_call(class, method, outcome, started.elapsed());
        }
        drop(span);
        guard.answered = true;
        self.answered.0.fetch_add(1, Ordering::Relaxed);
        if !matches!(body, ResponseBody::Out(_)) {
            self.answered.1.fetch_add(1, Ordering::Relaxed);
        }
        conn.respond(call_id, body);
    }

    async fn run_request(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        req: Request,
        trace: TraceContext,
    ) -> ResponseBody {
        let target = req.rpc.target;
        let export = match self.core.exports.get(&target.object) {
            Some(e) => Some(e),
            None => {
                let resolver = self.resolver.read().clone();
                match resolver {
                    Some(f)
                        if f(
                            &Node {
                                inner: Arc::clone(self),
                            },
                            target.object,
                        ) =>
                    {
                        self.core.exports.get(&target.object)
                    }
                    _ => None,
                }
            }
        };
        let Some(export) = export else {
            return ResponseBody::System(RpcError::NoSuchObject {
                object: target.object,
            });
        };
        if export.class.id != target.class {
            return ResponseBody::System(RpcError::WrongClass {
                expected: class_name(target.class),
                found: export.class.name.to_owned(),
            });
        }
        if export.class.version != target.version {
            return ResponseBody::System(RpcError::VersionMismatch {
                class: export.class.name.to_owned(),
                local: target.version.0,
                remote: export.class.version.0,
            });
        }
        let method = req.args.method;
        let received = tokio::time::Instant::now();
        let all_inline = req.args.args.iter().all(|a| matches!(a, Arg::Inline(_)));
        let pulled = if all_inline {
            // Nothing to pull (most calls): no pull future in this one's state.
            Ok(req
                .args
                .args
                .into_iter()
                .filter_map(|a| match a {
                    Arg::Inline(p) => Some(p),
                    Arg::Transfer(_) => None,
                })
                .collect())
        } else {
            // Large arguments are pulled before the method runs: within a
            // deadline the caller chose; under the default one, for as long
            // as the pull makes progress (each chunk within the transfer
            // timeout), and the method's deadline starts once they are here.
            // Boxed: a pull's state is large, and most calls have none.
            let pull = Box::pin(self.core.transfers.materialize_all(conn, req.args.args));
            match req.rpc.deadline_ms.filter(|_| req.rpc.deadline_explicit) {
                Some(ms) => tokio::time::timeout(Duration::from_millis(ms), pull)
                    .await
                    .unwrap_or_else(|_| {
                        Err(RpcError::DeadlineExceeded {
                            method: method.clone(),
                            after_ms: ms,
                        })
                    }),
                None => pull.await,
            }
        };
        let args = match pulled {
            Ok(a) => a,
            Err(e) => return ResponseBody::System(e),
        };
        let call = IncomingCall {
            core: Arc::clone(&self.core),
            peer: conn.peer,
            class: export.class,
            method: method.clone(),
            args,
        };
        // An explicit deadline counts from the request's arrival, the
        // default one from the end of the pull.
        let start = if req.rpc.deadline_explicit || all_inline {
            received
        } else {
            tokio::time::Instant::now()
        };
        // Nested calls and callbacks inherit an explicit deadline; the
        // default one moves while values move, so they get their own default
        // (and are cancelled if this call's caller stops waiting).
        let deadline = req
            .rpc
            .deadline_ms
            .filter(|_| req.rpc.deadline_explicit)
            .map(|ms| start + Duration::from_millis(ms));
        let fut = as_caller(
            Arc::clone(&conn.identity),
            deadline,
            Some(trace),
            Arc::clone(&export.server).dispatch(call),
        );
        drop(export);
        let Some(ms) = req.rpc.deadline_ms else {
            return fut.await;
        };
        // A method that pulls a blob from its caller (a `put`) is bounded,
        // under the default deadline, by the pull's progress.
        let wait = Wait {
            timeout: Duration::from_millis(ms),
            explicit: req.rpc.deadline_explicit,
            transfers: Some(&self.core.transfers),
        };
        match wait.wait_for(conn.peer, start, fut).await {
            Ok(body) => body,
            Err(_) => ResponseBody::System(RpcError::DeadlineExceeded {
                method,
                after_ms: ms,
            }),
        }
    }
}

/// Drops the future in its slot if the thread unwinds while this is alive.
struct DropOnUnwind<'a, F>(&'a mut Option<F>);

impl<F> Drop for DropOnUnwind<'_, F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.take();
        }
    }
}

/// Answers a call whose method panicked, so that the caller does not wait for
/// its deadline. A cancelled call (task aborted) is not answered: its caller
/// is gone.
struct AnswerOnPanic<'a> {
    conn: &'a Arc<Connection>,
    call_id: u64,
    answered: bool,
}

impl Drop for AnswerOnPanic<'_> {
    fn drop(&mut self) {
        if !self.answered && std::thread::panicking() {
            self.conn.respond(
                self.call_id,
                ResponseBody::System(RpcError::Remote {
                    message: "the remote method panicked".into(),
                }),
            );
        }
    }
}

impl Handler for NodeInner {
    fn on_request(self: Arc<Self>, conn: &Arc<Connection>, req: Request) {
        let call_id = req.ipc.call_id;
        if self.stopping.load(Ordering::SeqCst) {
            conn.respond(call_id, ResponseBody::System(RpcError::Shutdown));
            return;
        }
        match conn.reserve_inflight(call_id, self.core.config.max_inflight_per_connection) {
            Ok(()) => {}
            Err(e @ RpcError::Protocol { .. }) => {
                tracing::warn!(peer = ?conn.peer, error = %e, "closing connection");
                conn.fail(&e);
                return;
            }
            Err(e) => {
                conn.respond(call_id, ResponseBody::System(e));
                return;
            }
        }
        let node = Arc::clone(&self);
        let c = Arc::clone(conn);
        let serve = Box::pin(async move {
            let c2 = Arc::clone(&c);
            node.serve(c, req).await;
            c2.untrack_inflight(call_id);
        });
        // Run it here, on the reader, as far as it goes without waiting: a
        // method that answers at once (most do) then costs no task, no
        // wake-up of another worker, and its answer leaves with the others
        // of this read. One that waits moves to a task of its own, which
        // polls it again at once (so no wake-up lost to the no-op waker).
        // A method that computes for long without awaiting holds up this
        // connection's reading meanwhile, as it would hold up its worker.
        let mut slot = Some(serve);
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            // Dropped while unwinding, as tokio drops a panicking task's
            // future: `AnswerOnPanic` in it then answers the caller.
            let guard = DropOnUnwind(&mut slot);
            match guard.0 {
                Some(f) => f.as_mut().poll(&mut cx),
                None => std::task::Poll::Ready(()),
            }
        }));
        match (polled, slot) {
            (Ok(std::task::Poll::Pending), Some(serve)) => {
                let task = self.tasks.spawn(serve);
                conn.set_inflight_handle(call_id, task.abort_handle());
            }
            (Ok(_), _) => {}
            (Err(_), _) => {
                // The method panicked (the panic hook reported it).
                conn.untrack_inflight(call_id);
            }
        }
    }

    fn on_lease(&self, conn: &Arc<Connection>, msg: crate::wire::Message) {
        match msg {
            crate::wire::Message::Dirty { objects, lease_ms } => {
                self.core
                    .exports
                    .dirty(conn.peer, &objects, Duration::from_millis(lease_ms));
            }
            crate::wire::Message::Clean { objects } => {
                self.core.exports.clean(conn.peer, &objects);
            }
            _ => {}
        }
    }

    fn on_transfer(&self, conn: &Arc<Connection>, msg: crate::wire::Message) {
        use crate::transfer::table::ChunkEvent;
        use crate::wire::Message;
        match msg {
            Message::ChunkRequest { id, offset, len } => {
                let max = crate::transfer::serve::largest_served_chunk(self.core.config.chunk_size);
                self.core.transfers.on_request(conn, id, offset, len, max);
            }
            Message::Chunk {
                id,
                offset,
                data,
                crc,
            } => self.on_chunk(conn, id, offset, data.0.into(), crc),
            Message::ChunkError { id, error } => {
                self.core
                    .transfers
                    .on_chunk(conn, id, ChunkEvent::Failed(error));
            }
            Message::TransferEnd { id, .. } => self.core.transfers.on_end(conn, id),
            _ => {}
        }
    }

    fn on_chunk(
        &self,
        conn: &Arc<Connection>,
        id: crate::ids::TransferId,
        offset: u64,
        data: bytes::Bytes,
        crc: u32,
    ) {
        use crate::transfer::table::ChunkEvent;
        let ev = ChunkEvent::Data { offset, data, crc };
        self.core.transfers.on_chunk(conn, id, ev);
    }

    fn on_closed(&self, conn: &Arc<Connection>, reason: &RpcError) {
        self.core.transfers.peer_gone(conn.peer, reason);
        tracing::debug!(peer = ?conn.peer, %reason, "connection closed");
        self.core.peers.forget(conn);
    }
}
