//! A direct decoder and encoder for the two frames every call exchanges, a
//! request with inline arguments and a successful response with inline
//! results, and for transfer chunks (whose bytes serde copies out in pieces
//! through a scratch buffer it zeroes first; chunks are also framed from the
//! bytes where they lie, and [`chunk_parts`] lets the reader hand a chunk's
//! bytes on as a slice of its buffer). Both read and write exactly the CBOR
//! that serde writes for them (see `codec`'s golden-byte tests and the tests
//! below) and give up on anything else, leaving it to serde, errors
//! included. serde's generic path cost about a fifth of each side's CPU per
//! null call (rpc-bench, multi-thread runtime).

use super::message::{
    Arg, ArgList, IpcHeader, Message, MessageKind, Payload, Request, RequestHeader, Response,
    ResponseBody, ResponseHeader, ResponseType, TraceContext,
};
use crate::ids::{Capability, ClassId, ClassVersion, ComHandle, NodeId, ObjectId, TransferId};
use uuid::Uuid;

/// CBOR major types used here.
const UINT: u8 = 0;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const TAG: u8 = 6;
const SIMPLE: u8 = 7;

/// CBOR simple values.
const FALSE: u64 = 20;
const TRUE: u64 = 21;
const NULL: u64 = 22;

/// Positive bignum tag (how a `u128` above `u64::MAX` is written).
const BIGNUM: u64 = 2;

/// Reads CBOR items off the front of a body.
struct Cur<'a> {
    b: &'a [u8],
}

impl<'a> Cur<'a> {
    /// The next item's major type and argument, not consumed.
    fn peek(&self) -> Option<(u8, u64, usize)> {
        let ib = *self.b.first()?;
        let (major, ai) = (ib >> 5, ib & 0x1f);
        let (val, used) = match ai {
            0..=23 => (u64::from(ai), 1),
            24 => (u64::from(*self.b.get(1)?), 2),
            25 => (
                u64::from(u16::from_be_bytes(self.b.get(1..3)?.try_into().ok()?)),
                3,
            ),
            26 => (
                u64::from(u32::from_be_bytes(self.b.get(1..5)?.try_into().ok()?)),
                5,
            ),
            27 => (u64::from_be_bytes(self.b.get(1..9)?.try_into().ok()?), 9),
            // Indefinite lengths, reserved values, floats: not ours.
            _ => return None,
        };
        Some((major, val, used))
    }

    /// The next item's head, which must be of `major`; its argument.
    fn head(&mut self, major: u8) -> Option<u64> {
        let (m, val, used) = self.peek()?;
        if m != major {
            return None;
        }
        self.b = &self.b[used..];
        Some(val)
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let (x, rest) = (self.b.get(..n)?, self.b.get(n..)?);
        self.b = rest;
        Some(x)
    }

    fn array(&mut self, n: u64) -> Option<()> {
        (self.head(ARRAY)? == n).then_some(())
    }

    fn uint(&mut self) -> Option<u64> {
        self.head(UINT)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.head(BYTES)?;
        self.take(n)
    }

    fn text(&mut self) -> Option<&'a str> {
        let n = self.head(TEXT)?;
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn uuid(&mut self) -> Option<Uuid> {
        Some(Uuid::from_bytes(self.bytes()?.try_into().ok()?))
    }

    /// True (and consumed) if the next item is null.
    fn null(&mut self) -> bool {
        if matches!(self.peek(), Some((SIMPLE, NULL, _))) {
            self.b = &self.b[1..];
            true
        } else {
            false
        }
    }

    fn bool(&mut self) -> Option<bool> {
        match self.head(SIMPLE)? {
            FALSE => Some(false),
            TRUE => Some(true),
            _ => None,
        }
    }

    fn u128(&mut self) -> Option<u128> {
        match self.peek()? {
            (UINT, v, _) => {
                self.uint()?;
                Some(u128::from(v))
            }
            (TAG, BIGNUM, _) => {
                self.head(TAG)?;
                let b = self.bytes()?;
                if b.len() > 16 {
                    return None;
                }
                Some(b.iter().fold(0u128, |acc, &x| (acc << 8) | u128::from(x)))
            }
            _ => None,
        }
    }

