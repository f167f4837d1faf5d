//! CPU cost of rpc-core's call envelope, without any I/O: encoding and
//! decoding the request and response frames of a null call `ping(u64)`, next
//! to the pieces that make it up and to a positional (array) envelope carrying
//! only what the receiver cannot know from the connection.
//!
//! `cargo bench -p tests --bench wire_envelope` (plain `main`, no harness).

use rpc_core::wire::{
    self, ArgList, IpcHeader, Message, MessageKind, Payload, Request, RequestHeader, Response,
    ResponseBody,
};
use rpc_core::{Capability, ClassId, ClassVersion, ComHandle, NodeId, ObjectId};
use std::hint::black_box;
use std::time::Instant;

/// Iterations of each measured operation per round.
const ITERS: u32 = 200_000;
/// Rounds; the fastest is reported.
const ROUNDS: usize = 5;

/// Fastest time per iteration of `f`, in ns, over [`ROUNDS`] rounds.
fn time(mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..ITERS {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(ITERS));
    }
    best
}

fn cbor<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut b = Vec::new();
    ciborium::into_writer(v, &mut b).expect("encode");
    b
}

/// What a request needs when the connection already names both nodes:
/// call id, object, class, version, deadline, method, arguments.
type Compact = (
    u64,
    ObjectId,
    ClassId,
    ClassVersion,
    Option<u64>,
    String,
    Vec<Payload>,
);

fn main() {
    let (client, server) = (NodeId::random(), NodeId::random());
    let cap = Capability {
        object: ObjectId::random(),
        class: ClassId(0x1234_5678_9abc_def0),
        version: ClassVersion(0x0fed_cba9_8765_4321),
        home: ComHandle {
            node: server,
            addr: Some("127.0.0.1:40123".into()),
        },
    };
    let x: u64 = 1_000;
    let ipc = |kind, sender, receiver| IpcHeader {
        kind,
        call_id: 100_000,
        sender,
        receiver,
    };
    let req = Message::Request(Request {
        ipc: ipc(MessageKind::Request, client, server),
        rpc: RequestHeader {
            target: cap.clone(),
            method_id: 0,
            deadline_ms: Some(30_000),
            deadline_explicit: false,
            trace: None,
        },
        args: ArgList {
            method: "ping".into(),
            args: vec![rpc_core::wire::Arg::Inline(Payload(cbor(&x)))],
        },
    });
    // What every call sends since requests carry a trace context.
    let traced = match &req {
        Message::Request(r) => {
            let mut r = r.clone();
            r.rpc.trace = Some(rpc_core::wire::TraceContext::new_root());
            Message::Request(r)
        }
        other => other.clone(),
    };
    let resp = Message::Response(Response::new(
        ipc(MessageKind::Response, server, client),
        ResponseBody::Out(vec![rpc_core::wire::Arg::Inline(Payload(cbor(&(x + 1))))]),
    ));
    let compact: Compact = (
        100_000,
        cap.object,
        cap.class,
        cap.version,
        Some(30_000),
        "ping".into(),
        vec![Payload(cbor(&x))],
    );

    let frame = |m: &Message| {
        let mut b = Vec::new();
        wire::encode_frame(m, &mut b, usize::MAX).expect("encode");
        b
    };
    let (req_f, resp_f, compact_b) = (frame(&req), frame(&resp), cbor(&compact));
    let traced_f = frame(&traced);
    let arg = cbor(&x);

    println!("wire_envelope: ns per operation (fastest of {ROUNDS} rounds of {ITERS})");
    let row = |what: &str, bytes: usize, ns: f64| {
        println!("{what:<58}{bytes:>6} B{ns:>10.0} ns");
    };
    row(
        "encode_frame(request)",
        req_f.len(),
        time(|| {
            let mut b = Vec::with_capacity(128);
            wire::encode_frame(black_box(&req), &mut b, usize::MAX).expect("encode");
            black_box(b);
        }),
    );
    row(
        "decode_frame(request)",
        req_f.len(),
        time(|| {
            black_box(wire::decode_frame(black_box(&req_f), usize::MAX).expect("decode"));
        }),
    );
    row(
        "encode_frame(request with a trace context)",
        traced_f.len(),
        time(|| {
            let mut b = Vec::with_capacity(160);
            wire::encode_frame(black_box(&traced), &mut b, usize::MAX).expect("encode");
            black_box(b);
        }),
    );
    row(
        "decode_frame(request with a trace context)",
        traced_f.len(),
        time(|| {
            black_box(wire::decode_frame(black_box(&traced_f), usize::MAX).expect("decode"));
        }),
    );
    row(
        "encode_frame(response)",
        resp_f.len(),
        time(|| {
            let mut b = Vec::with_capacity(128);
            wire::encode_frame(black_box(&resp), &mut b, usize::MAX).expect("encode");
            black_box(b);
        }),
    );
    row(
        "decode_frame(response)",
        resp_f.len(),
        time(|| {
            black_box(wire::decode_frame(black_box(&resp_f), usize::MAX).expect("decode"));
        }),
    );
    let cap_b = cbor(&cap);
    row(
        "  part of it: a Capability alone, ciborium::from_reader",
        cap_b.len(),
        time(|| {
            black_box(
                ciborium::from_reader::<Capability, _>(black_box(&cap_b[..])).expect("decode"),
            );
        }),
    );
    row(
        "u64 argument: ciborium::from_reader (zeroes 4 KiB scratch)",
        arg.len(),
        time(|| {
            black_box(ciborium::from_reader::<u64, _>(black_box(&arg[..])).expect("decode"));
        }),
    );
    row(
        "u64 argument: from_reader_with_buffer, 64 B scratch",
        arg.len(),
        time(|| {
            let mut scratch = [0u8; 64];
            black_box(
                ciborium::de::from_reader_with_buffer::<u64, _>(black_box(&arg[..]), &mut scratch)
                    .expect("decode"),
            );
        }),
    );
    row(
        "positional request (array, no node ids/home): encode",
        compact_b.len(),
        time(|| {
            let mut b = Vec::with_capacity(128);
            ciborium::into_writer(black_box(&compact), &mut b).expect("encode");
            black_box(b);
        }),
    );
    row(
        "positional request (array, no node ids/home): decode",
        compact_b.len(),
        time(|| {
            let mut scratch = [0u8; 64];
            black_box(
                ciborium::de::from_reader_with_buffer::<Compact, _>(
                    black_box(&compact_b[..]),
                    &mut scratch,
                )
                .expect("decode"),
            );
        }),
    );
}
