//! Nodes in separate processes: the test executable re-runs itself as a child
//! node (selected by an environment variable), which prints `listening ADDR`
//! and serves until its standard input closes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use rpc_core::{Config, Node, RpcError};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use test_support::{Proc, reexec};

const CHILD_ENV: &str = "RPC_CORE_TEST_CHILD";

/// Body of the child process; does nothing in a normal test run.
#[test]
fn child_node() {
    if reexec::child_role(CHILD_ENV).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_node, addr, _) = calc_server().await;
        println!("listening {addr}");
        // Serve until the parent closes our stdin (or dies).
        tokio::task::spawn_blocking(reexec::until_stdin_closes)
            .await
            .unwrap();
    });
}

const HOLDER_ENV: &str = "RPC_CORE_TEST_HOLDER";

/// Body of a child that takes 100 references from the server at
/// `$RPC_CORE_TEST_HOLDER` with a short lease, then waits to be killed.
#[test]
fn child_holder() {
    let Some(addr) = reexec::child_role(HOLDER_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = Node::new(Config {
            lease: std::time::Duration::from_millis(1000),
            ..Config::default()
        });
        let calc: CalcRef = node.lookup(&addr, "calc").await.unwrap();
        let kids = calc.make_children(100).await.unwrap();
        println!("listening holding {}", kids.len());
        tokio::task::spawn_blocking(reexec::until_stdin_closes)
            .await
            .unwrap();
        drop(kids);
    });
}

/// A child node process and the rest of its `listening` line; killed when
/// dropped, its stderr kept and shown if the test fails.
struct ChildNode {
    proc: Proc,
    addr: String,
}

impl ChildNode {
    fn start() -> ChildNode {
        Self::start_as("child_node", CHILD_ENV, "1")
    }

    /// Runs the test `name` in a child process with `env=value` set; it
    /// announces itself with a line containing `listening `.
    fn start_as(name: &str, env: &str, value: &str) -> ChildNode {
        let mut proc = Proc::spawn_piped(&mut reexec::child_test(name, env, value))
            .with_wait(std::time::Duration::from_secs(20));
        let addr = proc.line("listening ");
        ChildNode { proc, addr }
    }
}

