//! Resolves per second through one name server with 64 concurrent callers,
//! each on its own node (its own connection).
//!
//! ```text
//! cargo run --release -p nameserver --example resolve_bench [-- SECONDS]
//! ```
//! Starts an in-process name server on 127.0.0.1:0, binds one object, then
//! lets every caller resolve `bench/object` into a typed reference in a loop.

use nameserver::NameClient;
use nameserver::server::{self, ServerConfig};
use rpc_core::{Node, RpcError, remote};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Concurrent callers.
const CALLERS: usize = 64;

/// The bound object's interface.
#[remote(name = "bench.Echo")]
pub trait Echo {
    /// Returns its argument.
    async fn echo(&self, v: u64) -> Result<u64, RpcError>;
}

struct EchoImpl;

impl Echo for EchoImpl {
    async fn echo(&self, v: u64) -> Result<u64, RpcError> {
        Ok(v)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::run(listener, ServerConfig::default(), async move {
        let _ = stop_rx.await;
    }));

    let home = Node::new(rpc_core::Config::default());
    home.listen("127.0.0.1:0").await?;
    let names = NameClient::connect_as(&home, &addr, "bench").await?;
    names.bind("bench/object", &EchoRef::new(EchoImpl)).await?;

    let count = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let mut callers = tokio::task::JoinSet::new();
    let mut clients = Vec::new();
    for _ in 0..CALLERS {
        let node = Node::new(rpc_core::Config::default());
        clients.push(Arc::new(NameClient::connect(&node, &addr).await?));
    }
    let start = Instant::now();
    for client in &clients {
        let (client, count, running) =
            (Arc::clone(client), Arc::clone(&count), Arc::clone(&running));
        callers.spawn(async move {
            while running.load(Ordering::Relaxed) {
                let r: Result<EchoRef, _> = client.resolve("bench/object").await;
                if let Err(e) = r {
                    eprintln!("resolve failed: {e}");
                    return;
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    running.store(false, Ordering::Relaxed);
    while callers.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let total = count.load(Ordering::Relaxed);
    println!(
        "{total} resolves in {elapsed:.2} s with {CALLERS} concurrent callers: {:.0} resolves/s",
        total as f64 / elapsed
    );
    drop(clients);
    names.close().await?;
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}
