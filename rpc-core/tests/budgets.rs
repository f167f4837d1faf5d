//! Every resource a peer can make a node hold is bounded: each budget is
//! pushed by a raw peer speaking the protocol by hand, the refusal is
//! typed, and a well-behaved client on another address is served the whole
//! time, its latency within a few times idle.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::raw::{Raw, arg, frame, hello, recv_within, request_message, send_on, tcp_from};
use common::*;
use rpc_core::wire::{Arg, Message, ResponseBody, TransferMeta};
use rpc_core::{Capability, Config, Node, RemoteRef, RpcError, TransferId};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// A server with small budgets, so that tests reach them quickly.
fn tight() -> Config {
    Config {
        handshake_timeout: Duration::from_secs(3),
        max_handshakes_per_address: 4,
        max_handshakes: 8,
        max_connections_per_address: 4,
        max_connections: 16,
        max_inflight_per_connection: 8,
        max_queued_bytes: 256 * KIB,
        max_offered_bytes_per_peer: MIB as u64,
        max_transfers_per_peer: 4,
        max_pull_memory_per_peer: MIB as u64,
        ..Config::default()
    }
}

/// The well-behaved client: on its own address (127.0.0.2), it measures
/// its calls' latency while another peer attacks.
struct Bystander {
    _node: Node,
    calc: CalcRef,
    idle: Duration,
}

impl Bystander {
    async fn new(addr: &str) -> Bystander {
        let node = Node::new(Config::default());
        let stream = tcp_from("127.0.0.2", addr).await;
        let server = node.connect_stream(stream).await.unwrap();
        let calc: CalcRef = node.lookup_peer(server, "calc").await.unwrap();
        let mut b = Bystander {
            _node: node,
            calc,
            idle: Duration::ZERO,
        };
        b.idle = b.median_latency().await;
        b
    }

    /// Median of 30 calls.
    async fn median_latency(&self) -> Duration {
        let mut t = Vec::new();
        for i in 0..30 {
            let t0 = Instant::now();
            assert_eq!(self.calc.add(i, 1).await.unwrap(), i + 1);
            t.push(t0.elapsed());
        }
        t.sort();
        t[t.len() / 2]
    }

    /// Still served, within a few times its idle latency.
    async fn still_served(&self) {
        let now = self.median_latency().await;
        let bound = (self.idle * 5).max(Duration::from_millis(5));
        assert!(now <= bound, "served in {now:?} (idle {:?})", self.idle);
    }
}

/// The capability of the server's "calc", as a raw peer sends it.
async fn calc_cap(addr: &str) -> (Node, Capability) {
    let node = Node::new(Config::default());
    let calc: CalcRef = node.lookup(addr, "calc").await.unwrap();
    let mut cap = calc.capability().unwrap().clone();
    cap.class = CalcRef::CLASS.id;
    cap.version = CalcRef::CLASS.version;
    (node, cap)
}

/// The error a response carries: the runtime's, or a method's own
/// `RpcError`.
fn system_error(m: Message) -> RpcError {
    match m {
        Message::Response(r) => match r.body {
            ResponseBody::System(e) => e,
            ResponseBody::Application(Arg::Inline(p)) => ciborium::from_reader(&p.0[..]).unwrap(),
            other => panic!("expected an error, got {other:?}"),
        },
        other => panic!("expected a response, got {other:?}"),
    }
}

