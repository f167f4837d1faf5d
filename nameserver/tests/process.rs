//! The real `nameserver` binary: flags, the `listening` line, resolving
//! through it, a node process killed with SIGKILL vanishing within the lease,
//! and a graceful exit on SIGTERM. The node process is this test executable
//! run again as a child (selected by an environment variable).

mod common;

use common::*;
use nameserver::NameClient;
use nameserver::client::client_context_name;
use rpc_core::Node;
use std::process::Command;
use std::time::{Duration, Instant};
use test_support::{Proc, reexec};

const BIN: &str = env!("CARGO_BIN_EXE_nameserver");
const CHILD_ENV: &str = "NAMESERVER_TEST_CHILD_ADDR";
const LEASE_MS: u64 = 1500;

fn start_nameserver() -> (Proc, String) {
    let mut p = Proc::spawn(Command::new(BIN).args([
        "--listen",
        "127.0.0.1:0",
        "--lease-ms",
        &LEASE_MS.to_string(),
    ]))
    .with_wait(WAIT);
    let addr = p.line("listening ");
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    (p, addr)
}

/// Body of the child node process; does nothing in a normal test run.
#[test]
fn child_node() {
    let Some(addr) = reexec::child_role(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let node = listening_node().await;
        let ctx = client_context_name(node.id());
        let names = NameClient::connect_as(&node, &addr, &ctx).await.unwrap();
        names
            .bind(&names.own_path("greeter"), &GreeterRef::new(Hello("child")))
            .await
            .unwrap();
        println!("registered {ctx}");
        // Serve until the parent closes our stdin (or kills us).
        tokio::task::spawn_blocking(reexec::until_stdin_closes)
            .await
            .unwrap();
        names.close().await.unwrap();
    });
}

fn spawn_child_node(ns_addr: &str) -> (Proc, String) {
    let mut p = Proc::spawn_piped(&mut reexec::child_test("child_node", CHILD_ENV, ns_addr))
        .with_wait(WAIT);
    let ctx = p.line("registered ");
    (p, ctx)
}

async fn lists(reader: &NameClient, name: &str) -> bool {
    reader
        .list("")
        .await
        .is_ok_and(|l| l.iter().any(|e| e.name == name))
}

#[tokio::test]
async fn resolve_through_the_binary_and_a_killed_node_vanishes() {
    let (mut ns, addr) = start_nameserver();
    let (mut child, ctx) = spawn_child_node(&addr);

    let node = Node::new(fast_config());
    let reader = NameClient::connect(&node, &addr).await.unwrap();
    assert_eq!(reader.lease(), Duration::from_millis(LEASE_MS));
    assert!(lists(&reader, &ctx).await);
    assert!(lists(&reader, "nameserver").await);
    let g: GreeterRef = reader.resolve(&format!("{ctx}/greeter")).await.unwrap();
    assert_eq!(g.greet("parent".into()).await.unwrap(), "child, parent");

    // SIGKILL: no clean shutdown, no release; only the lease removes it.
    child.kill9();
    let killed = Instant::now();
    let lease = Duration::from_millis(LEASE_MS);
    eventually(lease * 3, || async { !lists(&reader, &ctx).await })
        .await
        .expect("the killed node vanishes from the root");
    let after = killed.elapsed();
    assert!(
        after <= lease + Duration::from_millis(1000),
        "vanished after {after:?}"
    );

    // SIGTERM: graceful exit with status 0.
    let exit = ns.terminate();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn help_explains_the_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in ["--listen", "--lease-ms", "listening HOST:PORT"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn bad_flags_and_a_busy_port_fail_with_a_message() {
    let out = Command::new(BIN)
        .args(["--lease-ms", "0", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lease-ms"));

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["--listen", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no `listening` line on failure");
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not listen"));
}
