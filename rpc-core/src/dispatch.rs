//! The contract between the runtime and `#[remote]`-generated code.
//!
//! Server side: a [`ServerProxy`] (skeleton) receives an [`IncomingCall`] whose
//! arguments are still opaque bytes and decodes them itself. Client side: a
//! [`RemoteHandle`] sends calls for one capability. A reference type
//! implements [`RemoteRef`]; it serializes as a capability, which the runtime
//! turns back into either the real local object (when the reference comes
//! home) or the one shared proxy for that capability.
//!
//! Encoding and decoding run synchronously inside `with_node`, which tells
//! reference types which node exports or imports them.

use crate::error::RpcError;
use crate::ids::{Capability, ComHandle, NodeId};
use crate::node::{Node, NodeInner};
use crate::registry::classes::{ClassInfo, class_name};
use crate::wire::{Payload, ResponseBody};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Skeleton of an exported object: decodes requests and calls the real object.
pub trait ServerProxy: Send + Sync + 'static {
    /// Class of the object behind it.
    fn class(&self) -> &'static ClassInfo;
    /// Runs one call to completion and produces the response body.
    fn dispatch(self: Arc<Self>, call: IncomingCall) -> BoxFuture<'static, ResponseBody>;
}

/// A request as a [`ServerProxy`] sees it: method name and undecoded arguments.
pub struct IncomingCall {
    pub(crate) node: Arc<NodeInner>,
    pub(crate) peer: NodeId,
    pub(crate) class: &'static ClassInfo,
    pub(crate) method: String,
    pub(crate) args: Vec<crate::wire::Payload>,
}

impl fmt::Debug for IncomingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingCall")
            .field("peer", &self.peer)
            .field("class", &self.class.name)
            .field("method", &self.method)
            .field("args", &self.args.len())
            .finish()
    }
}

impl IncomingCall {
    /// Name of the method called.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The node serving the call.
    pub fn node(&self) -> Node {
        Node::from_inner(Arc::clone(&self.node))
    }

    /// Node that made the call.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// Checks the argument count.
    ///
    /// # Errors
    /// [`RpcError::BadArguments`] naming the method and both counts.
    pub fn expect_args(&self, n: usize) -> Result<(), RpcError> {
        if self.args.len() != n {
            return Err(RpcError::BadArguments {
                method: self.method.clone(),
                reason: format!("expected {n} arguments, got {}", self.args.len()),
            });
        }
        Ok(())
    }

    /// Decodes argument `index`, called `name` in the method's signature.
    ///
    /// # Errors
    /// [`RpcError::BadArguments`] naming the method, the argument and what was wrong.
    pub fn arg<T: DeserializeOwned>(&self, index: usize, name: &str) -> Result<T, RpcError> {
        let Some(p) = self.args.get(index) else {
            return Err(RpcError::BadArguments {
                method: self.method.clone(),
                reason: format!("argument `{name}` (#{index}) is missing"),
            });
        };
        decode_payload(&self.node, p, name).map_err(|e| match e {
            RpcError::Decode { reason, .. } => RpcError::BadArguments {
                method: self.method.clone(),
                reason: format!(
                    "argument `{name}` (#{index}, {}): {reason}",
                    std::any::type_name::<T>()
                ),
            },
            other => other,
        })
    }

    /// The error for a method name the class does not have.
    pub fn no_such_method(&self) -> RpcError {
        RpcError::NoSuchMethod {
            class: self.class.name.to_owned(),
            method: self.method.clone(),
        }
    }

    /// Encodes a method's result as the response body.
    pub fn reply<T: Serialize, E: Serialize>(&self, result: Result<T, E>) -> ResponseBody {
        match result {
            Ok(v) => match as_reply(|| encode_payload(&self.node, Some(self.peer), &v, "result")) {
                Ok(p) => ResponseBody::Out(vec![self.node.route_one(p, self.peer)]),
                Err(e) => ResponseBody::System(e),
            },
            Err(e) => match encode_payload(&self.node, Some(self.peer), &e, "error") {
                Ok(p) => ResponseBody::Application(self.node.route_one(p, self.peer)),
                Err(e) => ResponseBody::System(e),
            },
        }
    }
}

/// What a call returned, before the out argument is decoded.
#[derive(Debug)]
pub enum Reply {
    /// The out arguments (one: the method's result).
    Out(Vec<Payload>),
    /// The method's own error, encoded.
    Application(Payload),
}

