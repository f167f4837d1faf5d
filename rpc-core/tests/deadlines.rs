//! Deadlines, cancellation, connection loss, keepalive and graceful
//! shutdown. Deadline and keepalive tests join the nodes in memory and run
//! on tokio's paused clock: their timings are exact and do not depend on a
//! loaded machine.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use rpc_core::{Config, Node, RpcError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(5);

#[tokio::test(start_paused = true)]
async fn deadline_exceeded_and_the_server_stops_the_work() {
    let (_s, probe, client, calc) = memory_pair(Config::default(), Config::default()).await;
    let t0 = tokio::time::Instant::now();
    let err = calc
        .with_timeout(Duration::from_millis(100))
        .sleep(60_000)
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::DeadlineExceeded { .. }), "{err:?}");
    // On the paused clock, exactly the deadline passed.
    assert_eq!(t0.elapsed(), Duration::from_millis(100));
    tokio::time::timeout(BOUND, probe.cancel_seen.notified())
        .await
        .expect("server saw the cancel");
    assert!(probe.cancelled.load(Ordering::SeqCst));
    assert_eq!(client.stats().pending_calls, 0);
}

#[tokio::test]
async fn calls_in_flight_fail_at_once_when_the_connection_is_lost() {
    let (server, addr, probe) = calc_server_with(Config {
        shutdown_grace: Duration::from_millis(50),
        ..Config::default()
    })
    .await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let c = calc.clone();
    let call = tokio::spawn(async move { c.sleep(60_000).await });
    tokio::time::timeout(BOUND, probe.started.notified())
        .await
        .expect("call started");
    let t0 = Instant::now();
    server.shutdown().await;
    let err = tokio::time::timeout(BOUND, call)
        .await
        .expect("failed before its deadline")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, RpcError::ConnectionLost { .. }),
        "{err:?} after {:?}",
        t0.elapsed()
    );
    // The next call cannot reach the node: not sent (tried again until its
    // deadline left no time for another try).
    let err = calc
        .with_timeout(Duration::from_millis(500))
        .echo("x".into())
        .await
        .unwrap_err();
    assert!(err.is_not_sent(), "{err:?}");
}

#[tokio::test]
async fn graceful_shutdown_lets_running_calls_finish() {
    let (server, addr, probe) = calc_server_with(Config {
        shutdown_grace: Duration::from_secs(5),
        ..Config::default()
    })
    .await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let c = calc.clone();
    let call = tokio::spawn(async move { c.sleep(300).await });
    tokio::time::timeout(BOUND, probe.started.notified())
        .await
        .expect("call started");
    let s = server.clone();
    let stop = tokio::spawn(async move { s.shutdown().await });
    // The running call completes normally.
    tokio::time::timeout(BOUND, call)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    tokio::time::timeout(BOUND, stop).await.unwrap().unwrap();
    // New connections are refused once it is down.
    let other = Node::new(Config::default());
    assert!(other.lookup::<CalcRef>(&addr, "calc").await.is_err());
}

#[tokio::test]
async fn requests_after_shutdown_started_are_refused() {
    let (server, addr, probe) = calc_server().await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let c = calc.clone();
    let running = tokio::spawn(async move { c.sleep(500).await });
    tokio::time::timeout(BOUND, probe.started.notified())
        .await
        .expect("call started");
    let s = server.clone();
    let stop = tokio::spawn(async move { s.shutdown().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(calc.echo("x".into()).await.unwrap_err(), RpcError::Shutdown);
    running.await.unwrap().unwrap();
    stop.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn nested_calls_and_callbacks_inherit_the_callers_deadline() {
    let w = World::new(Link::Memory, 3).await;
    let on_b = w.calc(0, 1).await;
    let on_c = w.calc(0, 2).await;
    let c_probe = w.probe(2);
    let short = Duration::from_millis(300);

    // A -> B -> C: C's request carries what is left of A's deadline.
    let t0 = tokio::time::Instant::now();
    let err = on_b
        .with_timeout(short)
        .relay_sleep(on_c, 60_000)
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::DeadlineExceeded { .. }), "{err:?}");
    tokio::time::timeout(BOUND, c_probe.cancel_seen.notified())
        .await
        .expect("the nested call was stopped");
    assert!(
        t0.elapsed() < Duration::from_millis(400),
        "{:?}",
        t0.elapsed()
    );
    let left = c_probe.deadline_left_ms.load(Ordering::SeqCst);
    assert!(left > 0 && left <= 300, "nested deadline {left} ms");

    // A -> B -> back into A (a callback): the same.
    let (mine, my_probe) = CalcImpl::new();
    let err = on_b
        .with_timeout(short)
        .relay_sleep(CalcRef::new(mine), 60_000)
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::DeadlineExceeded { .. }), "{err:?}");
    tokio::time::timeout(BOUND, my_probe.cancel_seen.notified())
        .await
        .expect("the callback was stopped");
    let left = my_probe.deadline_left_ms.load(Ordering::SeqCst);
    assert!(left > 0 && left <= 300, "callback deadline {left} ms");
}

