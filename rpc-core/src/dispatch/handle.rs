//! The client side of the contract with `#[remote]`-generated code: a
//! [`RemoteHandle`] sends calls for one capability; every reference to one
//! remote object on a node shares its [`RemoteObject`], whose drop releases
//! the lease.

use super::codec::{decode_owned, decode_payload, encode_payload};
use super::context::call_deadline;
use super::core::Core;
use crate::error::RpcError;
use crate::ids::Capability;
use crate::registry::classes::ClassInfo;
use crate::transport::connection::Wait;
use crate::wire::{ArgList, Payload, ResponseBody};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What a call returned, before the out argument is decoded.
#[derive(Debug)]
pub enum Reply {
    /// The out arguments (one: the method's result).
    Out(Vec<Payload>),
    /// The method's own error, encoded.
    Application(Payload),
}

/// Client-side state for one imported capability, shared by every reference to it.
pub(crate) struct RemoteObject {
    pub(crate) cap: Capability,
    pub(crate) core: Arc<Core>,
}

impl fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteObject")
            .field("cap", &self.cap)
            .finish()
    }
}

impl Drop for RemoteObject {
    fn drop(&mut self) {
        self.core.imports.forget_dead(&self.cap.object);
        // The last proxy is gone: release the lease at once (batched).
        self.core.gc.clean(&self.cap.home, self.cap.object);
    }
}

/// Sends calls to one remote object: the core of every generated client proxy.
#[derive(Clone)]
pub struct RemoteHandle {
    obj: Arc<RemoteObject>,
    /// Class of the stub using the handle: its id and version go into every
    /// request, so the home node checks the caller's view, not the
    /// capability's. `None` for a dynamic handle (a tool calling any class
    /// by method name), which sends the capability's own.
    class: Option<&'static ClassInfo>,
    /// Deadline of calls made through this handle; the node default when `None`.
    timeout: Option<Duration>,
}

