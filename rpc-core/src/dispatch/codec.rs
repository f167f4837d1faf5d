//! Encoding and decoding call values on behalf of a node. Serde knows no
//! node, so the node encoding or decoding is set for the current thread
//! around every encode and decode: a local object met while encoding is
//! exported from it, a capability met while decoding becomes its proxy (or
//! the real object, when it comes home).

use super::core::Core;
use super::handle::{RemoteHandle, RemoteObject, RemoteRef};
use super::skeleton::ServerProxy;
use crate::error::RpcError;
use crate::ids::{Capability, NodeId};
use crate::registry::classes::{ClassInfo, class_name};
use crate::wire::Payload;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    /// Node on whose behalf values are being encoded or decoded on this
    /// thread: where local references are exported and remote ones imported.
    static CURRENT: RefCell<Option<Arc<Core>>> = const { RefCell::new(None) };
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
pub(crate) fn as_reply<R>(f: impl FnOnce() -> R) -> R {
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

/// Runs `f` with `core` as the current node for reference encoding and
/// decoding (and its transfers for blobs), for values exchanged with `peer`.
fn with_core<R>(core: &Arc<Core>, peer: Option<NodeId>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Core>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    let prev = CURRENT.with(|c| c.borrow_mut().replace(Arc::clone(core)));
    let _restore = Restore(prev);
    crate::transfer::with_scope(&core.transfers, peer, f)
}

fn not_in_call() -> RpcError {
    RpcError::Encode {
        what: "remote reference".into(),
        reason: "remote references can only be encoded and decoded by the rpc runtime".into(),
    }
}

fn current_core() -> Result<Arc<Core>, RpcError> {
    CURRENT.with(|c| c.borrow().clone()).ok_or_else(not_in_call)
}

fn take_ref_error() -> Option<RpcError> {
    REF_ERROR.with(|e| e.borrow_mut().take())
}

/// Encodes `v` as CBOR on behalf of `node`.
pub(crate) fn encode_payload<T: Serialize + ?Sized>(
    core: &Arc<Core>,
    peer: Option<NodeId>,
    v: &T,
    what: &str,
) -> Result<Payload, RpcError> {
    // Room for a small value without regrowing (a u64 is up to 9 bytes).
    let mut buf = Vec::with_capacity(32);
    take_ref_error();
    let r = with_core(core, peer, || ciborium::into_writer(v, &mut buf));
    match r {
        Ok(()) => Ok(Payload(buf)),
        Err(e) => Err(take_ref_error()
            .or_else(crate::transfer::take_error)
            .unwrap_or_else(|| RpcError::Encode {
                what: what.to_owned(),
                reason: e.to_string(),
            })),
    }
}

/// Encodings larger than this are decoded on tokio's blocking pool by
/// [`decode_owned`]: a large structured value (pulled in as a transfer) takes
/// milliseconds to decode, which would stop the runtime thread (on the
/// current-thread runtime, the whole node). Same as the size up to which
/// pulled values are copied in place.
const DECODE_OFF_RUNTIME: usize = 1 << 20;

/// Decodes `p` as [`decode_payload`] does; a large one on the blocking pool,
/// where its encoding is freed too.
pub(crate) async fn decode_owned<T: DeserializeOwned + Send + 'static>(
    core: &Arc<Core>,
    p: Payload,
    what: &str,
) -> Result<T, RpcError> {
    if p.0.len() <= DECODE_OFF_RUNTIME {
        return decode_payload(core, &p, what);
    }
    let (core, owned) = (Arc::clone(core), what.to_owned());
    tokio::task::spawn_blocking(move || decode_payload::<T>(&core, &p, &owned))
        .await
        .unwrap_or_else(|_| {
            Err(RpcError::Decode {
                what: what.to_owned(),
                reason: "the decoder panicked".into(),
            })
        })
}

/// Decodes CBOR bytes on behalf of `node`.
pub(crate) fn decode_payload<T: DeserializeOwned>(
    core: &Arc<Core>,
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
    let r = with_core(core, None, || {
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
    let core = current_core().map_err(stash_ser)?;
    let fixed = FIXED_ID.with(|c| c.borrow_mut().take());
    let id = core
        .exports
        .export(key, class, fixed, core.config.lease, make);
    Capability {
        object: id,
        class: class.id,
        version: class.version,
        home: core.peers.com_handle(),
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
    let core = current_core().map_err(stash_de)?;
    resolve::<R>(&core, cap).map_err(stash_de)
}

/// Turns a capability into a reference: the real object if it lives on `core`'s node,
/// the shared proxy otherwise.
pub(crate) fn resolve<R: RemoteRef>(core: &Arc<Core>, cap: Capability) -> Result<R, RpcError> {
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
    if cap.home.node == core.id {
        let export = core
            .exports
            .get(&cap.object)
            .ok_or(RpcError::NoSuchObject { object: cap.object })?;
        return R::from_local_any(&*export.local).ok_or_else(|| RpcError::WrongClass {
            expected: want.name.to_owned(),
            found: export.class.name.to_owned(),
        });
    }
    Ok(R::from_remote(RemoteHandle::new(import(core, cap), want)))
}

/// The shared proxy state of a remote capability, leased on first import.
fn import(core: &Arc<Core>, cap: Capability) -> Arc<RemoteObject> {
    let home = cap.home.clone();
    let object = cap.object;
    let (obj, new) = core.imports.get_or_insert(object, || {
        Arc::new(RemoteObject {
            cap,
            core: Arc::clone(core),
        })
    });
    if new {
        // Take a lease on it (batched with others for the same home).
        core.gc.dirty(&home, object);
    }
    obj
}

/// A handle calling a remote capability as whatever class it names (see
/// [`crate::Node::call_dynamic`]).
pub(crate) fn resolve_dynamic(core: &Arc<Core>, cap: Capability) -> Result<RemoteHandle, RpcError> {
    if cap.home.node == core.id {
        return Err(RpcError::Unreachable {
            peer: format!("{:?}", cap.home.node),
            reason: "a dynamic call goes to another node; this object lives here".into(),
        });
    }
    Ok(RemoteHandle::dynamic(import(core, cap)))
}
