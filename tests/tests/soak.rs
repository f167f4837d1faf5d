#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Soak: 100,000 mixed calls from one client (cell reads and writes, data
//! gets pulled and dropped unread, listings of tables, data and names)
//! against the real `nameserver` and `dbserver`; the dbserver's descriptors
//! and resident memory end back near where they were after a warm-up.
//!
//! What this guards: every reply or offered value a call leaves on the
//! server (a transfer, its open file, queued bytes) is released when the
//! caller pulls it or drops it, not kept until a timer runs out.

mod common;

use common::{Proc, start_dbserver, start_nameserver};
use dbserver::api::{Cell, CellRef, Database, DatabaseRef, Table};
use dbserver::{Column, Value, ValueType};
use nameserver::NameClient;
use rpc_core::data::{DataManager, DataManagerRef, Persistence};
use rpc_core::{Blob, Config, DataId, Node};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use test_support::procfs;

/// Calls made after the warm-up.
const CALLS: usize = 100_000;
/// Calls made before the starting figures are read.
const WARMUP: usize = 5_000;
/// Concurrent callers sharing the client's one connection.
const CALLERS: usize = 16;
/// Cells the callers read and write.
const CELLS: usize = 32;
/// Descriptors the dbserver may hold above its start once quiet.
const FD_SLACK: usize = 4;
/// Resident memory the dbserver may hold above its start once quiet
/// (allocator caches and redb's page cache growing with the writes).
const RSS_SLACK_KIB: u64 = 24 * 1024;

/// Open descriptors of `pid`.
fn fds(pid: u32) -> usize {
    procfs::fd_count(&pid.to_string())
}

/// A `/proc/PID/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    procfs::status_kib(&pid.to_string(), field).unwrap()
}

/// What the callers share.
struct Targets {
    cells: Vec<CellRef>,
    rows: Vec<u64>,
    table: dbserver::api::TableRef,
    db: DatabaseRef,
    data: DataManagerRef,
    /// A small item (goes through a transfer like any `Blob`) and a larger one.
    items: Vec<(DataId, usize)>,
    names: NameClient,
}

/// Call `i` of the mix; every tenth of the mix is one kind of call.
async fn one_call(t: &Targets, i: usize) {
    let cell = &t.cells[i % t.cells.len()];
    match i % 20 {
        0..=6 => {
            cell.get().await.expect("cell get");
        }
        7 => {
            cell.set(Value::Int(i as i64)).await.expect("cell set");
        }
        8..=10 => {
            let (id, len) = t.items[i % t.items.len()];
            let (_, blob) = t.data.get(id).await.expect("data get");
            let bytes = blob.into_bytes().await.expect("pull");
            assert_eq!(bytes.len(), len);
        }
        11 => {
            // Offered and never pulled: dropping it tells the server.
            let (id, _) = t.items[i % t.items.len()];
            let (_, blob) = t.data.get(id).await.expect("data get");
            drop(blob);
        }
        12 | 13 => {
            t.table
                .get_row(t.rows[i % t.rows.len()])
                .await
                .expect("get row");
        }
        14 | 15 => {
            t.db.list_tables().await.expect("list tables");
        }
        16 | 17 => {
            t.data.list().await.expect("list data");
        }
        _ => {
            t.names.list("dbserver").await.expect("list names");
        }
    }
}

/// `n` calls of the mix from `CALLERS` tasks; the indices start at `from`.
async fn run(t: &Arc<Targets>, from: usize, n: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let (t, next) = (Arc::clone(t), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    return;
                }
                one_call(&t, from + k).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("caller");
    }
}

#[test]
fn a_hundred_thousand_mixed_calls_leave_descriptors_and_memory_as_they_were() {
    let (_ns, ns_addr) = start_nameserver();
    let data = tempfile::tempdir().unwrap();
    let (db, _) = start_dbserver(&ns_addr, data.path(), "127.0.0.1:0").expect("dbserver");
    let pid = Proc::pid(&db);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let node = Node::new(Config::default());
        let names = NameClient::connect(&node, &ns_addr).await.unwrap();
        let db: DatabaseRef = names.resolve("dbserver/db").await.unwrap();
        let table = db
            .create_table("soak".into(), vec![Column::new("v", ValueType::Int)])
            .await
            .unwrap();
        let (mut cells, mut rows) = (Vec::new(), Vec::new());
        for r in 0..CELLS {
            let row = table.insert(vec![Value::Int(r as i64)]).await.unwrap();
            cells.push(table.cell(row, "v".into()).await.unwrap());
            rows.push(row);
        }
        let dm: DataManagerRef = names.resolve("dbserver/data").await.unwrap();
        let mut items = Vec::new();
        for len in [1024, 256 * 1024] {
            let r = dm
                .put(Blob::from_bytes(vec![7u8; len]), Persistence::Persistent)
                .await
                .unwrap();
            items.push((r.id(), len));
        }
        let t = Arc::new(Targets {
            cells,
            rows,
            table,
            db,
            data: dm,
            items,
            names,
        });

        run(&t, 0, WARMUP).await;
        let (fd0, rss0) = (fds(pid), status_kib(pid, "VmRSS:"));

        let started = Instant::now();
        run(&t, WARMUP, CALLS).await;
        let took = started.elapsed();

        // Unread blobs are ended by a message, not by the call's reply:
        // give the server a moment to close what they held.
        let deadline = Instant::now() + Duration::from_secs(10);
        while fds(pid) > fd0 + FD_SLACK && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (fd1, rss1, hwm) = (
            fds(pid),
            status_kib(pid, "VmRSS:"),
            status_kib(pid, "VmHWM:"),
        );
        eprintln!(
            "soak: {CALLS} calls in {took:?} ({:.0}/s); dbserver descriptors {fd0} -> {fd1}, \
             resident {rss0} -> {rss1} KiB (peak {hwm} KiB)",
            CALLS as f64 / took.as_secs_f64()
        );
        assert!(
            fd1 <= fd0 + FD_SLACK,
            "descriptors grew from {fd0} to {fd1}"
        );
        assert!(
            rss1 <= rss0 + RSS_SLACK_KIB,
            "resident memory grew from {rss0} to {rss1} KiB"
        );
        drop(t);
        node.shutdown().await;
    });
}
