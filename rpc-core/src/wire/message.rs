//! The envelope: every frame body is one [`Message`].
//!
//! Requests carry an IPC header, an RPC header and an argument list whose first
//! element is the method name and second the argument count; the arguments
//! themselves stay opaque CBOR (one byte string each) until the target class's
//! dispatcher decodes them, so the envelope never needs user types.

use crate::error::RpcError;
use crate::ids::{CallId, Capability, NodeId, ObjectId, TransferId};
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Version of this wire protocol; peers with another version are refused at handshake.
pub const PROTOCOL_VERSION: u32 = 2;

/// One encoded value (an argument, a result or an application error) as CBOR bytes.
///
/// Travels as a CBOR byte string, never as an array of integers.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.0.len())
    }
}

/// Describes a large value its sender keeps for the receiver to pull in
/// chunks, sent in place of the bytes (the seed's TransferMetadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferMeta {
    /// Unique id of the transfer on the sender.
    pub id: TransferId,
    /// Node that holds the bytes.
    pub sender: NodeId,
    /// The only node allowed to pull them.
    pub receiver: NodeId,
    /// Total size in bytes.
    pub size: u64,
    /// CRC-32 of all bytes, when the sender knows it up front (in-memory
    /// values); every chunk also carries its own CRC-32.
    pub checksum: Option<u32>,
}

/// One argument, result or error value of a call: inline bytes, or a
/// reference to a large value to pull. Inline travels as a CBOR byte string,
/// a reference as an array, so the two never look alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// The encoded value itself.
    Inline(Payload),
    /// A large encoded value, to be pulled from its sender.
    Transfer(TransferMeta),
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Arg::Inline(p) => p.serialize(s),
            Arg::Transfer(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Arg;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string or a transfer reference")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Arg, E> {
                Ok(Arg::Inline(Payload(v.to_vec())))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Arg, E> {
                Ok(Arg::Inline(Payload(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arg, A::Error> {
                let missing = || de::Error::custom("truncated transfer reference");
                Ok(Arg::Transfer(TransferMeta {
                    id: seq.next_element()?.ok_or_else(missing)?,
                    sender: seq.next_element()?.ok_or_else(missing)?,
                    receiver: seq.next_element()?.ok_or_else(missing)?,
                    size: seq.next_element()?.ok_or_else(missing)?,
                    checksum: seq.next_element()?.ok_or_else(missing)?,
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// A frame body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// First frame in each direction: who is speaking, and which protocol.
    #[serde(rename = "hello")]
    Hello(Hello),
    /// A call to an object on the receiving node.
    #[serde(rename = "req")]
    Request(Request),
    /// The answer to an earlier request of the receiving node.
    #[serde(rename = "resp")]
    Response(Response),
    /// The caller no longer wants the answer to this call: stop the work.
    #[serde(rename = "cancel")]
    Cancel(IpcHeader),
    /// The sender is closing the connection because of this error.
    #[serde(rename = "close")]
    Close(RpcError),
    /// Are you there? Answered by `Pong` with the same number.
    #[serde(rename = "ping")]
    Ping(u64),
    /// The answer to a `Ping`.
    #[serde(rename = "pong")]
    Pong(u64),
    /// The sender holds proxies to these objects of the receiver: lease them
    /// to it for `lease_ms` more (Java RMI's dirty call).
    #[serde(rename = "dirty")]
    Dirty {
        /// Objects of the receiver.
        objects: Vec<ObjectId>,
        /// Lease length in milliseconds.
        lease_ms: u64,
    },
    /// The sender dropped its last proxy to these objects (Java RMI's clean call).
    #[serde(rename = "clean")]
    Clean {
        /// Objects of the receiver.
        objects: Vec<ObjectId>,
    },
    /// Receiver of a transfer asks for `len` bytes at `offset`.
    #[serde(rename = "creq")]
    ChunkRequest {
        /// The transfer.
        id: TransferId,
        /// First byte wanted.
        offset: u64,
        /// Bytes wanted.
        len: u32,
    },
    /// Sender of a transfer answers a chunk request.
    #[serde(rename = "chunk")]
    Chunk {
        /// The transfer.
        id: TransferId,
        /// Position of `data` in the value.
        offset: u64,
        /// The bytes.
        data: Payload,
        /// CRC-32 of `data`.
        crc: u32,
    },
    /// Sender of a transfer refuses a chunk request (unknown transfer, not
    /// the receiver's, past the end, read error).
    #[serde(rename = "cerr")]
    ChunkError {
        /// The transfer.
        id: TransferId,
        /// Why.
        error: RpcError,
    },
    /// Receiver is done with a transfer (all bytes in, or giving up): free it.
    #[serde(rename = "xend")]
    TransferEnd {
        /// The transfer.
        id: TransferId,
        /// True when every byte arrived intact.
        ok: bool,
    },
}

/// Handshake frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The sender's node id.
    pub node: NodeId,
    /// The sender's listening address, if it accepts connections.
    pub listen: Option<String>,
    /// Largest frame body the sender accepts, in bytes; the peer refuses
    /// locally to send more instead of having the connection closed on it.
    pub max_frame: u64,
    /// Over TLS: the seed the sender's node id is derived from together
    /// with its certificate's name (`NodeId::derive`), so that the peer can
    /// check the claimed id. Absent in plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<uuid::Uuid>,
}

/// What a frame is, repeated in its IPC header as the seed's layout has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageKind {
    /// A request.
    #[serde(rename = "q")]
    Request,
    /// A response.
    #[serde(rename = "r")]
    Response,
    /// A cancellation.
    #[serde(rename = "c")]
    Cancel,
}

/// Inter-process header: routing and call matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcHeader {
    /// Kind of message.
    pub kind: MessageKind,
    /// Call id chosen by the caller; the response repeats it.
    pub call_id: CallId,
    /// Node that sent this frame.
    pub sender: NodeId,
    /// Node this frame is for.
    pub receiver: NodeId,
}

/// RPC header of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The object called, with the class and version the caller's stub speaks.
    pub target: Capability,
    /// Method number: present for layout compatibility with the seed, never used.
    pub method_id: u32,
    /// Time the caller still waits for an answer, in milliseconds.
    pub deadline_ms: Option<u64>,
    /// The caller set the deadline itself (or inherited it from a call it
    /// serves): it then also bounds pulling the call's large arguments.
    /// Otherwise it is the node's default, which bounds the method only: a
    /// pull that keeps making progress is bounded by the transfer timeout.
    pub deadline_explicit: bool,
    /// The trace the call belongs to and the caller's span in it.
    pub trace: Option<TraceContext>,
}

/// Where a call sits in a distributed trace, as W3C `traceparent` lays it
/// out: the trace id shared by every call of one operation, and the span of
/// the caller that made this call (its parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace: 16 random bytes, the same on every node the operation reaches.
    pub trace_id: u128,
    /// The span of the caller (a served call, or a random root id).
    pub parent_span: u64,
}

impl TraceContext {
    /// A new trace, with a random root span as the parent.
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: (u128::from(random_span_id()) << 64) | u128::from(random_span_id()),
            parent_span: random_span_id(),
        }
    }

    /// The W3C `traceparent` header text: `00-<trace id>-<parent id>-01`.
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.parent_span)
    }
}

