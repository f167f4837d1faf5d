//! Frames: a 4-byte big-endian body length, then one CBOR [`Message`].
//!
//! Decoding looks at the length prefix before anything else, so a frame that
//! claims more than the limit is refused without allocating its size.

use super::message::Message;

/// Scratch bytes the CBOR decoder uses for short strings, in bytes.
pub const DECODE_SCRATCH: usize = 512;

/// Scratch bytes for decoding large bodies (transfer chunks, pulled values).
pub const BIG_DECODE_SCRATCH: usize = 256 * 1024;

/// Bytes in the length prefix.
pub const LEN_PREFIX: usize = 4;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix claims more than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Claimed body length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The body is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Appends `msg` as one frame to `out`, encoding straight into it.
///
/// # Errors
/// Fails if the message cannot be encoded or its body exceeds `max` bytes; on
/// error `out` is left as it was.
pub fn encode_frame(msg: &Message, out: &mut Vec<u8>, max: usize) -> Result<(), FrameError> {
    frame_with(out, max, |out| {
        if super::fast::encode(msg, out) {
            return Ok(());
        }
        ciborium::into_writer(msg, out).map_err(|e| FrameError::Malformed(e.to_string()))
    })
}

/// Appends one frame whose body `body` writes, checking its length against
/// `max`; on error `out` is left as it was.
pub(crate) fn frame_with(
    out: &mut Vec<u8>,
    max: usize,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), FrameError>,
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    if let Err(e) = body(out) {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start - LEN_PREFIX;
    if len > max || len > u32::MAX as usize {
        out.truncate(start);
        return Err(FrameError::TooLarge { len, max });
    }
    out[start..start + LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Reads the length prefix at the start of `buf`, if complete, checking it against `max`.
///
/// # Errors
/// [`FrameError::TooLarge`] when the prefix claims more than `max`.
pub fn peek_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..LEN_PREFIX) else {
        return Ok(None);
    };
    let mut b = [0u8; LEN_PREFIX];
    b.copy_from_slice(prefix);
    let len = u32::from_be_bytes(b) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(Some(len))
}

/// Decodes the first frame of `buf`. Returns the message and the bytes it used,
/// or `Ok(None)` when `buf` does not yet hold a whole frame.
///
/// # Errors
/// [`FrameError::TooLarge`] as soon as the prefix is read; [`FrameError::Malformed`]
/// when the whole body is there but is not a message.
pub fn decode_frame(buf: &[u8], max: usize) -> Result<Option<(Message, usize)>, FrameError> {
    let Some(len) = peek_len(buf, max)? else {
        return Ok(None);
    };
    let Some(body) = buf.get(LEN_PREFIX..LEN_PREFIX + len) else {
        return Ok(None);
    };
    let msg = decode_body(body)?;
    Ok(Some((msg, LEN_PREFIX + len)))
}

