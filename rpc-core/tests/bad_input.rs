//! Bad input gets a typed error, and the server keeps serving everyone else.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use rpc_core::wire::{self, Hello, Message, PROTOCOL_VERSION};
use rpc_core::{Capability, Config, Node, NodeId, ObjectId, RemoteRef, RpcError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX: usize = 1 << 20;

async fn client_for(addr: &str) -> (Node, CalcRef) {
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(addr, "calc").await.unwrap();
    (client, calc)
}

/// The server still answers a well-behaved client.
async fn still_serving(addr: &str) {
    let (_c, calc) = client_for(addr).await;
    assert_eq!(calc.add(20, 22).await.unwrap(), 42);
}

#[tokio::test]
async fn unknown_method() {
    let (_s, addr, _) = calc_server().await;
    let (_c, calc) = client_for(&addr).await;
    let h = calc.client_proxy().unwrap().handle();
    let err = h.call("no_such", vec![]).await.unwrap_err();
    assert_eq!(
        err,
        RpcError::NoSuchMethod {
            class: "test.Calc".into(),
            method: "no_such".into()
        }
    );
    still_serving(&addr).await;
}

#[tokio::test]
async fn wrong_argument_count() {
    let (_s, addr, _) = calc_server().await;
    let (_c, calc) = client_for(&addr).await;
    let h = calc.client_proxy().unwrap().handle();
    let one = h.encode(&1i64, "a").unwrap();
    match h.call("add", vec![one]).await.unwrap_err() {
        RpcError::BadArguments { method, reason } => {
            assert_eq!(method, "add");
            assert!(reason.contains("expected 2 arguments, got 1"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    still_serving(&addr).await;
}

#[tokio::test]
async fn wrong_argument_type_names_the_argument() {
    let (_s, addr, _) = calc_server().await;
    let (_c, calc) = client_for(&addr).await;
    let h = calc.client_proxy().unwrap().handle();
    let args = vec![
        h.encode(&1i64, "a").unwrap(),
        h.encode("not a number", "b").unwrap(),
    ];
    match h.call("add", args).await.unwrap_err() {
        RpcError::BadArguments { method, reason } => {
            assert_eq!(method, "add");
            assert!(reason.contains("argument `b`"), "{reason}");
            assert!(reason.contains("i64"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    still_serving(&addr).await;
}

#[tokio::test]
async fn unknown_capability_is_no_such_object() {
    let (_s, addr, _) = calc_server().await;
    let (client, calc) = client_for(&addr).await;
    let mut cap: Capability = calc.capability().unwrap().clone();
    cap.object = ObjectId::random();
    let guessed: CalcRef = client.resolve(cap.clone()).unwrap();
    assert_eq!(
        guessed.add(1, 2).await.unwrap_err(),
        CalcError::Rpc(RpcError::NoSuchObject { object: cap.object })
    );
    still_serving(&addr).await;
}

#[tokio::test]
async fn version_mismatch_at_resolve_and_at_call() {
    let (_s, addr, _) = calc_server().await;
    let (client, calc) = client_for(&addr).await;
    let cap = calc.capability().unwrap().clone();
    // A stub of another version refuses the capability at once.
    match client.resolve::<CalcV2Ref>(cap.clone()) {
        Err(RpcError::VersionMismatch { class, .. }) => assert_eq!(class, "test.Calc"),
        other => panic!("unexpected {other:?}"),
    }
    // And the server refuses a request that claims the other version.
    let mut forged = cap;
    forged.version = CalcV2Ref::CLASS.version;
    let v2: CalcV2Ref = client.resolve(forged).unwrap();
    assert!(matches!(
        v2.add(1, 2, 3).await.unwrap_err(),
        CalcError::Rpc(RpcError::VersionMismatch { .. })
    ));
    // Another class altogether.
    match client.lookup::<ListenerRef>(&addr, "calc").await {
        Err(RpcError::WrongClass { expected, found }) => {
            assert_eq!(expected, "test.Listener");
            assert_eq!(found, "test.Calc");
        }
        other => panic!("unexpected {other:?}"),
    }
    still_serving(&addr).await;
}

#[tokio::test]
async fn unbound_bootstrap_name() {
    let (_s, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    assert_eq!(
        client.lookup::<CalcRef>(&addr, "nope").await.unwrap_err(),
        RpcError::NotBound {
            name: "nope".into()
        }
    );
}

/// A raw connection that has done the handshake.
async fn raw_connection(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    let hello = Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        node: NodeId::random(),
        listen: None,
        max_frame: MAX as u64,
        seed: None,
    });
    wire::encode_frame(&hello, &mut buf, MAX).unwrap();
    s.write_all(&buf).await.unwrap();
    match read_message(&mut s).await {
        Some(Message::Hello(_)) => {}
        other => panic!("expected hello, got {other:?}"),
    }
    s
}

/// Reads one message, or None at end of stream; bounded in time.
async fn read_message(s: &mut TcpStream) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(5), async {
        let mut prefix = [0u8; 4];
        s.read_exact(&mut prefix).await.ok()?;
        let len = u32::from_be_bytes(prefix) as usize;
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.ok()?;
        Some(wire::codec::decode_body(&body).unwrap())
    })
    .await
    .expect("server answered in time")
}

async fn expect_protocol_close(s: &mut TcpStream, needle: &str) {
    match read_message(s).await {
        Some(Message::Close(RpcError::Protocol { reason })) => {
            assert!(reason.contains(needle), "{reason}")
        }
        other => panic!("expected a protocol close, got {other:?}"),
    }
    assert!(
        read_message(s).await.is_none(),
        "connection should be closed"
    );
}

#[tokio::test]
async fn malformed_cbor_frame() {
    let (server, addr, _) = calc_server().await;
    let mut s = raw_connection(&addr).await;
    let body = [0xff, 0xfe, 0x00, 0x13];
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    s.write_all(&frame).await.unwrap();
    expect_protocol_close(&mut s, "malformed").await;
    still_serving(&addr).await;
    drop(server);
}

#[tokio::test]
async fn frame_over_the_limit_is_refused_without_allocating_it() {
    let (_s, addr, _) = calc_server_with(Config {
        max_frame_len: 64 * 1024,
        ..Config::default()
    })
    .await;
    let mut s = raw_connection(&addr).await;
    // Claims 3 GiB and sends only the prefix.
    s.write_all(&(3u32 << 30).to_be_bytes()).await.unwrap();
    expect_protocol_close(&mut s, "exceeds the limit").await;
    still_serving(&addr).await;
}

#[tokio::test]
async fn a_request_over_the_local_frame_limit_is_refused_before_sending() {
    let (_s, addr, _) = calc_server().await;
    let client = Node::new(Config {
        max_frame_len: 64 * 1024,
        // Everything inline: the frame limit itself is under test.
        large_threshold: usize::MAX,
        ..Config::default()
    });
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let err = calc.echo("x".repeat(100 * 1024)).await.unwrap_err();
    assert!(matches!(err, RpcError::Encode { .. }), "{err:?}");
    // Nothing was sent: the connection still works.
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
}

#[tokio::test]
async fn a_request_over_the_peer_frame_limit_fails_the_call_not_the_server() {
    let (_s, addr, _) = calc_server_with(Config {
        max_frame_len: 64 * 1024,
        ..Config::default()
    })
    .await;
    let client = Node::new(Config {
        large_threshold: usize::MAX,
        ..Config::default()
    });
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    // The limit was announced at handshake: refused here, the connection lives on.
    let err = calc.echo("x".repeat(100 * 1024)).await.unwrap_err();
    assert!(matches!(err, RpcError::Encode { .. }), "{err:?}");
    assert!(err.to_string().contains("65536"), "{err}");
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    still_serving(&addr).await;
}

#[tokio::test]
async fn a_value_over_the_frame_limit_goes_through_the_large_message_proxy() {
    // Both sides limit frames to 64 KiB; a 1 MiB value crosses in chunks that fit.
    let small_frames = || Config {
        max_frame_len: 64 * 1024,
        ..Config::default()
    };
    let (_s, addr, _) = calc_server_with(small_frames()).await;
    let client = Node::new(small_frames());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let big = "y".repeat(1 << 20);
    assert_eq!(calc.echo(big.clone()).await.unwrap(), big);
}

#[tokio::test]
async fn garbage_then_close_before_handshake() {
    let (_s, addr, _) = calc_server().await;
    for _ in 0..3 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n garbage \xff\xff")
            .await
            .unwrap();
        drop(s);
    }
    still_serving(&addr).await;
}

#[tokio::test]
async fn garbage_after_handshake_then_close() {
    let (server, addr, _) = calc_server().await;
    let mut s = raw_connection(&addr).await;
    s.write_all(&[0, 0, 0, 3, 1]).await.unwrap(); // frame cut short
    drop(s);
    still_serving(&addr).await;
    // The broken connection is gone from the server's table.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.stats().connections > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connection not dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn protocol_version_mismatch_at_handshake() {
    let (_s, addr, _) = calc_server().await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let mut buf = Vec::new();
    let hello = Message::Hello(Hello {
        version: PROTOCOL_VERSION + 1,
        node: NodeId::random(),
        listen: None,
        max_frame: MAX as u64,
        seed: None,
    });
    wire::encode_frame(&hello, &mut buf, MAX).unwrap();
    s.write_all(&buf).await.unwrap();
    expect_protocol_close(&mut s, "protocol version mismatch").await;
    still_serving(&addr).await;
}

#[tokio::test]
async fn unreachable_peer_is_not_sent() {
    // Bind then drop a listener to get a port nobody listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let client = Node::new(Config::default());
    let err = client.lookup::<CalcRef>(&addr, "calc").await.unwrap_err();
    assert!(matches!(err, RpcError::Unreachable { .. }), "{err:?}");
    assert!(err.is_not_sent());
}

/// A peer that shuts down sends a close frame saying its unanswered calls
/// did not run, then goes. When a write on its reset socket fails before
/// that frame is read (here: the reader is paused, as the peer does not
/// read what it is sent), the calls still pending must learn what the
/// frame says, not "lost, may have run".
#[tokio::test]
async fn a_failed_write_does_not_hide_the_peers_close_frame() {
    // A capability of a Calc whose home is the raw peer below.
    let (_real, real_addr, _) = calc_server().await;
    let real: CalcRef = Node::new(Config::default())
        .lookup(&real_addr, "calc")
        .await
        .unwrap();
    let client = Node::new(Config {
        large_threshold: 1 << 20,
        max_queued_bytes: 256 << 10,
        ..Config::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = NodeId::random();
    let mut cap = real.capability().unwrap().clone();
    cap.home.node = peer;
    cap.home.addr = Some(listener.local_addr().unwrap().to_string());
    let calc: CalcRef = client.resolve(cap).unwrap();

    // 32 calls of 512 KiB each: more than both socket buffers hold, so
    // the client's queue passes its limit and its reader pauses.
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let c = calc.with_timeout(Duration::from_secs(2));
            tokio::spawn(async move {
                c.echo_bytes(serde_bytes::ByteBuf::from(vec![7u8; 512 << 10]))
                    .await
            })
        })
        .collect();
    let Ok(accepted) = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
    else {
        let first = calls.into_iter().next().unwrap().await;
        panic!(
            "the client did not dial: {:?}",
            first.map(|r| r.map(|b| b.len()))
        );
    };
    let (mut s, _) = accepted.unwrap();
    drop(listener);
    match raw::recv_within(&mut s, Duration::from_secs(10)).await {
        Some(Message::Hello(_)) => {}
        other => panic!("expected a hello, got {other:?}"),
    }
    raw::send_on(&mut s, &raw::hello(peer)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Shut down having read no request: none of them ran.
    raw::send_on(&mut s, &Message::Close(RpcError::Shutdown)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Unread requests in its buffer: the kernel resets the connection.
    drop(s);
    for call in calls {
        let r = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .unwrap()
            .unwrap();
        let err = r.unwrap_err();
        assert!(err.is_not_sent(), "{err:?}");
    }
}