/// Client-side state for one imported capability, shared by every reference to it.
pub struct RemoteObject {
    pub(crate) cap: Capability,
    pub(crate) node: Arc<NodeInner>,
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
        self.node.imports.forget_dead(&self.cap.object);
        // The last proxy is gone: release the lease at once (batched).
        self.node.gc.clean(&self.cap.home, self.cap.object);
    }
}

/// Sends calls to one remote object: the core of every generated client proxy.
#[derive(Clone)]
pub struct RemoteHandle {
    obj: Arc<RemoteObject>,
    /// Class of the stub using the handle: its id and version go into every
    /// request, so the home node checks the caller's view, not the capability's.
    class: &'static ClassInfo,
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
        let own = self.timeout.unwrap_or(self.obj.node.config.call_timeout);
        match call_deadline() {
            Some(d) => own.min(d.saturating_duration_since(tokio::time::Instant::now())),
            None => own,
        }
    }

    /// The node this handle calls from.
    pub fn node(&self) -> Node {
        Node::from_inner(Arc::clone(&self.obj.node))
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
        encode_payload(&self.obj.node, Some(self.obj.cap.home.node), v, what)
    }

    /// Decodes a value that came back from the call (importing references it holds).
    ///
    /// # Errors
    /// [`RpcError::Decode`], or the typed error of a reference that could not be resolved.
    pub fn decode<T: DeserializeOwned>(&self, p: &Payload, what: &str) -> Result<T, RpcError> {
        decode_payload(&self.obj.node, p, what)
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
            Ok([p]) => self.decode(&p, "result").map_err(|e| match e {
                RpcError::Decode { reason, .. } => RpcError::Decode {
                    what: format!("result of `{method}`"),
                    reason,
                },
                other => other,
            }),
            Err(out) => Err(RpcError::Decode {
                what: format!("result of `{method}`"),
                reason: format!("expected 1 out argument, got {}", out.len()),
            }),
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
        self.call_within(method, args, self.timeout()).await
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
        let mut backoff = RETRY_BACKOFF_MIN;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.call_within(method, args.clone(), left).await {
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
    ) -> Result<Reply, RpcError> {
        if timeout.is_zero() {
            // The request being served is already late: do not start more work.
            return Err(RpcError::DeadlineExceeded {
                method: method.to_owned(),
                after_ms: 0,
            });
        }
        let node = &self.obj.node;
        let conn = node.conn_to(&self.obj.cap.home).await?;
        let target = Capability {
            class: self.class.id,
            version: self.class.version,
            ..self.obj.cap.clone()
        };
        let started = tokio::time::Instant::now();
        let args = node.route_out(args, self.obj.cap.home.node);
        let body = conn
            .call(
                target,
                crate::transport::connection::arg_list(method, args),
                timeout,
            )
            .await?;
        // Large results are pulled within what is left of the deadline.
        let pulled = tokio::time::timeout_at(started + timeout, async {
            match body {
                ResponseBody::Out(out) => Ok(Reply::Out(node.materialize_all(&conn, out).await?)),
                ResponseBody::Application(a) => {
                    Ok(Reply::Application(node.materialize(&conn, a).await?))
                }
                ResponseBody::System(e) => Err(e),
            }
        })
        .await;
        pulled.unwrap_or_else(|_| {
            Err(RpcError::DeadlineExceeded {
                method: method.to_owned(),
                after_ms: timeout.as_millis() as u64,
            })
        })
    }
}

/// First pause before an idempotent call is retried.
pub const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause between retries of an idempotent call.
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(500);

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

/// What a task serving a request knows about that request.
#[derive(Clone, Copy)]
struct CallContext {
    /// The node that made the request.
    peer: NodeId,
    /// When the caller stops waiting, if it said.
    deadline: Option<tokio::time::Instant>,
}

tokio::task_local! {
    /// The request the current task is serving.
    static CALL: CallContext;
}

/// The node that made the request the current task is serving, if any: lets a
/// server method tie what it does (a lease, a binding) to its caller.
pub fn caller() -> Option<NodeId> {
    CALL.try_with(|c| c.peer).ok()
}

/// When the caller of the request the current task is serving stops waiting.
/// Calls made while serving it (nested calls, callbacks) get no later a deadline.
pub fn call_deadline() -> Option<tokio::time::Instant> {
    CALL.try_with(|c| c.deadline).ok().flatten()
}