/// A random, non-zero span id. Ids name spans, they grant nothing: a
/// per-thread xorshift seeded once from the OS, not a syscall per call.
pub fn random_span_id() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u128() as u64 | 1);
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1
    })
}

/// A request frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Routing.
    pub ipc: IpcHeader,
    /// Target and deadline.
    pub rpc: RequestHeader,
    /// Method name, argument count, then the arguments.
    pub args: ArgList,
}

/// `[method name, argument count, arg0, arg1, ...]` on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgList {
    /// Name of the method to invoke.
    pub method: String,
    /// The encoded arguments; their count travels as the list's second element.
    pub args: Vec<Arg>,
}

impl ArgList {
    /// The argument list of a call of `method` with encoded `args`.
    pub fn new(method: &str, args: Vec<Arg>) -> ArgList {
        ArgList {
            method: method.to_owned(),
            args,
        }
    }
}

impl Serialize for ArgList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.args.len() + 2))?;
        seq.serialize_element(&self.method)?;
        seq.serialize_element(&(self.args.len() as u64))?;
        for a in &self.args {
            seq.serialize_element(a)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for ArgList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArgList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[method name, argument count, arguments...]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ArgList, A::Error> {
                let method: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("argument list lacks the method name"))?;
                let count: u64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("argument list lacks the argument count"))?;
                // Do not trust the count for allocation; it is checked against
                // what actually arrived.
                let mut args = Vec::new();
                while let Some(a) = seq.next_element::<Arg>()? {
                    args.push(a);
                }
                if args.len() as u64 != count {
                    return Err(de::Error::custom(format!(
                        "argument count says {count} but {} arguments follow",
                        args.len()
                    )));
                }
                Ok(ArgList { method, args })
            }
        }
        d.deserialize_seq(V)
    }
}

/// Whether a response holds out arguments or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseType {
    /// Out arguments follow.
    #[serde(rename = "ok")]
    Valid,
    /// An error follows.
    #[serde(rename = "err")]
    Error,
}

/// RPC header of a response: only the response type, as in the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Valid or error.
    pub response_type: ResponseType,
}

/// What a response carries after its headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ResponseBody {
    /// The out arguments of a successful call.
    #[serde(rename = "out")]
    Out(Vec<Arg>),
    /// The method ran and returned its own error value (encoded with the method's error type).
    #[serde(rename = "app")]
    Application(Arg),
    /// The runtime could not run the call, or the call failed in the runtime.
    #[serde(rename = "sys")]
    System(RpcError),
}

/// A response frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Routing; the call id is the request's.
    pub ipc: IpcHeader,
    /// Valid or error.
    pub rpc: ResponseHeader,
    /// Out arguments or error.
    pub body: ResponseBody,
}

impl Response {
    /// Builds a response whose header agrees with its body.
    pub fn new(ipc: IpcHeader, body: ResponseBody) -> Self {
        let response_type = match body {
            ResponseBody::Out(_) => ResponseType::Valid,
            _ => ResponseType::Error,
        };
        Response {
            ipc,
            rpc: ResponseHeader { response_type },
            body,
        }
    }
}

use crate::positional::positional_serde;

positional_serde!(IpcHeader {
    kind: MessageKind,
    call_id: CallId,
    sender: NodeId,
    receiver: NodeId,
});

positional_serde!(RequestHeader {
    target: Capability,
    method_id: u32,
    deadline_ms: Option<u64>,
    deadline_explicit: bool,
    trace: Option<TraceContext>,
});

positional_serde!(TraceContext {
    trace_id: u128,
    parent_span: u64,
});

positional_serde!(Request {
    ipc: IpcHeader,
    rpc: RequestHeader,
    args: ArgList,
});

positional_serde!(ResponseHeader {
    response_type: ResponseType,
});

positional_serde!(Response {
    ipc: IpcHeader,
    rpc: ResponseHeader,
    body: ResponseBody,
});

positional_serde!(TransferMeta {
    id: TransferId,
    sender: NodeId,
    receiver: NodeId,
    size: u64,
    checksum: Option<u32>,
});