#[tokio::test]
async fn an_idempotent_call_survives_a_dropped_connection_a_plain_one_may_have_executed() {
    use rpc_core::{NodeId, ObjectId};
    let node_id = NodeId::random();
    let obj = ObjectId::random();
    let config = || Config {
        node_id: Some(node_id),
        shutdown_grace: Duration::ZERO,
        ..Config::default()
    };
    let first = Node::new(config());
    let addr = first.listen("127.0.0.1:0").await.unwrap().to_string();
    let cap = first
        .export_as(&CalcRef::new(CalcImpl::new().0), obj)
        .unwrap();
    let client = Node::new(Config::default());
    let calc: CalcRef = client.resolve(cap).unwrap();
    let (c1, c2) = (calc.clone(), calc.clone());
    let plain = tokio::spawn(async move { c1.sleep(300).await });
    let idempotent = tokio::spawn(async move { c2.sleep_idempotent(300).await });
    let t0 = Instant::now();
    while first.stats().inflight_requests < 2 {
        assert!(t0.elapsed() < BOUND, "calls did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The connection breaks with both calls running.
    first.shutdown().await;
    let err = tokio::time::timeout(BOUND, plain)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, RpcError::ConnectionLost { .. }),
        "a plain call reports that it may have executed: {err:?}"
    );
    // The node comes back a little later, same id, same address.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = Node::new(config());
    second.listen(&addr).await.unwrap();
    second.set_resolver(move |node, id| {
        id == obj && node.export_as(&CalcRef::new(CalcImpl::new().0), id).is_ok()
    });
    tokio::time::timeout(BOUND, idempotent)
        .await
        .expect("retried within its deadline")
        .unwrap()
        .expect("the idempotent call succeeded on the restarted node");
}

#[tokio::test(start_paused = true)]
async fn keepalive_closes_a_silent_link_and_fails_its_calls() {
    let keepalive = Config {
        keepalive_interval: Duration::from_millis(300),
        keepalive_timeout: Duration::from_millis(2000),
        ..Config::default()
    };
    let server = Node::new(keepalive.clone());
    let (calc, _) = CalcImpl::new();
    server.bind_bootstrap("calc", &CalcRef::new(calc)).unwrap();
    let client = Node::new(keepalive);
    let cut = Arc::new(AtomicBool::new(false));
    let (x, y) = tokio::io::duplex(DUPLEX_BUFFER);
    let (a, b) = tokio::join!(
        client.connect_stream(Cuttable::new(x, Arc::clone(&cut))),
        server.accept_stream(Cuttable::new(y, Arc::clone(&cut))),
    );
    a.unwrap();
    b.unwrap();
    let calc: CalcRef = client.lookup_peer(server.id(), "calc").await.unwrap();
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    // An idle link to a live peer stays up across several timeouts: pings.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(calc.add(2, 2).await.unwrap(), 4);
    assert_eq!(client.stats().connections, 1);

    // The link goes silent: nothing arrives, nothing is refused.
    cut.store(true, Ordering::SeqCst);
    let t0 = tokio::time::Instant::now();
    let err = calc.sleep(60_000).await.unwrap_err();
    assert!(matches!(err, RpcError::ConnectionLost { .. }), "{err:?}");
    assert!(err.to_string().contains("keepalive"), "{err}");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1700) && waited <= Duration::from_millis(2400),
        "detected after {waited:?}"
    );
    // Both sides forgot the dead connection.
    assert_eq!(client.stats().connections, 0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.stats().connections, 0);
}

#[tokio::test]
async fn a_call_that_was_never_sent_is_sent_again_when_the_peer_is_back() {
    use rpc_core::{NodeId, ObjectId};
    let node_id = NodeId::random();
    let obj = ObjectId::random();
    let config = || Config {
        node_id: Some(node_id),
        shutdown_grace: Duration::ZERO,
        ..Config::default()
    };
    let first = Node::new(config());
    let addr = first.listen("127.0.0.1:0").await.unwrap().to_string();
    let cap = first
        .export_as(&CalcRef::new(CalcImpl::new().0), obj)
        .unwrap();
    let client = Node::new(Config::default());
    let calc: CalcRef = client.resolve(cap).unwrap();
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    first.shutdown().await;
    // No node at the address: the (not idempotent) call is not sent, and
    // is tried again with backoff until the node is back.
    let c = calc.clone();
    let call = tokio::spawn(async move { c.add(2, 3).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !call.is_finished(),
        "gave up while the deadline allowed more tries: {:?}",
        call.await
    );
    let second = Node::new(config());
    second.listen(&addr).await.unwrap();
    second.set_resolver(move |node, id| {
        id == obj && node.export_as(&CalcRef::new(CalcImpl::new().0), id).is_ok()
    });
    let got = tokio::time::timeout(BOUND, call).await.unwrap().unwrap();
    assert_eq!(got.unwrap(), 5);
    // With nobody coming back, the call fails as not sent when its deadline
    // leaves no time for another try.
    second.shutdown().await;
    let t0 = Instant::now();
    let err = calc
        .with_timeout(Duration::from_millis(400))
        .add(1, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CalcError::Rpc(RpcError::Unreachable { .. })),
        "{err:?}"
    );
    assert!(
        t0.elapsed() < Duration::from_millis(1200),
        "{:?}",
        t0.elapsed()
    );
}