    fn ipc(&mut self, kind: MessageKind) -> Option<IpcHeader> {
        self.array(4)?;
        let k = match (self.text()?, kind) {
            ("q", MessageKind::Request) | ("r", MessageKind::Response) => kind,
            _ => return None,
        };
        Some(IpcHeader {
            kind: k,
            call_id: self.uint()?,
            sender: NodeId(self.uuid()?),
            receiver: NodeId(self.uuid()?),
        })
    }

    /// Arguments that are all inline byte strings, `n` of them.
    fn inline_args(&mut self, n: u64) -> Option<Vec<Arg>> {
        let mut out = Vec::with_capacity(usize::try_from(n).ok()?.min(64));
        for _ in 0..n {
            out.push(Arg::Inline(Payload(self.bytes()?.to_vec())));
        }
        Some(out)
    }

    fn request(&mut self) -> Option<Request> {
        self.array(3)?;
        let ipc = self.ipc(MessageKind::Request)?;
        self.array(5)?;
        self.array(4)?;
        let object = ObjectId(self.uuid()?);
        let class = ClassId(self.uint()?);
        let version = ClassVersion(self.uint()?);
        self.array(2)?;
        let node = NodeId(self.uuid()?);
        let addr = if self.null() {
            None
        } else {
            Some(self.text()?.to_owned())
        };
        let method_id = u32::try_from(self.uint()?).ok()?;
        let deadline_ms = if self.null() {
            None
        } else {
            Some(self.uint()?)
        };
        let deadline_explicit = self.bool()?;
        let trace = if self.null() {
            None
        } else {
            self.array(2)?;
            Some(TraceContext {
                trace_id: self.u128()?,
                parent_span: self.uint()?,
            })
        };
        let n = self.head(ARRAY)?;
        let method = self.text()?.to_owned();
        if self.uint()? != n.checked_sub(2)? {
            return None;
        }
        let args = self.inline_args(n - 2)?;
        Some(Request {
            ipc,
            rpc: RequestHeader {
                target: Capability {
                    object,
                    class,
                    version,
                    home: ComHandle { node, addr },
                },
                method_id,
                deadline_ms,
                deadline_explicit,
                trace,
            },
            args: ArgList { method, args },
        })
    }

    /// A transfer chunk's fields, in the order serde writes them; `body_len`
    /// is the length of the body this cursor started on, to say where the
    /// data lies in it.
    fn chunk(&mut self, body_len: usize) -> Option<ChunkParts> {
        if self.head(MAP)? != 4 || self.text()? != "id" {
            return None;
        }
        let id = TransferId(self.uuid()?);
        if self.text()? != "offset" {
            return None;
        }
        let offset = self.uint()?;
        if self.text()? != "data" {
            return None;
        }
        let n = self.bytes()?.len();
        let end = body_len - self.b.len();
        if self.text()? != "crc" {
            return None;
        }
        let crc = u32::try_from(self.uint()?).ok()?;
        Some(ChunkParts {
            id,
            offset,
            data: end - n..end,
            crc,
        })
    }

    fn response(&mut self) -> Option<Response> {
        self.array(3)?;
        let ipc = self.ipc(MessageKind::Response)?;
        self.array(1)?;
        if self.text()? != "ok" {
            return None;
        }
        if self.head(MAP)? != 1 || self.text()? != "out" {
            return None;
        }
        let n = self.head(ARRAY)?;
        let args = self.inline_args(n)?;
        Some(Response {
            ipc,
            rpc: ResponseHeader {
                response_type: ResponseType::Valid,
            },
            body: ResponseBody::Out(args),
        })
    }
}

