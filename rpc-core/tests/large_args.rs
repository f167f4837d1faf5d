//! Structured (non-byte) arguments and results: a large one, pulled in as a
//! transfer, is decoded on the blocking pool, not on the runtime thread of
//! the call.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use parking_lot::Mutex;
use rpc_core::{Config, Node, RpcError, remote};
use serde::{Deserialize, Deserializer, Serialize};
use std::thread::ThreadId;

/// Rows whose decoding records its length and the thread it ran on.
#[derive(Debug, Serialize)]
pub struct Rows(Vec<u64>);

/// `(row count, thread)` of every `Rows` decoded in this process.
static DECODED: Mutex<Vec<(usize, ThreadId)>> = Mutex::new(Vec::new());

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<u64>::deserialize(d)?;
        DECODED.lock().push((v.len(), std::thread::current().id()));
        Ok(Rows(v))
    }
}

/// Adds up rows.
#[remote(name = "test.Rows")]
pub trait Summer {
    /// The sum of `rows`.
    async fn sum(&self, rows: Rows) -> Result<u64, RpcError>;
    /// `n` rows counting up from 2^32.
    async fn rows(&self, n: u64) -> Result<Rows, RpcError>;
}

struct Adder;

impl Summer for Adder {
    async fn sum(&self, rows: Rows) -> Result<u64, RpcError> {
        Ok(rows.0.iter().sum())
    }

    async fn rows(&self, n: u64) -> Result<Rows, RpcError> {
        Ok(Rows(big_rows(n)))
    }
}

/// Values of 2^32 and up take 9 bytes each in CBOR: 200,000 of them are
/// about 1.8 MB, over the threshold and over 1 MiB.
fn big_rows(n: u64) -> Vec<u64> {
    (0..n).map(|i| (1 << 32) + i).collect()
}

/// The thread the call with `n` rows was decoded on.
fn decoded_on(n: usize) -> ThreadId {
    let d = DECODED.lock();
    let hits: Vec<_> = d.iter().filter(|(len, _)| *len == n).collect();
    assert_eq!(hits.len(), 1, "rows of {n} decoded {} times", hits.len());
    hits[0].1
}

// A current-thread runtime: the runtime thread is this test's thread, and a
// decode that stops it stops both nodes.
#[tokio::test]
async fn a_large_structured_value_is_decoded_off_the_runtime_thread() {
    let server = Node::new(Config::default());
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    server
        .bind_bootstrap("summer", &SummerRef::new(Adder))
        .unwrap();
    let client = Node::new(Config::default());
    let summer: SummerRef = client.lookup(&addr.to_string(), "summer").await.unwrap();
    let runtime_thread = std::thread::current().id();

    // Small: inline, decoded where the request runs.
    let small: Vec<u64> = (0..10).collect();
    assert_eq!(summer.sum(Rows(small)).await.unwrap(), 45);
    assert_eq!(decoded_on(10), runtime_thread);

    // Large argument: pulled in chunks by the server, decoded on the pool.
    let n = 200_000u64;
    let large = big_rows(n);
    let want: u64 = large.iter().sum();
    assert_eq!(summer.sum(Rows(large)).await.unwrap(), want);
    assert_ne!(decoded_on(n as usize), runtime_thread);

    // Large result: pulled in chunks by the client, decoded on the pool.
    let m = 210_000u64;
    let back = summer.rows(m).await.unwrap();
    assert_eq!(back.0, big_rows(m));
    assert_ne!(decoded_on(m as usize), runtime_thread);

    // The node still serves small calls after it.
    assert_eq!(summer.sum(Rows(vec![1, 2])).await.unwrap(), 3);
    client.shutdown().await;
    server.shutdown().await;
}