impl fmt::Debug for RemoteHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteHandle")
            .field("cap", &self.obj.cap)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RemoteHandle {
    /// A handle calling `obj` through a stub of `class`.
    pub(crate) fn new(obj: Arc<RemoteObject>, class: &'static ClassInfo) -> RemoteHandle {
        RemoteHandle {
            obj,
            class: Some(class),
            timeout: None,
        }
    }

    /// A handle calling `obj` as whatever class its capability names.
    pub(crate) fn dynamic(obj: Arc<RemoteObject>) -> RemoteHandle {
        RemoteHandle {
            obj,
            class: None,
            timeout: None,
        }
    }

    /// The capability this handle calls.
    pub fn capability(&self) -> &Capability {
        &self.obj.cap
    }

    /// The same handle with another call deadline.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        RemoteHandle {
            obj: Arc::clone(&self.obj),
            class: self.class,
            timeout: Some(timeout),
        }
    }

    /// The deadline calls through this handle get: their own (or the node
    /// default), but no later than the deadline of the request being served.
    pub fn timeout(&self) -> Duration {
        let own = self.timeout.unwrap_or(self.obj.core.config.call_timeout);
        match call_deadline() {
            Some(d) => own.min(d.saturating_duration_since(tokio::time::Instant::now())),
            None => own,
        }
    }

    /// True if both handles name the same remote object.
    pub fn same_object(&self, other: &RemoteHandle) -> bool {
        Arc::ptr_eq(&self.obj, &other.obj)
    }

    /// Encodes one argument (exporting any local references it holds).
    ///
    /// # Errors
    /// [`RpcError::Encode`] when the value cannot be encoded.
    pub fn encode<T: Serialize + ?Sized>(&self, v: &T, what: &str) -> Result<Payload, RpcError> {
        encode_payload(&self.obj.core, Some(self.obj.cap.home.node), v, what)
    }

    /// Encodes a byte buffer argument as one CBOR byte string, in its own buffer.
    pub fn encode_bytes<T: super::bytes::ByteValue>(&self, v: T) -> Payload {
        super::bytes::to_payload(v)
    }

    /// Decodes the single out argument of a successful call whose result is a
    /// byte buffer, taking the bytes out of the payload in place.
    ///
    /// # Errors
    /// [`RpcError::Decode`] when there is not exactly one or it is not bytes.
    pub fn decode_out_bytes<T: super::bytes::ByteValue>(
        &self,
        out: Vec<Payload>,
        method: &str,
    ) -> Result<T, RpcError> {
        match <[Payload; 1]>::try_from(out) {
            Ok([p]) => match super::bytes::from_payload(p) {
                Ok(v) => Ok(T::from_vec(v)),
                // Not one byte string (an array of integers, say): the
                // generic decoder takes what serde would.
                Err(p) => self
                    .decode_out::<serde_bytes::ByteBuf>(vec![p], method)
                    .map(|b| T::from_vec(b.into_vec())),
            },
            Err(out) => self
                .decode_out::<serde_bytes::ByteBuf>(out, method)
                .map(|b| T::from_vec(b.into_vec())),
        }
    }

    /// Decodes a value that came back from the call (importing references it holds).
    ///
    /// # Errors
    /// [`RpcError::Decode`], or the typed error of a reference that could not be resolved.
    pub fn decode<T: DeserializeOwned>(&self, p: &Payload, what: &str) -> Result<T, RpcError> {
        decode_payload(&self.obj.core, p, what)
    }

    /// Decodes the single out argument of a successful call.
    ///
    /// # Errors
    /// [`RpcError::Decode`] when there is not exactly one or it has the wrong type.
    pub fn decode_out<T: DeserializeOwned>(
        &self,
        out: Vec<Payload>,
        method: &str,
    ) -> Result<T, RpcError> {
        match <[Payload; 1]>::try_from(out) {
            Ok([p]) => self
                .decode(&p, "result")
                .map_err(|e| result_error(e, method)),
            Err(out) => Err(out_count_error(&out, method)),
        }
    }

    /// Decodes the single out argument of a successful call as
    /// [`RemoteHandle::decode_out`] does, a large one on the blocking pool
    /// (where its encoding is freed too).
    ///
    /// # Errors
    /// As [`RemoteHandle::decode_out`].
    pub async fn decode_out_owned<T: DeserializeOwned + Send + 'static>(
        &self,
        out: Vec<Payload>,
        method: &str,
    ) -> Result<T, RpcError> {
        match <[Payload; 1]>::try_from(out) {
            Ok([p]) => decode_owned(&self.obj.core, p, "result")
                .await
                .map_err(|e| result_error(e, method)),
            Err(out) => Err(out_count_error(&out, method)),
        }
    }

    /// Calls `method` with encoded `args`.
    ///
    /// # Errors
    /// Any [`RpcError`]: transport, deadline, or a system error from the remote runtime.
    ///
    /// # Cancel safety
    /// Dropping the future sends a cancel to the remote node.
    pub async fn call(&self, method: &str, args: Vec<Payload>) -> Result<Reply, RpcError> {
        self.call_within(method, args, self.timeout(), self.explicit_deadline())
            .await
    }

    /// True when calls through this handle have a deadline someone chose:
    /// set with [`RemoteHandle::with_timeout`], or inherited from the call
    /// being served. Such a deadline also bounds pulling large values; the
    /// node's default bounds the method only.
    fn explicit_deadline(&self) -> bool {
        self.timeout.is_some() || call_deadline().is_some()
    }

    /// Calls an idempotent method: after a transport failure (not sent, or
    /// the connection broke after sending) it reconnects and tries again with
    /// bounded backoff, as long as the deadline allows.
    ///
    /// # Errors
    /// As [`RemoteHandle::call`]; the last transport error when the deadline
    /// leaves no time for another try.
    ///
    /// # Cancel safety
    /// Dropping the future sends a cancel for the attempt under way.
    pub async fn call_idempotent(
        &self,
        method: &str,
        args: Vec<Payload>,
    ) -> Result<Reply, RpcError> {
        let deadline = tokio::time::Instant::now() + self.timeout();
        let explicit = self.explicit_deadline();
        let mut backoff = RETRY_BACKOFF_MIN;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.call_within(method, args.clone(), left, explicit).await {
                Err(e) if e.is_transport() => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left <= backoff {
                        return Err(e);
                    }
                    tracing::debug!(method, error = %e, ?backoff, "retrying idempotent call");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                }
                other => return other,
            }
        }
    }

    async fn call_within(
        &self,
        method: &str,
        args: Vec<Payload>,
        timeout: Duration,
        explicit: bool,
    ) -> Result<Reply, RpcError> {
        if timeout.is_zero() {
            // The request being served is already late: do not start more work.
            return Err(RpcError::DeadlineExceeded {
                method: method.to_owned(),
                after_ms: 0,
            });
        }
        let core = &self.obj.core;
        let home = &self.obj.cap.home;
        let target = match self.class {
            Some(class) => Capability {
                class: class.id,
                version: class.version,
                ..self.obj.cap.clone()
            },
            None => self.obj.cap.clone(),
        };
        // One clock read for a call sent at the first try.
        let mut now = tokio::time::Instant::now();
        let deadline = now + timeout;
        let trace = Some(super::context::outgoing_trace());
        let mut args = ArgList::new(method, core.transfers.route_out(args, home.node)?);
        let wait = |timeout| Wait {
            timeout,
            explicit,
            transfers: Some(&core.transfers),
        };
        let mut backoff = RETRY_BACKOFF_MIN;
        // A request that certainly never left (no connection could be made,
        // or the connection was closed before it was written) is sent again
        // with backoff while the deadline allows, idempotent or not: the
        // first call after a peer restarts or a link heals then succeeds.
        let (conn, body) = loop {
            let left = deadline.saturating_duration_since(now);
            let failed = match core.peers.conn_to(home).await {
                Ok(conn) => match conn
                    .call_or_return(target.clone(), args, wait(left), trace, now)
                    .await
                {
                    Ok(body) => break (conn, body),
                    Err((e, Some(back))) => {
                        args = back;
                        e
                    }
                    Err((e, None)) => return Err(e),
                },
                Err(e @ RpcError::Unreachable { .. }) => e,
                Err(e) => {
                    core.transfers.withdraw(&args.args);
                    return Err(e);
                }
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left <= backoff || core.peers.is_closed() {
                core.transfers.withdraw(&args.args);
                return Err(failed);
            }
            tracing::debug!(method, error = %failed, ?backoff, "request not sent; trying again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
            now = tokio::time::Instant::now();
        };
        let pull = async {
            match body {
                ResponseBody::Out(out) => Ok(Reply::Out(
                    core.transfers.materialize_all(&conn, out).await?,
                )),
                ResponseBody::Application(a) => Ok(Reply::Application(
                    core.transfers.materialize(&conn, a).await?,
                )),
                ResponseBody::System(e) => Err(e),
            }
        };
        if !explicit {
            // Large results: a pull that keeps making progress is bounded
            // by the transfer timeout (time without a chunk), not the deadline.
            return pull.await;
        }
        // Within what is left of a deadline the caller chose.
        tokio::time::timeout_at(deadline, pull)
            .await
            .unwrap_or_else(|_| {
                Err(RpcError::DeadlineExceeded {
                    method: method.to_owned(),
                    after_ms: timeout.as_millis() as u64,
                })
            })
    }
}

/// A decode error of the result of `method` as the caller sees it.
fn result_error(e: RpcError, method: &str) -> RpcError {
    match e {
        RpcError::Decode { reason, .. } => RpcError::Decode {
            what: format!("result of `{method}`"),
            reason,
        },
        other => other,
    }
}

/// The error for a reply whose out arguments are not exactly one.
fn out_count_error(out: &[Payload], method: &str) -> RpcError {
    RpcError::Decode {
        what: format!("result of `{method}`"),
        reason: format!("expected 1 out argument, got {}", out.len()),
    }
}

/// First pause before a call is sent again (not sent at all, or an
/// idempotent call after a transport failure).
pub(crate) const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between retries of an idempotent call.
pub(crate) const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// Implemented by every `#[remote]` reference type (`{Trait}Ref`).
pub trait RemoteRef: Sized + Clone + Send + Sync + 'static {
    /// The class this reference type speaks.
    const CLASS: &'static ClassInfo;

    /// Wraps a handle to a remote object of this class.
    #[doc(hidden)]
    fn from_remote(handle: RemoteHandle) -> Self;

    /// Rebuilds a reference from an export's local handle, if it is of this class.
    #[doc(hidden)]
    fn from_local_any(local: &(dyn Any + Send + Sync)) -> Option<Self>;

    /// The handle, if this reference points to another node.
    fn remote_handle(&self) -> Option<&RemoteHandle>;
}