/// A value whose every chunk takes `delay` to read: a slow disk on the
/// sending side, so that a pull takes a known least time.
struct SlowSource {
    delay: Duration,
}

impl rpc_core::ReadAt for SlowSource {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::thread::sleep(self.delay);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (offset as usize + i) as u8;
        }
        Ok(())
    }
}

/// A stream that waits `delay` before each read: a slow link into the
/// reading node (at most one read buffer per `delay`).
struct SlowReads<S> {
    inner: S,
    delay: Duration,
    wait: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for SlowReads<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let delay = self.delay;
        let wait = self
            .wait
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
        std::task::ready!(wait.as_mut().poll(cx));
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if r.is_ready() {
            self.wait = None;
        }
        r
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for SlowReads<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The default deadline of the pull tests: far shorter than their pulls.
const SHORT_DEFAULT: Duration = Duration::from_millis(200);

#[tokio::test]
async fn a_large_argument_pulled_with_progress_outlives_the_default_deadline() {
    let (_server, addr, _) = calc_server().await;
    let client = Node::new(Config {
        call_timeout: SHORT_DEFAULT,
        ..Config::default()
    });
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    // 16 chunks at 40 ms each: about 640 ms of steady progress.
    let size = 16 * Config::default().chunk_size as u64;
    let slow = || {
        rpc_core::Blob::from_reader(
            Arc::new(SlowSource {
                delay: Duration::from_millis(40),
            }),
            size,
        )
    };
    let t0 = Instant::now();
    let n = calc.blob_len(slow()).await.unwrap();
    assert_eq!(n, size);
    assert!(
        t0.elapsed() > SHORT_DEFAULT,
        "the pull took {:?}",
        t0.elapsed()
    );

    // A deadline the caller chose still bounds the pull.
    let t0 = Instant::now();
    let err = calc
        .with_timeout(SHORT_DEFAULT)
        .blob_len(slow())
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::DeadlineExceeded { .. }), "{err:?}");
    assert!(
        t0.elapsed() < Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    assert!(client.stats().pending_calls == 0);
}

#[tokio::test]
async fn a_large_result_pulled_with_progress_outlives_the_default_deadline() {
    let server = Node::new(Config::default());
    let (calc, _probe) = CalcImpl::new();
    server.bind_bootstrap("calc", &CalcRef::new(calc)).unwrap();
    let client = Node::new(Config {
        call_timeout: SHORT_DEFAULT,
        ..Config::default()
    });
    // The client reads at most one 64 KiB buffer every 20 ms: a 1 MiB
    // result takes about 17 reads, some 350 ms.
    let (x, y) = tokio::io::duplex(DUPLEX_BUFFER);
    let x = SlowReads {
        inner: x,
        delay: Duration::from_millis(20),
        wait: None,
    };
    let (a, b) = tokio::join!(client.connect_stream(x), server.accept_stream(y));
    a.unwrap();
    b.unwrap();
    let calc: CalcRef = client.lookup_peer(server.id(), "calc").await.unwrap();
    let size = 1 << 20;
    let t0 = Instant::now();
    let bytes = calc.make_bytes(size, 7).await.unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert!(
        t0.elapsed() > SHORT_DEFAULT,
        "the pull took {:?}",
        t0.elapsed()
    );

    let t0 = Instant::now();
    let err = calc
        .with_timeout(SHORT_DEFAULT)
        .make_bytes(size, 7)
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::DeadlineExceeded { .. }), "{err:?}");
    assert!(
        t0.elapsed() < Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn a_pull_that_stops_moving_fails_after_the_transfer_timeout() {
    let (_server, addr, _) = calc_server_with(Config {
        transfer_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let client = Node::new(Config {
        call_timeout: SHORT_DEFAULT,
        ..Config::default()
    });
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    // The sender's disk hangs on the (only) chunk for far longer than the
    // receiver's transfer timeout.
    let stuck = rpc_core::Blob::from_reader(
        Arc::new(SlowSource {
            delay: Duration::from_millis(1500),
        }),
        64 * 1024,
    );
    let t0 = Instant::now();
    let err = calc.blob_len(stuck).await.unwrap_err();
    assert!(
        matches!(err, RpcError::TransferFailed { .. }),
        "{err:?} after {:?}",
        t0.elapsed()
    );
    assert!(
        t0.elapsed() < Duration::from_millis(1200),
        "{:?}",
        t0.elapsed()
    );
}