#[tokio::test]
async fn by_value_and_callback_across_processes() {
    let server = ChildNode::start();
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&server.addr, "calc").await.unwrap();
    assert_eq!(calc.add(40, 2).await.unwrap(), 42);
    assert_eq!(calc.div(1, 0).await.unwrap_err(), CalcError::DivByZero);
    // Callback into this process, which does not listen.
    let counter = Arc::new(Counter::default());
    calc.subscribe(ListenerRef::new(Arc::clone(&counter)))
        .await
        .unwrap();
    assert_eq!(calc.notify_all(3).await.unwrap(), 1);
    assert_eq!(counter.total.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn three_node_handoff_across_processes() {
    let b = ChildNode::start();
    let c = ChildNode::start();
    let a = Node::new(Config::default());
    let on_b: CalcRef = a.lookup(&b.addr, "calc").await.unwrap();
    let on_c: CalcRef = a.lookup(&c.addr, "calc").await.unwrap();
    // C receives B's reference from A and calls B directly.
    assert_eq!(on_c.relay(on_b, 20, 22).await.unwrap(), 42);
}

#[tokio::test]
async fn a_killed_peer_fails_calls_in_flight_at_once() {
    let mut server = ChildNode::start();
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&server.addr, "calc").await.unwrap();
    let c = calc.clone();
    let call = tokio::spawn(async move { c.sleep(60_000).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    server.proc.kill9();
    let err = tokio::time::timeout(std::time::Duration::from_secs(5), call)
        .await
        .expect("failed long before its deadline")
        .unwrap()
        .unwrap_err();
    assert!(err.is_transport(), "{err:?}");
}

#[tokio::test]
async fn keepalive_detects_a_paused_peer() {
    let server = ChildNode::start();
    let client = Node::new(Config {
        keepalive_interval: std::time::Duration::from_millis(300),
        keepalive_timeout: std::time::Duration::from_millis(2000),
        ..Config::default()
    });
    let calc: CalcRef = client.lookup(&server.addr, "calc").await.unwrap();
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    // An idle connection to a live peer stays up across several timeouts.
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    assert_eq!(calc.add(2, 2).await.unwrap(), 4);
    assert_eq!(client.stats().connections, 1);

    // Pause the peer: its kernel still acknowledges, but nothing answers.
    let pid = server.proc.pid().to_string();
    let stopped = Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    assert!(stopped.success());
    let t0 = std::time::Instant::now();
    let err = calc.sleep(60_000).await.unwrap_err();
    let waited = t0.elapsed();
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    assert!(matches!(err, RpcError::ConnectionLost { .. }), "{err:?}");
    assert!(err.to_string().contains("keepalive"), "{err}");
    assert!(
        waited < std::time::Duration::from_secs(10),
        "detected after {waited:?}"
    );
    // The node forgot the dead connection.
    assert_eq!(client.stats().connections, 0);
}

// Multi-thread: starting the child blocks one thread while the server here
// must answer it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_clients_leases_expire_and_its_objects_are_freed() {
    let (server, addr, _) = calc_server_with(Config {
        lease: std::time::Duration::from_millis(1000),
        ..Config::default()
    })
    .await;
    let base = server.stats();
    let mut holder = ChildNode::start_as("child_holder", HOLDER_ENV, &addr);
    assert_eq!(holder.addr, "holding 100");
    let t0 = std::time::Instant::now();
    while server.stats().leases < base.leases + 100 {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "no leases"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Held for longer than the lease: renewals keep the objects.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(server.stats().exports, base.exports + 100);
    holder.proc.kill9();
    let killed = std::time::Instant::now();
    while server.stats().exports > base.exports {
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(10),
            "objects of a dead client not freed: {:?}",
            server.stats()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(server.stats().leases, base.leases);
}

/// Waits (bounded) until `f` holds.
async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_killed_mid_transfer_fails_the_call_and_leaves_nothing() {
    let mut server = ChildNode::start();
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&server.addr, "calc").await.unwrap();
    let c = calc.clone();
    let pull = tokio::spawn(async move { c.make_bytes(256 << 20, 1).await });
    let stats = client.clone();
    wait_until("the pull to start", move || stats.stats().transfers_in == 1).await;
    server.proc.kill9();
    let err = pull.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::TransferFailed { .. } | RpcError::ConnectionLost { .. }
        ),
        "{err:?}"
    );
    let stats = client.clone();
    wait_until("no transfer state", move || {
        let s = stats.stats();
        s.transfers_in + s.transfers_out == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_killed_mid_transfer_frees_the_senders_copy() {
    let mut server = ChildNode::start();
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&server.addr, "calc").await.unwrap();
    let c = calc.clone();
    let push = tokio::spawn(async move {
        c.echo_bytes(serde_bytes::ByteBuf::from(pattern(256 << 20, 2)))
            .await
    });
    let stats = client.clone();
    wait_until("the push to start", move || {
        stats.stats().transfers_out == 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    server.proc.kill9();
    let err = push.await.unwrap().unwrap_err();
    assert!(err.is_transport(), "{err:?}");
    let stats = client.clone();
    wait_until("the sender's copy freed", move || {
        stats.stats().transfers_out == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_written_file_is_removed_when_the_sender_dies() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, pattern(256 << 20, 3)).unwrap();
    let mut server = ChildNode::start();
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&server.addr, "calc").await.unwrap();
    let blob = calc
        .file_blob(src.to_string_lossy().into_owned())
        .await
        .unwrap();
    let dst = dir.path().join("dst");
    let d = dst.clone();
    let save = tokio::spawn(async move { blob.save_to(&d).await });
    let t0 = std::time::Instant::now();
    while !std::fs::metadata(&dst).is_ok_and(|m| m.len() > 0) {
        // A save that ended before its first bytes show has its reason.
        if save.is_finished() {
            panic!("the save ended before any bytes: {:?}", save.await);
        }
        // Longer than the transfer timeout (30 s): a pull that gets no
        // chunk at all ends first, with its own error.
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(40),
            "timed out waiting for bytes on disk"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.proc.kill9();
    let err = save.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::TransferFailed { .. } | RpcError::ConnectionLost { .. }
        ),
        "{err:?}"
    );
    assert!(!dst.exists(), "the partial file was left behind");
    assert_eq!(client.stats().transfers_in, 0);
}
