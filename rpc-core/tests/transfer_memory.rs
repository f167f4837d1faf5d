//! A 2 GiB file crosses as a file-backed Blob, both ways, with the memory of
//! both processes bounded. Alone in its test binary, so that this process's
//! peak RSS is this test's.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use rpc_core::{Blob, Config, Node};
use test_support::{Proc, procfs, reexec};

const CHILD_ENV: &str = "RPC_CORE_TEST_MEMORY_CHILD";
const SIZE: u64 = 2 << 30;
/// Allowed growth of resident memory above idle, in KiB.
const BOUND_KIB: u64 = 100 * 1024;

/// Body of the child process; does nothing in a normal test run.
#[test]
fn memory_child() {
    if reexec::child_role(CHILD_ENV).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_node, addr, _) = calc_server().await;
        println!("listening {addr}");
        tokio::task::spawn_blocking(reexec::until_stdin_closes)
            .await
            .unwrap();
    });
}

/// `VmRSS` or `VmHWM` of a process, in KiB.
fn status_kib(pid: &str, field: &str) -> u64 {
    procfs::status_kib(pid, field).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gibibytes_cross_with_bounded_memory() {
    let mut child = Proc::spawn_piped(&mut reexec::child_test("memory_child", CHILD_ENV, "1"))
        .with_wait(std::time::Duration::from_secs(20));
    let addr = child.line("listening ");
    let child_pid = child.pid().to_string();

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    // Sparse: 2 GiB of zeros without writing them first.
    std::fs::File::create(&src).unwrap().set_len(SIZE).unwrap();

    let client = Node::new(Config {
        call_timeout: std::time::Duration::from_secs(600),
        ..Config::default()
    });
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    let child_idle = status_kib(&child_pid, "VmRSS:");
    let me_idle = status_kib("self", "VmRSS:");

    // Up: read from a file here, written to a file there.
    let there = dir.path().join("there");
    let n = calc
        .store_blob(
            Blob::from_file(&src).unwrap(),
            there.to_string_lossy().into_owned(),
        )
        .await
        .unwrap();
    assert_eq!(n, SIZE);
    assert_eq!(std::fs::metadata(&there).unwrap().len(), SIZE);

    // Down: read from that file there, written to a file here.
    let back = dir.path().join("back");
    let blob = calc
        .file_blob(there.to_string_lossy().into_owned())
        .await
        .unwrap();
    assert_eq!(blob.save_to(&back).await.unwrap(), SIZE);
    assert_eq!(std::fs::metadata(&back).unwrap().len(), SIZE);

    let child_peak = status_kib(&child_pid, "VmHWM:");
    let me_peak = status_kib("self", "VmHWM:");
    child.kill9();
    eprintln!(
        "peak RSS above idle: child {} KiB, parent {} KiB",
        child_peak.saturating_sub(child_idle),
        me_peak.saturating_sub(me_idle)
    );
    assert!(
        child_peak.saturating_sub(child_idle) < BOUND_KIB,
        "child grew from {child_idle} to {child_peak} KiB"
    );
    assert!(
        me_peak.saturating_sub(me_idle) < BOUND_KIB,
        "this process grew from {me_idle} to {me_peak} KiB"
    );
}
