//! Distributed garbage collection: leases taken, renewed and released. The
//! nodes are joined in memory and run on tokio's paused clock, so lease
//! periods pass in no real time and do not depend on a loaded machine.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use rpc_core::{Config, Node, NodeStats};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(10);

fn short_lease() -> Config {
    Config {
        lease: Duration::from_millis(1000),
        ..Config::default()
    }
}

/// Waits until `f` holds for the node's stats, failing after [`BOUND`].
async fn eventually(node: &Node, what: &str, f: impl Fn(&NodeStats) -> bool) {
    let t0 = Instant::now();
    loop {
        let s = node.stats();
        if f(&s) {
            return;
        }
        assert!(t0.elapsed() < BOUND, "{what}: stats stuck at {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_references_handed_out_and_dropped() {
    let (server, _, client, calc) = memory_pair(short_lease(), Config::default()).await;
    let base = server.stats().exports;
    let kids = calc.make_children(10_000).await.unwrap();
    assert_eq!(kids.len(), 10_000);
    assert_eq!(server.stats().exports, base + 10_000);
    // The client's leases arrive (batched), one per object.
    eventually(&server, "leases taken", |s| s.leases >= 10_001).await;
    assert_eq!(kids[1234].add(1, 2).await.unwrap(), 3);
    drop(kids);
    // Released at once on drop, collected once the send grace is over.
    eventually(&server, "exports collected", |s| s.exports == base).await;
    eventually(&server, "leases released", |s| s.leases == 1).await;
    assert_eq!(client.stats().imports, 1);
}

#[tokio::test(start_paused = true)]
async fn client_objects_sent_to_a_server_are_released_when_it_drops_them() {
    let (_server, _, client, calc) = memory_pair(Config::default(), short_lease()).await;
    let base = client.stats().exports;
    let ls: Vec<ListenerRef> = (0..10_000)
        .map(|_| ListenerRef::new(Arc::new(Counter::default())))
        .collect();
    assert_eq!(calc.count_listeners(Some(ls)).await.unwrap(), 10_000);
    assert!(client.stats().exports >= base + 10_000);
    // The server imported them and dropped them after the call.
    eventually(&client, "exports collected", |s| s.exports == base).await;
    assert_eq!(client.stats().leases, 0);
}

#[tokio::test(start_paused = true)]
async fn held_references_outlive_many_lease_periods() {
    let (server, _, _client, calc) = memory_pair(short_lease(), short_lease()).await;
    let kid = calc.make_child().await.unwrap();
    let base = server.stats().exports;
    tokio::time::sleep(Duration::from_millis(3000)).await; // three lease periods
    assert_eq!(kid.add(2, 2).await.unwrap(), 4, "renewals kept it alive");
    assert_eq!(server.stats().exports, base);
    drop(kid);
    eventually(&server, "released", |s| s.exports == base - 1).await;
}

#[tokio::test(start_paused = true)]
async fn pinned_objects_are_never_collected() {
    let (server, _, client, calc) = memory_pair(short_lease(), short_lease()).await;
    let base = server.stats().exports; // bootstrap registry + "calc", both pinned
    calc.add(1, 1).await.unwrap();
    drop(calc);
    client.shutdown().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(server.stats().exports, base);
    let again = Node::new(Config::default());
    connect_in_memory(&again, &server).await;
    let calc: CalcRef = again.lookup_peer(server.id(), "calc").await.unwrap();
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
}

#[tokio::test]
async fn remote_stats_report_the_servers_counts() {
    let (server, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let kid = calc.make_child().await.unwrap();
    eventually(&server, "lease taken", |s| s.leases == 2).await;
    let remote = client.remote_stats(&addr).await.unwrap();
    assert_eq!(remote.exports, server.stats().exports);
    assert_eq!(remote.leases, 2);
    assert_eq!(remote.connections, 1);
    drop(kid);
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_of_calls_and_proxies_keeps_memory_and_tables_flat() {
    let (server, addr, _) = calc_server_with(short_lease()).await;
    let client = Node::new(short_lease());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let base_exports = server.stats().exports;
    let round = |n: i64| {
        let calc = calc.clone();
        async move {
            let mut set = tokio::task::JoinSet::new();
            for t in 0..32i64 {
                let c = calc.clone();
                set.spawn(async move {
                    for i in 0..n / 32 {
                        assert_eq!(c.add(t, i).await.unwrap(), t + i);
                        if i % 50 == 0 {
                            // Proxies made and dropped along the way.
                            let kid = c.make_child().await.unwrap();
                            assert_eq!(kid.add(1, 1).await.unwrap(), 2);
                        }
                    }
                });
            }
            while let Some(r) = set.join_next().await {
                r.unwrap();
            }
        }
    };
    round(20_000).await; // warm up allocator and tables
    let before = rss_kib();
    round(100_000).await;
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 32 * 1024, "resident memory grew by {grown} KiB");
    eventually(&server, "exports back to baseline", |s| {
        s.exports == base_exports
    })
    .await;
    assert_eq!(client.stats().pending_calls, 0);
    assert_eq!(server.stats().inflight_requests, 0);
}