/// Runs `fut` as serving a request of `peer` due by `deadline`.
pub(crate) async fn as_caller<F: Future>(
    peer: NodeId,
    deadline: Option<tokio::time::Instant>,
    fut: F,
) -> F::Output {
    CALL.scope(CallContext { peer, deadline }, fut).await
}

thread_local! {
    /// Node on whose behalf values are being encoded or decoded on this
    /// thread, and the peer they go to or come from (if a call's).
    static CURRENT: RefCell<Option<(Arc<NodeInner>, Option<NodeId>)>> = const { RefCell::new(None) };
    /// Typed error of the last reference that failed to decode, so that it
    /// survives serde's string-only custom errors.
    static REF_ERROR: RefCell<Option<RpcError>> = const { RefCell::new(None) };
    /// Set while a method's result is encoded, so that values which travel
    /// differently in a reply (a `DataRef`'s copy back) can tell.
    static REPLYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Object id the next new export on this thread must use (see `Node::export_as`).
    static FIXED_ID: RefCell<Option<crate::ids::ObjectId>> = const { RefCell::new(None) };
}

/// Runs `f` as encoding the result of a call.
fn as_reply<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            REPLYING.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(REPLYING.with(|c| c.replace(true)));
    f()
}

/// True while the result of a call is being encoded on this thread.
pub(crate) fn replying() -> bool {
    REPLYING.with(std::cell::Cell::get)
}

/// Runs `f` so that a local object it exports for the first time gets `id`.
pub(crate) fn with_fixed_id<R>(id: crate::ids::ObjectId, f: impl FnOnce() -> R) -> R {
    FIXED_ID.with(|c| *c.borrow_mut() = Some(id));
    let r = f();
    FIXED_ID.with(|c| *c.borrow_mut() = None);
    r
}

/// Runs `f` with `node` as the current node for reference encoding and
/// decoding, for values exchanged with `peer`.
pub(crate) fn with_node<R>(
    node: &Arc<NodeInner>,
    peer: Option<NodeId>,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<(Arc<NodeInner>, Option<NodeId>)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let prev = CURRENT.with(|c| c.borrow_mut().replace((Arc::clone(node), peer)));
    let _restore = Restore(prev);
    f()
}

fn not_in_call() -> RpcError {
    RpcError::Encode {
        what: "remote reference".into(),
        reason: "remote references can only be encoded and decoded by the rpc runtime".into(),
    }
}

fn current_node() -> Result<Arc<NodeInner>, RpcError> {
    CURRENT
        .with(|c| c.borrow().as_ref().map(|(n, _)| Arc::clone(n)))
        .ok_or_else(not_in_call)
}

/// The node encoding or decoding on this thread, and the call's peer.
pub(crate) fn current_node_and_peer() -> Result<(Arc<NodeInner>, Option<NodeId>), RpcError> {
    CURRENT
        .with(|c| c.borrow().as_ref().map(|(n, p)| (Arc::clone(n), *p)))
        .ok_or_else(not_in_call)
}

fn take_ref_error() -> Option<RpcError> {
    REF_ERROR.with(|e| e.borrow_mut().take())
}

/// Encodes `v` as CBOR on behalf of `node`.
pub(crate) fn encode_payload<T: Serialize + ?Sized>(
    node: &Arc<NodeInner>,
    peer: Option<NodeId>,
    v: &T,
    what: &str,
) -> Result<Payload, RpcError> {
    let mut buf = Vec::new();
    take_ref_error();
    let r = with_node(node, peer, || ciborium::into_writer(v, &mut buf));
    match r {
        Ok(()) => Ok(Payload(buf)),
        Err(e) => Err(take_ref_error().unwrap_or_else(|| RpcError::Encode {
            what: what.to_owned(),
            reason: e.to_string(),
        })),
    }
}

