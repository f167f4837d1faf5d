//! Transfers under faults and hostile peers: corrupted chunks, bad chunk
//! requests, receivers that vanish or flood the sender without reading,
//! senders that stall, and queue limits under load. Each fault is a typed
//! error or a bound, and leaves no transfer state behind.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::pulls::*;
use common::raw::{Raw, cbor};
use common::*;
use rpc_core::wire::{Arg, Message, Payload, ResponseBody, TransferMeta};
use rpc_core::{Capability, Config, Node, RpcError, TransferId};
use serde_bytes::ByteBuf;
use std::time::{Duration, Instant};

/// Calls `make_bytes(n)` as `owner` and returns the transfer the server
/// offers for the answer.
async fn offered(owner: &mut Raw, cap: &Capability, n: u64) -> TransferMeta {
    owner
        .request(
            1,
            cap,
            "make_bytes",
            vec![
                Arg::Inline(Payload(cbor(&n))),
                Arg::Inline(Payload(cbor(&0u8))),
            ],
        )
        .await;
    match owner.recv().await {
        Message::Response(r) => match r.body {
            ResponseBody::Out(mut out) => match out.pop() {
                Some(Arg::Transfer(m)) => m,
                other => panic!("expected a transfer, got {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
}

/// Offers `bytes` to the server as the argument of `echo_bytes`, answering
/// its chunk requests with `corrupt` applied, and returns the call's answer.
async fn push_with(
    addr: &str,
    bytes: &[u8],
    announced: Option<u32>,
    corrupt: impl Fn(u32) -> u32,
) -> ResponseBody {
    let (_client, cap) = calc_capability(addr).await;
    let mut raw = Raw::connect(addr).await;
    let meta = TransferMeta {
        id: TransferId::random(),
        sender: raw.me,
        receiver: raw.server,
        size: bytes.len() as u64,
        checksum: announced,
    };
    raw.request(1, &cap, "echo_bytes", vec![Arg::Transfer(meta.clone())])
        .await;
    loop {
        match raw.recv().await {
            Message::ChunkRequest { id, offset, len } => {
                assert_eq!(id, meta.id);
                let data = bytes[offset as usize..(offset + u64::from(len)) as usize].to_vec();
                let crc = corrupt(crc32fast::hash(&data));
                raw.send(&Message::Chunk {
                    id,
                    offset,
                    data: Payload(data),
                    crc,
                })
                .await;
            }
            Message::TransferEnd { .. } | Message::Ping(_) => {}
            Message::Response(r) => return r.body,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_corrupted_chunk_or_total_is_an_error_never_data() {
    let (server, addr, _) = calc_server().await;
    let value = cbor(&ByteBuf::from(pattern(300_000, 4)));
    let good = crc32fast::hash(&value);
    // A chunk whose bytes do not match its CRC.
    match push_with(&addr, &value, Some(good), |c| c ^ 1).await {
        ResponseBody::System(RpcError::TransferFailed { reason }) => {
            assert!(
                reason.contains("checksum mismatch in the chunk"),
                "{reason}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    // Every chunk right, the announced total wrong.
    match push_with(&addr, &value, Some(good ^ 1), |c| c).await {
        ResponseBody::System(RpcError::TransferFailed { reason }) => {
            assert!(reason.contains("whole value"), "{reason}")
        }
        other => panic!("unexpected {other:?}"),
    }
    // And intact, the same value goes through.
    match push_with(&addr, &value, Some(good), |c| c).await {
        ResponseBody::Out(out) => assert_eq!(out.len(), 1),
        other => panic!("unexpected {other:?}"),
    }
    no_transfers_left(&[&server]).await;
}

#[tokio::test]
async fn bad_chunk_requests_are_refused() {
    let (server, addr, _) = calc_server().await;
    let (_client, cap) = calc_capability(&addr).await;
    let mut owner = Raw::connect(&addr).await;
    let meta = offered(&mut owner, &cap, 200_000).await;
    assert_eq!(meta.receiver, owner.me);
    assert_eq!(server.stats().transfers_out, 1);
    let refused = |m: Message| match m {
        Message::ChunkError {
            error: RpcError::TransferFailed { .. },
            ..
        } => {}
        other => panic!("expected a refusal, got {other:?}"),
    };
    // Ten bytes of transfer `id` at `offset`.
    let ask = |id, offset| Message::ChunkRequest {
        id,
        offset,
        len: 10,
    };
    // Past the end.
    owner.send(&ask(meta.id, meta.size)).await;
    refused(owner.recv().await);
    // A transfer that does not exist.
    owner.send(&ask(TransferId::random(), 0)).await;
    refused(owner.recv().await);
    // Another node asking for this node's transfer.
    let mut thief = Raw::connect(&addr).await;
    thief.send(&ask(meta.id, 0)).await;
    refused(thief.recv().await);
    // The owner still gets its bytes, then frees the transfer.
    owner.send(&ask(meta.id, 0)).await;
    match owner.recv().await {
        Message::Chunk { data, .. } => assert_eq!(data.0.len(), 10),
        other => panic!("unexpected {other:?}"),
    }
    owner
        .send(&Message::TransferEnd {
            id: meta.id,
            ok: false,
        })
        .await;
    no_transfers_left(&[&server]).await;
}

#[tokio::test]
async fn a_receiver_that_vanishes_is_dropped_after_the_timeout() {
    let (server, addr, _) = calc_server_with(Config {
        transfer_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let (_client, cap) = calc_capability(&addr).await;
    let mut raw = Raw::connect(&addr).await;
    offered(&mut raw, &cap, 200_000).await;
    assert_eq!(server.stats().transfers_out, 1);
    // Never pulls, never ends, keeps the connection open.
    no_transfers_left(&[&server]).await;
    drop(raw);
}

#[tokio::test]
async fn many_failed_transfers_leave_no_state() {
    let (server, addr, _) = calc_server_with(Config {
        max_large_value: 100_000,
        ..Config::default()
    })
    .await;
    let (client, calc) = client_for(&addr).await;
    for k in 0..20u8 {
        let r = calc.echo_bytes(ByteBuf::from(pattern(200_000, k))).await;
        assert!(
            matches!(r, Err(RpcError::TooLarge { limit: 100_000, .. })),
            "{r:?}"
        );
    }
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    no_transfers_left(&[&server, &client]).await;
}

/// A receiver that asks for the same chunk thousands of times and never
/// reads what it is sent: the server queues no more for it than its
/// `max_queued_bytes` (plus a chunk or two in flight), refuses requests
/// past a bounded queue, and keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_flooding_chunk_requests_without_reading_is_bounded() {
    const LIMIT: usize = 1 << 20;
    let (server, addr, _) = calc_server_with(Config {
        max_queued_bytes: LIMIT,
        ..Config::default()
    })
    .await;
    let (_client, cap) = calc_capability(&addr).await;
    let mut owner = Raw::connect(&addr).await;
    let meta = offered(&mut owner, &cap, 1 << 20).await;
    // 20,000 requests for the same 64 KiB: 1.25 GiB if all were served.
    let mut flood = Vec::new();
    let req = Message::ChunkRequest {
        id: meta.id,
        offset: 0,
        len: 64 << 10,
    };
    for _ in 0..20_000 {
        rpc_core::wire::encode_frame(&req, &mut flood, 1 << 20).unwrap();
    }
    // Written from a task: the server may stop reading (as it should).
    let (mut rd, mut wr) = owner.stream.into_split();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = wr.write_all(&flood).await;
        wr
    });
    let mut most = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(2) {
        most = most.max(server.stats().queued_bytes);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        most <= (LIMIT + (256 << 10)) as u64,
        "{most} bytes queued for a peer that does not read (limit {LIMIT})"
    );
    // Others are still served.
    let (_c, calc) = client_for(&addr).await;
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    // Reading again, the flooder gets its chunks, and refusals once its
    // requests overflow the transfer's queue.
    let t0 = Instant::now();
    let (mut chunks, mut refused) = (0, 0);
    while refused == 0 && t0.elapsed() < BOUND {
        match common::raw::recv_within(&mut rd, Duration::from_secs(10)).await {
            Some(Message::Chunk { .. }) => chunks += 1,
            Some(Message::ChunkError {
                error: RpcError::TransferFailed { reason },
                ..
            }) => {
                assert!(reason.contains("outstanding"), "{reason}");
                refused += 1;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert!(refused > 0, "no refusal after {chunks} chunks");
    writer.abort();
}

/// Transfers whose sender stalls hold no thread while they wait: with a
/// blocking pool of 4 threads and 16 pulls stuck after their first chunk,
/// another client's large argument still crosses. (A writer thread per
/// pull left it queued behind them until the transfer timeout.)
#[test]
fn stalled_transfers_do_not_starve_the_blocking_pool() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (server, addr, _) = calc_server().await;
        let (_client, cap) = calc_capability(&addr).await;
        let mut staller = Raw::connect(&addr).await;
        let value = cbor(&ByteBuf::from(pattern(2 << 20, 9)));
        for call in 1..=16 {
            let meta = TransferMeta {
                id: TransferId::random(),
                sender: staller.me,
                receiver: staller.server,
                size: value.len() as u64,
                checksum: None,
            };
            staller
                .request(call, &cap, "echo_bytes", vec![Arg::Transfer(meta)])
                .await;
        }
        // Answers only the first chunk of each transfer, then stalls.
        let stall = tokio::spawn(async move {
            let t0 = Instant::now();
            while t0.elapsed() < BOUND {
                let m = common::raw::recv_within(&mut staller.stream, Duration::from_millis(100));
                if let Some(Message::ChunkRequest { id, offset: 0, len }) = m.await {
                    let data = value[..len as usize].to_vec();
                    let crc = crc32fast::hash(&data);
                    staller
                        .send(&Message::Chunk {
                            id,
                            offset: 0,
                            data: Payload(data),
                            crc,
                        })
                        .await;
                }
            }
        });
        let t0 = Instant::now();
        while server.stats().transfers_in < 16 {
            assert!(t0.elapsed() < BOUND, "the server never pulled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (_c, calc) = client_for(&addr).await;
        let data = pattern(3 << 20, 1);
        let back = tokio::time::timeout(
            Duration::from_secs(20),
            calc.echo_bytes(ByteBuf::from(data.clone())),
        )
        .await
        .expect("a stalled transfer held the blocking pool")
        .unwrap();
        assert!(back.as_slice() == data.as_slice());
        stall.abort();
    });
}

/// Two nodes pulling from each other at once, with a queue limit of one
/// chunk: their chunk servers stop at the limit and go on when it drains,
/// over and over, and every value arrives intact (none waits for a drain
/// nobody reports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_both_ways_over_the_queue_limit_keep_moving() {
    let config = || Config {
        max_queued_bytes: 64 << 10,
        ..Config::default()
    };
    let (server, addr, _) = calc_server_with(config()).await;
    let client = Node::new(config());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let calls = (0..32u8).map(|k| {
        let calc = calc.clone();
        async move {
            let data = pattern(4 << 20, k);
            let back = calc.echo_bytes(ByteBuf::from(data.clone())).await.unwrap();
            assert!(back.as_slice() == data.as_slice(), "value {k}");
        }
    });
    tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(calls))
        .await
        .expect("transfers both ways stalled");
    no_transfers_left(&[&server, &client]).await;
}
