//! What a task serving a request knows about it: who called, and when the
//! caller stops waiting. Nested calls and callbacks made while serving it
//! inherit the deadline.

use crate::ids::{Identity, NodeId};
use crate::wire::TraceContext;
use std::future::Future;
use std::sync::Arc;

/// What a task serving a request knows about that request.
#[derive(Clone)]
struct CallContext {
    /// The node that made the request, as its connection knows it.
    peer: Arc<Identity>,
    /// When the caller stops waiting, if it said.
    deadline: Option<tokio::time::Instant>,
    /// The trace of the request and the span serving it: calls made while
    /// serving it are that span's children.
    trace: Option<TraceContext>,
}

tokio::task_local! {
    /// The request the current task is serving.
    static CALL: CallContext;
}

/// The node that made the request the current task is serving, if any: lets a
/// server method tie what it does (a lease, a binding) to its caller.
pub fn caller() -> Option<NodeId> {
    CALL.try_with(|c| c.peer.node).ok()
}

/// Who made the request the current task is serving: its node id and, over
/// TLS, the name and role its certificate proves (see [`Identity`]).
pub fn caller_identity() -> Option<Identity> {
    CALL.try_with(|c| Identity::clone(&c.peer)).ok()
}

/// When the caller of the request the current task is serving stops waiting,
/// if the caller chose its deadline. Calls made while serving it (nested
/// calls, callbacks) get no later a deadline. `None` under the caller's
/// default deadline, which moves while the call's large values move.
pub fn call_deadline() -> Option<tokio::time::Instant> {
    CALL.try_with(|c| c.deadline).ok().flatten()
}

/// The trace context a call made now carries: the served request's trace,
/// with its span as the parent, or a new trace outside any request.
pub(crate) fn outgoing_trace() -> TraceContext {
    CALL.try_with(|c| c.trace)
        .ok()
        .flatten()
        .unwrap_or_else(TraceContext::new_root)
}

/// Runs `fut` as serving a request of `peer` due by `deadline`, in span
/// `trace.parent_span` of `trace.trace_id` (this node's span of the call).
pub(crate) async fn as_caller<F: Future>(
    peer: Arc<Identity>,
    deadline: Option<tokio::time::Instant>,
    trace: Option<TraceContext>,
    fut: F,
) -> F::Output {
    CALL.scope(
        CallContext {
            peer,
            deadline,
            trace,
        },
        fut,
    )
    .await
}