/// Appends a CBOR head of `major` with argument `val`, shortest form.
fn put_head(out: &mut Vec<u8>, major: u8, val: u64) {
    let m = major << 5;
    match val {
        0..=23 => out.push(m | val as u8),
        24..=0xff => out.extend([m | 24, val as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend((val as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend((val as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend(val.to_be_bytes());
        }
    }
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put_head(out, TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The body of `Message::Chunk { id, offset, data, crc }` exactly as serde
/// writes it, appended to `out` with one copy of `data`.
pub(crate) fn encode_chunk(out: &mut Vec<u8>, id: TransferId, offset: u64, data: &[u8], crc: u32) {
    out.reserve(data.len() + 64);
    put_head(out, MAP, 1);
    put_text(out, "chunk");
    put_head(out, MAP, 4);
    put_text(out, "id");
    put_head(out, BYTES, 16);
    out.extend_from_slice(id.0.as_bytes());
    put_text(out, "offset");
    put_head(out, UINT, offset);
    put_text(out, "data");
    put_head(out, BYTES, data.len() as u64);
    out.extend_from_slice(data);
    put_text(out, "crc");
    put_head(out, UINT, u64::from(crc));
}

fn put_uuid(out: &mut Vec<u8>, id: &Uuid) {
    put_head(out, BYTES, 16);
    out.extend_from_slice(id.as_bytes());
}

fn put_null(out: &mut Vec<u8>) {
    put_head(out, SIMPLE, NULL);
}

/// A `u128` as serde writes it: a plain integer when it fits in 64 bits,
/// else a positive bignum without leading zero bytes.
fn put_u128(out: &mut Vec<u8>, v: u128) {
    if let Ok(x) = u64::try_from(v) {
        put_head(out, UINT, x);
        return;
    }
    let bytes = v.to_be_bytes();
    let lead = bytes.iter().take_while(|&&b| b == 0).count();
    put_head(out, TAG, BIGNUM);
    put_head(out, BYTES, (bytes.len() - lead) as u64);
    out.extend_from_slice(&bytes[lead..]);
}

fn put_ipc(out: &mut Vec<u8>, ipc: &IpcHeader, kind: &str) {
    put_head(out, ARRAY, 4);
    put_text(out, kind);
    put_head(out, UINT, ipc.call_id);
    put_uuid(out, &ipc.sender.0);
    put_uuid(out, &ipc.receiver.0);
}

fn all_inline(args: &[Arg]) -> bool {
    args.iter().all(|a| matches!(a, Arg::Inline(_)))
}

/// Inline arguments as byte strings (the caller checked [`all_inline`]).
fn put_inline_args(out: &mut Vec<u8>, args: &[Arg]) {
    for a in args {
        if let Arg::Inline(p) = a {
            put_head(out, BYTES, p.0.len() as u64);
            out.extend_from_slice(&p.0);
        }
    }
}

fn put_request(out: &mut Vec<u8>, r: &Request) {
    put_head(out, MAP, 1);
    put_text(out, "req");
    put_head(out, ARRAY, 3);
    put_ipc(out, &r.ipc, "q");
    let h = &r.rpc;
    put_head(out, ARRAY, 5);
    put_head(out, ARRAY, 4);
    put_uuid(out, &h.target.object.0);
    put_head(out, UINT, h.target.class.0);
    put_head(out, UINT, h.target.version.0);
    put_head(out, ARRAY, 2);
    put_uuid(out, &h.target.home.node.0);
    match &h.target.home.addr {
        Some(a) => put_text(out, a),
        None => put_null(out),
    }
    put_head(out, UINT, u64::from(h.method_id));
    match h.deadline_ms {
        Some(d) => put_head(out, UINT, d),
        None => put_null(out),
    }
    put_head(out, SIMPLE, if h.deadline_explicit { TRUE } else { FALSE });
    match &h.trace {
        Some(t) => {
            put_head(out, ARRAY, 2);
            put_u128(out, t.trace_id);
            put_head(out, UINT, t.parent_span);
        }
        None => put_null(out),
    }
    let n = r.args.args.len() as u64;
    put_head(out, ARRAY, n + 2);
    put_text(out, &r.args.method);
    put_head(out, UINT, n);
    put_inline_args(out, &r.args.args);
}

fn put_ok_response(out: &mut Vec<u8>, ipc: &IpcHeader, args: &[Arg]) {
    put_head(out, MAP, 1);
    put_text(out, "resp");
    put_head(out, ARRAY, 3);
    put_ipc(out, ipc, "r");
    put_head(out, ARRAY, 1);
    put_text(out, "ok");
    put_head(out, MAP, 1);
    put_text(out, "out");
    put_head(out, ARRAY, args.len() as u64);
    put_inline_args(out, args);
}

/// Appends `msg` exactly as serde would write it, if it is a request with
/// inline arguments, a successful response with inline results or a chunk;
/// false, with nothing written, for anything else (serde writes those).
pub(crate) fn encode(msg: &Message, out: &mut Vec<u8>) -> bool {
    match msg {
        Message::Request(r) if r.ipc.kind == MessageKind::Request && all_inline(&r.args.args) => {
            put_request(out, r);
        }
        Message::Response(Response {
            ipc,
            rpc: ResponseHeader {
                response_type: ResponseType::Valid,
            },
            body: ResponseBody::Out(out_args),
        }) if ipc.kind == MessageKind::Response && all_inline(out_args) => {
            put_ok_response(out, ipc, out_args);
        }
        Message::Chunk {
            id,
            offset,
            data,
            crc,
        } => encode_chunk(out, *id, *offset, &data.0, *crc),
        _ => return false,
    }
    true
}

/// The request or successful response in `body`, if it is one of the
/// shapes this decoder knows; `None` leaves it to serde.
pub(crate) fn decode(body: &[u8]) -> Option<Message> {
    let mut c = Cur { b: body };
    if c.head(MAP)? != 1 {
        return None;
    }
    let msg = match c.text()? {
        "req" => Message::Request(c.request()?),
        "resp" => Message::Response(c.response()?),
        "chunk" => {
            let p = c.chunk(body.len())?;
            Message::Chunk {
                id: p.id,
                offset: p.offset,
                data: Payload(body.get(p.data)?.to_vec()),
                crc: p.crc,
            }
        }
        _ => return None,
    };
    c.b.is_empty().then_some(msg)
}

/// A chunk frame's fields, its data as where it lies in the body: the
/// reader hands those bytes on as a slice of its buffer, uncopied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChunkParts {
    pub(crate) id: TransferId,
    pub(crate) offset: u64,
    /// The data's bytes within the frame body.
    pub(crate) data: std::ops::Range<usize>,
    pub(crate) crc: u32,
}

/// The parts of `body` if it is a whole chunk message (as [`decode`] reads
/// it); `None` for anything else.
pub(crate) fn chunk_parts(body: &[u8]) -> Option<ChunkParts> {
    let mut c = Cur { b: body };
    if c.head(MAP)? != 1 || c.text()? != "chunk" {
        return None;
    }
    let p = c.chunk(body.len())?;
    c.b.is_empty().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RpcError;
    use crate::ids::TransferId;
    use crate::wire::message::TransferMeta;

    fn serde_bytes_of(m: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(m, &mut out).unwrap_or_else(|e| panic!("{e}"));
        out
    }

    fn ipc(kind: MessageKind, call_id: u64) -> IpcHeader {
        IpcHeader {
            kind,
            call_id,
            sender: NodeId(Uuid::from_u128(0x1234)),
            receiver: NodeId(Uuid::new_v4()),
        }
    }

    fn request(
        call_id: u64,
        addr: Option<&str>,
        deadline_ms: Option<u64>,
        trace: Option<TraceContext>,
        args: Vec<Arg>,
    ) -> Message {
        Message::Request(Request {
            ipc: ipc(MessageKind::Request, call_id),
            rpc: RequestHeader {
                target: Capability {
                    object: ObjectId(Uuid::new_v4()),
                    class: ClassId(u64::MAX - 3),
                    version: ClassVersion(77),
                    home: ComHandle {
                        node: NodeId(Uuid::new_v4()),
                        addr: addr.map(str::to_owned),
                    },
                },
                method_id: 0,
                deadline_ms,
                deadline_explicit: deadline_ms.is_some_and(|d| d % 2 == 0),
                trace,
            },
            args: ArgList {
                method: "método".into(),
                args,
            },
        })
    }

    fn inline(n: usize) -> Arg {
        Arg::Inline(Payload((0..n).map(|i| i as u8).collect()))
    }

    #[test]
    fn the_call_frames_decode_as_serde_decodes_them() {
        let traces = [
            None,
            Some(TraceContext {
                trace_id: 5,
                parent_span: 1,
            }),
            Some(TraceContext {
                trace_id: u128::MAX,
                parent_span: u64::MAX,
            }),
            // A bignum whose top bytes are zero.
            Some(TraceContext {
                trace_id: 1 << 80,
                parent_span: 9,
            }),
        ];
        let mut cases = Vec::new();
        for (i, trace) in traces.into_iter().enumerate() {
            for addr in [None, Some("10.0.0.1:7000")] {
                for deadline in [None, Some(0), Some(30_000), Some(u64::MAX)] {
                    let args = (0..i).map(|k| inline(k * 100)).collect();
                    cases.push(request(i as u64 * 1_000_003, addr, deadline, trace, args));
                }
            }
        }
        for n in [0usize, 1, 3] {
            cases.push(Message::Response(Response::new(
                ipc(MessageKind::Response, u64::MAX),
                ResponseBody::Out((0..n).map(|k| inline(k * 30)).collect()),
            )));
        }
        for m in cases {
            let b = serde_bytes_of(&m);
            let mut encoded = Vec::new();
            assert!(encode(&m, &mut encoded), "{m:?}");
            assert_eq!(encoded, b, "{m:?}");
            assert_eq!(decode(&b).as_ref(), Some(&m), "{m:?}");
            // Cut short or with a byte more, it is not taken.
            assert_eq!(decode(&b[..b.len() - 1]), None);
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(decode(&longer), None);
        }
    }

    #[test]
    fn chunks_encode_and_decode_as_serde_does() {
        for (offset, len, crc) in [
            (0u64, 0usize, 0u32),
            (1, 1, 1),
            (65_536, 65_536, u32::MAX),
            (u64::MAX, 300, 77),
        ] {
            let id = TransferId::random();
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let m = Message::Chunk {
                id,
                offset,
                data: Payload(data.clone()),
                crc,
            };
            let want = serde_bytes_of(&m);
            let mut got = Vec::new();
            encode_chunk(&mut got, id, offset, &data, crc);
            assert_eq!(got, want, "chunk at {offset} of {len}");
            let mut framed = Vec::new();
            assert!(encode(&m, &mut framed));
            assert_eq!(framed, want);
            assert_eq!(decode(&want).as_ref(), Some(&m));
            assert_eq!(decode(&want[..want.len() - 1]), None);
            // The parts the reader takes without copying name the same bytes.
            let p = chunk_parts(&want).unwrap_or_else(|| panic!("chunk at {offset}"));
            assert_eq!((p.id, p.offset, p.crc), (id, offset, crc));
            assert_eq!(&want[p.data], &data[..]);
            assert_eq!(chunk_parts(&want[..want.len() - 1]), None);
        }
        // Other messages are not chunks.
        assert_eq!(chunk_parts(&serde_bytes_of(&Message::Ping(3))), None);
    }

    #[test]
    fn other_frames_are_left_to_serde() {
        let meta = TransferMeta {
            id: TransferId::random(),
            sender: NodeId(Uuid::new_v4()),
            receiver: NodeId(Uuid::new_v4()),
            size: 10,
            checksum: None,
        };
        let others = [
            request(1, None, None, None, vec![Arg::Transfer(meta.clone())]),
            Message::Response(Response::new(
                ipc(MessageKind::Response, 1),
                ResponseBody::System(RpcError::Shutdown),
            )),
            Message::Response(Response::new(
                ipc(MessageKind::Response, 1),
                ResponseBody::Application(inline(3)),
            )),
            Message::Response(Response::new(
                ipc(MessageKind::Response, 1),
                ResponseBody::Out(vec![Arg::Transfer(meta)]),
            )),
            Message::Cancel(ipc(MessageKind::Cancel, 1)),
            Message::Ping(3),
        ];
        for m in others {
            assert_eq!(decode(&serde_bytes_of(&m)), None, "{m:?}");
            let mut out = Vec::new();
            assert!(!encode(&m, &mut out), "{m:?}");
            assert!(out.is_empty());
        }
        // A request whose argument count disagrees with its arguments.
        let m = request(1, None, None, None, vec![inline(1)]);
        let mut b = serde_bytes_of(&m);
        let at = b
            .windows("método".len())
            .position(|w| w == "método".as_bytes())
            .map(|p| p + "método".len())
            .unwrap_or_else(|| panic!("no method name"));
        assert_eq!(b[at], 0x01);
        b[at] = 0x02;
        assert_eq!(decode(&b), None);
    }
}