#[tokio::test]
async fn a_hello_over_the_hello_limit_is_refused_before_it_is_read() {
    let (server, addr, _) = calc_server_with(tight()).await;
    let by = Bystander::new(&addr).await;
    let mut s = tcp_from("127.0.0.1", &addr).await;
    // Announce a 16 MiB hello and send a little of it.
    s.write_all(&(16u32 << 20).to_be_bytes()).await.unwrap();
    s.write_all(&[0u8; 1000]).await.unwrap();
    match recv_within(&mut s, Duration::from_secs(5)).await {
        Some(Message::Close(RpcError::Protocol { reason })) => {
            assert!(reason.contains("4096"), "{reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    by.still_served().await;
    assert_eq!(server.stats().connections, 1);
}

#[tokio::test]
async fn silent_sockets_make_room_for_new_handshakes() {
    let (server, addr, _) = calc_server_with(tight()).await;
    let by = Bystander::new(&addr).await;
    // 20 sockets from one address that never say a word.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tcp_from("127.0.0.1", &addr).await);
    }
    // A newcomer from that very address is still served: the oldest silent
    // handshakes are dropped for it.
    let late = Raw::over(tcp_from("127.0.0.1", &addr).await).await;
    drop(late);
    by.still_served().await;
    // At most the per-address cap of them is still open, long before the
    // handshake timeout.
    let mut open = 0;
    for s in &mut silent {
        if recv_within(s, Duration::from_millis(20)).await.is_some() {
            open += 1;
        } else {
            let mut b = [0u8; 1];
            match s.try_read(&mut b) {
                Ok(0) => {}
                _ => open += 1,
            }
        }
    }
    assert!(open <= 4, "{open} silent handshakes still open");
    assert_eq!(server.stats().connections, 1);
}

#[tokio::test]
async fn connections_per_address_are_capped_with_a_typed_refusal() {
    let (server, addr, _) = calc_server_with(tight()).await;
    let by = Bystander::new(&addr).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(Raw::over(tcp_from("127.0.0.3", &addr).await).await);
    }
    let mut fifth = tcp_from("127.0.0.3", &addr).await;
    send_on(&mut fifth, &hello(rpc_core::NodeId::random())).await;
    match recv_within(&mut fifth, Duration::from_secs(5)).await {
        Some(Message::Close(RpcError::Overloaded { reason })) => {
            assert!(reason.contains("too many connections"), "{reason}");
        }
        other => panic!("expected an overloaded close, got {other:?}"),
    }
    by.still_served().await;
    // One leaves: room for another.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    held.push(Raw::over(tcp_from("127.0.0.3", &addr).await).await);
    assert_eq!(server.stats().connections, 5);
}

#[tokio::test]
async fn calls_in_flight_are_counted_by_call_and_ids_are_not_reused() {
    let (server, addr, _) = calc_server_with(tight()).await;
    let by = Bystander::new(&addr).await;
    let (_n, cap) = calc_cap(&addr).await;
    let mut raw = Raw::connect(&addr).await;
    for id in 1..=8 {
        raw.request(id, &cap, "sleep", vec![arg(&10_000u64)]).await;
    }
    raw.request(9, &cap, "sleep", vec![arg(&10_000u64)]).await;
    let e = system_error(raw.recv().await);
    assert!(matches!(e, RpcError::Overloaded { .. }), "{e:?}");
    by.still_served().await;
    // Reusing the id of a call still running closes the connection.
    raw.request(3, &cap, "sleep", vec![arg(&10_000u64)]).await;
    match raw.recv().await {
        Message::Close(RpcError::Protocol { reason }) => {
            assert!(reason.contains("reused"), "{reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    // Its calls were stopped with it.
    let t0 = Instant::now();
    while server.stats().inflight_requests > 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "calls left running");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A tight server that lets one connection run thousands of calls, a
/// bystander, and a raw peer that will not read what it is sent.
struct NonReader {
    server: Node,
    by: Bystander,
    /// The server's "calc", as the raw peer names it.
    cap: Capability,
    raw: Raw,
    /// Connections the server had before the raw peer's.
    others: usize,
    _lookup: Node,
}

impl NonReader {
    async fn start() -> NonReader {
        let (server, addr, _) = calc_server_with(Config {
            max_inflight_per_connection: 4096,
            ..tight()
        })
        .await;
        let by = Bystander::new(&addr).await;
        let (_lookup, cap) = calc_cap(&addr).await;
        let others = server.stats().connections;
        let raw = Raw::connect(&addr).await;
        NonReader {
            server,
            by,
            cap,
            raw,
            others,
            _lookup,
        }
    }

    /// The frame of request `id` for `method(args)` on "calc".
    fn request(&self, id: u64, method: &str, args: Vec<Arg>) -> Vec<u8> {
        let (me, them) = (self.raw.me, self.raw.server);
        frame(&request_message(me, them, id, &self.cap, method, args))
    }
}

#[tokio::test]
async fn a_peer_that_does_not_read_gets_its_requests_paused() {
    let peer = NonReader::start().await;
    // 2,000 requests for 60 KB replies (120 MB), never reading one.
    let frames: Vec<Vec<u8>> = (1..=2000u64)
        .map(|id| peer.request(id, "make_bytes", vec![arg(&60_000u64), arg(&1u8)]))
        .collect();
    let NonReader {
        server, by, raw, ..
    } = peer;
    let (_rd, mut wr) = raw.stream.into_split();
    let writer = tokio::spawn(async move {
        for f in frames {
            if wr.write_all(&f).await.is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The server holds a bounded backlog, not 120 MB of replies.
    let q = server.stats().queued_bytes;
    // The limit, plus the replies of the requests decoded before the reader
    // looked again.
    assert!(q <= (256 + 17 * 64) * KIB as u64, "{q} bytes queued");
    by.still_served().await;
    writer.abort();
}

#[tokio::test]
async fn replies_nobody_pulls_count_against_the_caller() {
    let (server, addr, _) = calc_server_with(tight()).await;
    let by = Bystander::new(&addr).await;
    let (_n, cap) = calc_cap(&addr).await;
    let mut raw = Raw::connect(&addr).await;
    let mut kept = Vec::new();
    let mut refused = None;
    for id in 1..=20 {
        // 100 KB replies travel as transfers the caller should pull.
        raw.request(id, &cap, "make_bytes", vec![arg(&100_000u64), arg(&2u8)])
            .await;
        match raw.recv().await {
            Message::Response(r) => match r.body {
                ResponseBody::Out(mut out) => match out.pop() {
                    Some(Arg::Transfer(meta)) => kept.push(meta),
                    other => panic!("expected a transfer, got {other:?}"),
                },
                ResponseBody::System(e) => {
                    refused = Some(e);
                    break;
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
    let e = refused.expect("a refusal once over budget");
    assert!(matches!(e, RpcError::Overloaded { .. }), "{e:?}");
    assert!(kept.len() <= 10, "{} replies kept", kept.len());
    assert!(server.stats().transfers_out <= 4);
    by.still_served().await;
    // Ending one makes room for the next.
    raw.send(&Message::TransferEnd {
        id: kept[0].id,
        ok: false,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    raw.request(99, &cap, "make_bytes", vec![arg(&100_000u64), arg(&2u8)])
        .await;
    assert!(matches!(
        raw.recv().await,
        Message::Response(r) if matches!(r.body, ResponseBody::Out(_))
    ));
    // Leaving frees everything it was kept.
    drop(raw);
    let t0 = Instant::now();
    while server.stats().transfers_out > 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "transfers left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A transfer reference from `raw` to the server of `size` bytes.
fn announce(raw: &Raw, size: u64) -> TransferMeta {
    TransferMeta {
        id: TransferId::random(),
        sender: raw.me,
        receiver: raw.server,
        size,
        checksum: None,
    }
}

#[tokio::test]
async fn large_arguments_are_pulled_into_memory_within_budget() {
    let (_server, addr, _) = calc_server_with(tight()).await;
    let by = Bystander::new(&addr).await;
    let (_n, cap) = calc_cap(&addr).await;
    let mut raw = Raw::connect(&addr).await;
    // 10 MiB for echo_bytes: over the peer's 1 MiB of pull memory.
    let meta = announce(&raw, 10 * MIB as u64);
    raw.request(1, &cap, "echo_bytes", vec![Arg::Transfer(meta.clone())])
        .await;
    // The node gives up the transfer and answers with a typed error.
    let mut ended = false;
    let mut answer = None;
    while answer.is_none() {
        match raw.recv().await {
            Message::TransferEnd { id, ok } => {
                assert_eq!((id, ok), (meta.id, false));
                ended = true;
            }
            m @ Message::Response(_) => answer = Some(system_error(m)),
            other => panic!("{other:?}"),
        }
    }
    assert!(ended, "the sender was told");
    let e = answer.unwrap();
    assert!(matches!(e, RpcError::Overloaded { .. }), "{e:?}");
    by.still_served().await;
}

#[tokio::test]
async fn a_blob_larger_than_the_disk_is_refused_before_a_byte_is_written() {
    let (_server, addr, _) = calc_server_with(tight()).await;
    let by = Bystander::new(&addr).await;
    let (_n, cap) = calc_cap(&addr).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.bin");
    let mut raw = Raw::connect(&addr).await;
    let meta = announce(&raw, 1 << 40); // 1 TiB
    raw.request(
        1,
        &cap,
        "store_blob",
        vec![arg(&meta), arg(&path.to_string_lossy().into_owned())],
    )
    .await;
    let e = loop {
        match raw.recv().await {
            Message::TransferEnd { .. } => {}
            m @ Message::Response(_) => break system_error(m),
            other => panic!("{other:?}"),
        }
    };
    assert!(matches!(e, RpcError::QuotaExceeded { .. }), "{e:?}");
    assert!(!path.exists(), "nothing written");
    by.still_served().await;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test]
async fn transfers_a_peer_never_finishes_hold_bounded_descriptors_and_leave_nothing() {
    let (server, addr, _) = calc_server_with(tight()).await;
    let by = Bystander::new(&addr).await;
    let (_n, cap) = calc_cap(&addr).await;
    let dir = tempfile::tempdir().unwrap();
    let fds_before = open_fds();
    let mut raw = Raw::connect(&addr).await;
    // 20 blobs to be saved to files; the peer never sends a chunk.
    for id in 1..=20u64 {
        let meta = announce(&raw, 100_000);
        let path = dir.path().join(format!("{id}.bin"));
        raw.request(
            id,
            &cap,
            "store_blob",
            vec![arg(&meta), arg(&path.to_string_lossy().into_owned())],
        )
        .await;
    }
    // Four pulls run (each with a file); the others are refused at once.
    let mut refused = 0;
    let t0 = Instant::now();
    while refused < 16 {
        assert!(t0.elapsed() < Duration::from_secs(10), "{refused} refused");
        match raw.recv().await {
            Message::ChunkRequest { .. } | Message::TransferEnd { .. } => {}
            m @ Message::Response(_) => {
                let e = system_error(m);
                assert!(matches!(e, RpcError::Overloaded { .. }), "{e:?}");
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(server.stats().transfers_in, 4);
    assert!(
        open_fds() <= fds_before + 4 + 4,
        "{} descriptors",
        open_fds()
    );
    by.still_served().await;
    // The peer leaves: files, descriptors and transfers go at once.
    drop(raw);
    let t0 = Instant::now();
    loop {
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        if files == 0 && server.stats().transfers_in == 0 && open_fds() <= fds_before + 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "left behind: {files} files, {} descriptors (before {fds_before}), {:?}",
            open_fds(),
            server.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_dial_to_an_address_that_never_answers_holds_up_no_other() {
    // A listener whose backlog is full: further connection attempts hang.
    let sock = socket2_listener();
    let dead = sock.local_addr().unwrap().to_string();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(&dead),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let (_good, good_addr, _) = calc_server().await;
    let client = Node::new(Config {
        handshake_timeout: Duration::from_secs(3),
        ..Config::default()
    });
    let c = client.clone();
    let d = dead.clone();
    let stuck = tokio::spawn(async move { c.connect(&d).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    let calc: CalcRef = client.lookup(&good_addr, "calc").await.unwrap();
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    // The stuck dial ends by its own timeout.
    let r = tokio::time::timeout(Duration::from_secs(10), stuck)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(r, Err(RpcError::Unreachable { .. })), "{r:?}");
    drop(fillers);
}

/// A listener with a backlog of one that never accepts.
fn socket2_listener() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // std listens with a large backlog; shrink it by listening again.
    let fd = std::os::fd::AsFd::as_fd(&l);
    rustix::net::listen(fd, 1).unwrap();
    l
}

/// A peer that sends requests and then resets its socket without reading
/// the answers: what the server reads after its write failed (the peer's
/// last words, read for a close frame) is not run, as its answer could not
/// be sent; the server goes on serving others.
#[tokio::test]
async fn requests_read_after_a_write_failed_are_not_run() {
    let peer = NonReader::start().await;
    // 400 requests for 60 KB replies (24 MB), never read: more than the
    // sockets' buffers and the backlog hold, so the reader pauses.
    let big: Vec<Vec<u8>> = (1..=400u64)
        .map(|id| peer.request(id, "make_bytes", vec![arg(&60_000u64), arg(&1u8)]))
        .collect();
    let small: Vec<Vec<u8>> = (1001..=1100u64)
        .map(|id| peer.request(id, "add", vec![arg(&1i64), arg(&2i64)]))
        .collect();
    let NonReader {
        server,
        by,
        raw,
        others,
        ..
    } = peer;
    let mut stream = raw.stream;
    for f in big {
        stream.write_all(&f).await.unwrap();
    }
    let t0 = Instant::now();
    let paused = loop {
        let s = server.stats();
        if s.queued_bytes > 256 * KIB as u64 && s.inflight_requests == 0 {
            break s.calls_served;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the reader never paused: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Stable: the reader waits for the peer to read.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.stats().calls_served,
        paused,
        "the reader did not pause"
    );
    // 100 more requests wait unread in the server's socket; then the peer
    // resets the connection.
    for f in small {
        stream.write_all(&f).await.unwrap();
    }
    stream.set_zero_linger().unwrap();
    drop(stream);
    let t0 = Instant::now();
    while server.stats().connections > others {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the connection stayed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = server.stats();
    assert_eq!(
        after.calls_served,
        paused,
        "requests read after the failed write ran ({} more)",
        after.calls_served - paused
    );
    assert_eq!(after.inflight_requests, 0);
    by.still_served().await;
}