/// Decodes CBOR bytes on behalf of `node`.
pub(crate) fn decode_payload<T: DeserializeOwned>(
    node: &Arc<NodeInner>,
    p: &Payload,
    what: &str,
) -> Result<T, RpcError> {
    take_ref_error();
    let mut rest = &p.0[..];
    // A big payload (a large value pulled in) is decoded with a big scratch
    // buffer, or its byte strings would be copied out in small pieces.
    let mut small = [0u8; crate::wire::codec::DECODE_SCRATCH];
    let mut big = Vec::new();
    let scratch: &mut [u8] = if p.0.len() > crate::wire::codec::DECODE_SCRATCH * 64 {
        big.resize(crate::wire::codec::BIG_DECODE_SCRATCH, 0);
        &mut big
    } else {
        &mut small
    };
    let r = with_node(node, None, || {
        ciborium::de::from_reader_with_buffer::<T, _>(&mut rest, scratch)
    });
    match r {
        Ok(v) if rest.is_empty() => Ok(v),
        Ok(_) => Err(RpcError::Decode {
            what: what.to_owned(),
            reason: format!("{} trailing bytes", rest.len()),
        }),
        Err(e) => Err(take_ref_error().unwrap_or_else(|| RpcError::Decode {
            what: what.to_owned(),
            reason: e.to_string(),
        })),
    }
}

fn stash_de<E: serde::de::Error>(e: RpcError) -> E {
    let msg = e.to_string();
    REF_ERROR.with(|slot| *slot.borrow_mut() = Some(e));
    E::custom(msg)
}

fn stash_ser<E: serde::ser::Error>(e: RpcError) -> E {
    let msg = e.to_string();
    REF_ERROR.with(|slot| *slot.borrow_mut() = Some(e));
    E::custom(msg)
}

/// Serializes a local object as a capability, exporting it from the current node.
///
/// `key` is the object's address; `make` builds its server proxy and local handle
/// the first time it is exported.
pub fn serialize_local<S: Serializer>(
    s: S,
    key: usize,
    class: &'static ClassInfo,
    make: impl FnOnce() -> (Arc<dyn ServerProxy>, Box<dyn Any + Send + Sync>),
) -> Result<S::Ok, S::Error> {
    let node = current_node().map_err(stash_ser)?;
    let fixed = FIXED_ID.with(|c| c.borrow_mut().take());
    let id = node
        .exports
        .export(key, class, fixed, node.config.lease, make);
    Capability {
        object: id,
        class: class.id,
        version: class.version,
        home: node.com_handle(),
    }
    .serialize(s)
}

/// Serializes a remote reference as its capability.
pub fn serialize_remote<S: Serializer>(s: S, h: &RemoteHandle) -> Result<S::Ok, S::Error> {
    h.capability().serialize(s)
}

/// Deserializes a capability into a reference of type `R` on the current node.
pub fn deserialize_ref<'de, D: Deserializer<'de>, R: RemoteRef>(d: D) -> Result<R, D::Error> {
    let cap = Capability::deserialize(d)?;
    let node = current_node().map_err(stash_de)?;
    resolve::<R>(&node, cap).map_err(stash_de)
}

/// Turns a capability into a reference: the real object if it lives on `node`,
/// the shared proxy otherwise.
pub(crate) fn resolve<R: RemoteRef>(node: &Arc<NodeInner>, cap: Capability) -> Result<R, RpcError> {
    let want = R::CLASS;
    if cap.class != want.id {
        return Err(RpcError::WrongClass {
            expected: want.name.to_owned(),
            found: class_name(cap.class),
        });
    }
    if cap.version != want.version {
        return Err(RpcError::VersionMismatch {
            class: want.name.to_owned(),
            local: want.version.0,
            remote: cap.version.0,
        });
    }
    if cap.home.node == node.id {
        let export = node
            .exports
            .get(&cap.object)
            .ok_or(RpcError::NoSuchObject { object: cap.object })?;
        return R::from_local_any(&*export.local).ok_or_else(|| RpcError::WrongClass {
            expected: want.name.to_owned(),
            found: export.class.name.to_owned(),
        });
    }
    let home = cap.home.clone();
    let object = cap.object;
    let (obj, new) = node.imports.get_or_insert(object, || {
        Arc::new(RemoteObject {
            cap,
            node: Arc::clone(node),
        })
    });
    if new {
        // Take a lease on it (batched with others for the same home).
        node.gc.dirty(&home, object);
    }
    Ok(R::from_remote(RemoteHandle {
        obj,
        class: want,
        timeout: None,
    }))
}

/// The ComHandle a node puts into the capabilities it exports.
impl NodeInner {
    pub(crate) fn com_handle(&self) -> ComHandle {
        ComHandle {
            node: self.id,
            addr: self.listen_addr(),
        }
    }
}
