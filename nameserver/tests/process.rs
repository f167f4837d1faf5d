//! The real `nameserver` binary: flags, the `listening` line, resolving
//! through it, a node process killed with SIGKILL vanishing within the lease,
//! and a graceful exit on SIGTERM. The node process is this test executable
//! run again as a child (selected by an environment variable).

mod common;

use common::*;
use nameserver::NameClient;
use nameserver::client::client_context_name;
use rpc_core::Node;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nameserver");
const CHILD_ENV: &str = "NAMESERVER_TEST_CHILD_ADDR";
const LEASE_MS: u64 = 1500;

/// A child process, killed when dropped; its standard output read line by
/// line on a thread, so that every read can have a deadline.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Proc { child, lines }
    }

    /// The rest of the first line holding `prefix` (the test harness may print
    /// the test's name before a child's output on the same line).
    fn wait_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no `{prefix}` line: {e}"));
            if let Some(at) = line.find(prefix) {
                return line[at + prefix.len()..].trim().to_owned();
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the exit status, within [`WAIT`].
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("process status") {
                return status;
            }
            assert!(Instant::now() < deadline, "process did not exit in time");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nameserver() -> (Proc, String) {
    let p = Proc::spawn(Command::new(BIN).args([
        "--listen",
        "127.0.0.1:0",
        "--lease-ms",
        &LEASE_MS.to_string(),
    ]));
    let addr = p.wait_line("listening ");
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    (p, addr)
}

/// Body of the child node process; does nothing in a normal test run.
#[test]
fn child_node() {
    let Some(addr) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let addr = addr.into_string().unwrap();
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
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
        names.close().await.unwrap();
    });
}

fn spawn_child_node(ns_addr: &str) -> (Proc, String) {
    let p = Proc::spawn(
        Command::new(std::env::current_exe().expect("test executable"))
            .args(["--exact", "child_node", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, ns_addr),
    );
    let ctx = p.wait_line("registered ");
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
    child.child.kill().unwrap();
    let killed = Instant::now();
    child.wait_exit();
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
    let status = Command::new("kill")
        .args(["-TERM", &ns.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = ns.wait_exit();
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