/// Decodes one frame body.
///
/// # Errors
/// [`FrameError::Malformed`] when the body is not exactly one message.
pub fn decode_body(body: &[u8]) -> Result<Message, FrameError> {
    // The frames of a call with inline values, read directly.
    if let Some(msg) = super::fast::decode(body) {
        return Ok(msg);
    }
    let mut rest = body;
    // ciborium's default reader zeroes a 4 KiB scratch buffer per call; strings
    // and byte strings longer than this one are read in pieces.
    let mut small = [0u8; DECODE_SCRATCH];
    let mut big = Vec::new();
    let scratch: &mut [u8] = if body.len() > DECODE_SCRATCH * 64 {
        big.resize(BIG_DECODE_SCRATCH.min(body.len()), 0);
        &mut big
    } else {
        &mut small
    };
    let msg: Message = ciborium::de::from_reader_with_buffer(&mut rest, scratch)
        .map_err(|e| FrameError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed(format!(
            "{} trailing bytes after the message",
            rest.len()
        )));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Capability, ClassId, ClassVersion, ComHandle, NodeId, ObjectId};
    use crate::wire::message::*;
    use uuid::Uuid;

    fn sample_request() -> Message {
        let n1 = NodeId(Uuid::from_u128(1));
        let n2 = NodeId(Uuid::from_u128(2));
        Message::Request(Request {
            ipc: IpcHeader {
                kind: MessageKind::Request,
                call_id: 7,
                sender: n1,
                receiver: n2,
            },
            rpc: RequestHeader {
                target: Capability {
                    object: ObjectId(Uuid::from_u128(3)),
                    class: ClassId(4),
                    version: ClassVersion(5),
                    home: ComHandle {
                        node: n2,
                        addr: Some("127.0.0.1:9".into()),
                    },
                },
                method_id: 0,
                deadline_ms: Some(1000),
                deadline_explicit: false,
                trace: Some(TraceContext {
                    trace_id: 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c,
                    parent_span: 0xb7ad_6b71_6920_3331,
                }),
            },
            args: ArgList {
                method: "add".into(),
                args: vec![
                    Arg::Inline(Payload(vec![0x01])),
                    Arg::Inline(Payload(vec![0x02])),
                ],
            },
        })
    }

    #[test]
    fn round_trip() {
        let msg = sample_request();
        let mut buf = Vec::new();
        encode_frame(&msg, &mut buf, 1 << 20).unwrap();
        let (back, used) = decode_frame(&buf, 1 << 20).unwrap().unwrap();
        assert_eq!(back, msg);
        assert_eq!(used, buf.len());
    }

    #[test]
    fn incomplete_is_none() {
        let mut buf = Vec::new();
        encode_frame(&sample_request(), &mut buf, 1 << 20).unwrap();
        for cut in 0..buf.len() {
            assert!(decode_frame(&buf[..cut], 1 << 20).unwrap().is_none());
        }
    }

    #[test]
    fn argument_list_layout_is_method_then_count() {
        // Golden bytes: [ "add", 2, h'01', h'02' ] as CBOR.
        let list = ArgList {
            method: "add".into(),
            args: vec![
                Arg::Inline(Payload(vec![0x01])),
                Arg::Inline(Payload(vec![0x02])),
            ],
        };
        let mut out = Vec::new();
        ciborium::into_writer(&list, &mut out).unwrap();
        assert_eq!(
            out,
            [0x84, 0x63, b'a', b'd', b'd', 0x02, 0x41, 0x01, 0x41, 0x02]
        );
    }

    #[test]
    fn argument_count_must_match() {
        // [ "add", 3, h'01' ]
        let bytes = [0x83, 0x63, b'a', b'd', b'd', 0x03, 0x41, 0x01];
        let r: Result<ArgList, _> = ciborium::from_reader(&bytes[..]);
        assert!(r.unwrap_err().to_string().contains("argument count says 3"));
    }

    #[test]
    fn oversized_prefix_refused_before_body() {
        // Claims 4 GiB; only the prefix is present.
        let buf = [0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_frame(&buf, 1024),
            Err(FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 1024
            })
        ));
    }

    #[test]
    fn encode_over_limit_leaves_buffer_untouched() {
        let mut buf = vec![9, 9];
        let err = encode_frame(&sample_request(), &mut buf, 8).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
        assert_eq!(buf, [9, 9]);
    }

    #[test]
    fn garbage_is_malformed() {
        let body = [0xff, 0x00, 0x13];
        let mut buf = (body.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&body);
        assert!(matches!(
            decode_frame(&buf, 1024),
            Err(FrameError::Malformed(_))
        ));
    }

    #[test]
    fn headers_are_positional() {
        // Golden bytes: a ComHandle is [node id as a 16-byte string, address or null].
        let h = ComHandle {
            node: NodeId(Uuid::from_u128(1)),
            addr: None,
        };
        let mut out = Vec::new();
        ciborium::into_writer(&h, &mut out).unwrap();
        let mut want = vec![0x82, 0x50];
        want.extend_from_slice(&1u128.to_be_bytes());
        want.push(0xf6);
        assert_eq!(out, want);
        // An IPC header is [kind, call id, sender, receiver].
        let ipc = IpcHeader {
            kind: MessageKind::Response,
            call_id: 7,
            sender: NodeId(Uuid::from_u128(1)),
            receiver: NodeId(Uuid::from_u128(2)),
        };
        let mut out = Vec::new();
        ciborium::into_writer(&ipc, &mut out).unwrap();
        assert_eq!(&out[..4], &[0x84, 0x61, b'r', 0x07]);
        assert_eq!(out.len(), 4 + 2 * 17);
    }

    #[test]
    fn inline_and_transfer_arguments_are_told_apart() {
        use crate::ids::TransferId;
        let meta = TransferMeta {
            id: TransferId(Uuid::from_u128(9)),
            sender: NodeId(Uuid::from_u128(1)),
            receiver: NodeId(Uuid::from_u128(2)),
            size: 1 << 20,
            checksum: Some(7),
        };
        for arg in [Arg::Inline(Payload(vec![1, 2, 3])), Arg::Transfer(meta)] {
            let mut out = Vec::new();
            ciborium::into_writer(&arg, &mut out).unwrap();
            let back: Arg = ciborium::from_reader(&out[..]).unwrap();
            assert_eq!(back, arg);
        }
    }

    #[test]
    fn payload_is_a_byte_string() {
        let mut out = Vec::new();
        ciborium::into_writer(&Payload(vec![1, 2, 3]), &mut out).unwrap();
        assert_eq!(out, [0x43, 1, 2, 3]);
    }
}
