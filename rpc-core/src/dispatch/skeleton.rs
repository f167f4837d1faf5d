//! The server side of the contract with `#[remote]`-generated code: a
//! [`ServerProxy`] (skeleton) receives an [`IncomingCall`] whose arguments
//! are still opaque bytes, decodes them itself and encodes the reply.

use super::codec::{as_reply, decode_owned, decode_payload, encode_payload};
use super::core::Core;
use crate::error::RpcError;
use crate::ids::NodeId;
use crate::registry::classes::ClassInfo;
use crate::wire::ResponseBody;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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
    pub(crate) core: Arc<Core>,
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
        decode_payload(&self.core, p, name).map_err(|e| self.bad_arg::<T>(e, index, name))
    }

    /// Decodes argument `index` as [`IncomingCall::arg`] does, a large one on
    /// the blocking pool, and frees its encoding there too.
    ///
    /// # Errors
    /// As [`IncomingCall::arg`].
    pub async fn arg_owned<T: DeserializeOwned + Send + 'static>(
        &mut self,
        index: usize,
        name: &str,
    ) -> Result<T, RpcError> {
        let Some(p) = self.args.get_mut(index) else {
            return self.arg(index, name);
        };
        let p = std::mem::take(p);
        decode_owned(&self.core, p, name)
            .await
            .map_err(|e| self.bad_arg::<T>(e, index, name))
    }

    /// A decode error of argument `index` as the caller sees it.
    fn bad_arg<T>(&self, e: RpcError, index: usize, name: &str) -> RpcError {
        match e {
            RpcError::Decode { reason, .. } => RpcError::BadArguments {
                method: self.method.clone(),
                reason: format!(
                    "argument `{name}` (#{index}, {}): {reason}",
                    std::any::type_name::<T>()
                ),
            },
            other => other,
        }
    }

    /// Takes argument `index`, a byte buffer, out of the call: the bytes stay
    /// in the buffer they arrived in.
    ///
    /// # Errors
    /// [`RpcError::BadArguments`] as [`IncomingCall::arg`].
    pub fn arg_bytes<T: super::bytes::ByteValue>(
        &mut self,
        index: usize,
        name: &str,
    ) -> Result<T, RpcError> {
        let Some(p) = self.args.get_mut(index) else {
            return self
                .arg::<serde_bytes::ByteBuf>(index, name)
                .map(|b| T::from_vec(b.into_vec()));
        };
        match super::bytes::from_payload(std::mem::take(p)) {
            Ok(v) => Ok(T::from_vec(v)),
            Err(back) => {
                // Not one byte string: the generic decoder takes what serde would.
                *p = back;
                self.arg::<serde_bytes::ByteBuf>(index, name)
                    .map(|b| T::from_vec(b.into_vec()))
            }
        }
    }

    /// Encodes a method's byte-buffer result as one CBOR byte string, in its
    /// own buffer; an error as [`IncomingCall::reply`] does.
    pub fn reply_bytes<T: super::bytes::ByteValue, E: Serialize>(
        &self,
        result: Result<T, E>,
    ) -> ResponseBody {
        match result {
            Ok(v) => match self
                .core
                .transfers
                .route_one(super::bytes::to_payload(v), self.peer)
            {
                Ok(a) => ResponseBody::Out(vec![a]),
                Err(e) => ResponseBody::System(e),
            },
            Err(e) => self.reply::<(), E>(Err(e)),
        }
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
            Ok(v) => match as_reply(|| encode_payload(&self.core, Some(self.peer), &v, "result"))
                .and_then(|p| self.core.transfers.route_one(p, self.peer))
            {
                Ok(a) => ResponseBody::Out(vec![a]),
                Err(e) => ResponseBody::System(e),
            },
            Err(e) => match encode_payload(&self.core, Some(self.peer), &e, "error")
                .and_then(|p| self.core.transfers.route_one(p, self.peer))
            {
                Ok(a) => ResponseBody::Application(a),
                Err(e) => ResponseBody::System(e),
            },
        }
    }
}
