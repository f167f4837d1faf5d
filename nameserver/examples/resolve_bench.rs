//! Resolves per second through one name server with 64 concurrent callers,
//! each on its own node (its own connection), then with the 64 callers
//! sharing one node (one connection, as tasks of one process would).
//!
//! ```text
//! cargo run --release -p nameserver --example resolve_bench [-- SECONDS]
//! ```
//! Starts an in-process name server on 127.0.0.1:0, binds one object, then
//! lets every caller resolve `bench/object` into a typed reference in a loop.
//! Then, as the floor in the same process, 64 plain tokio TCP connections
//! each echo one frame of [`PLAIN_FRAME`] bytes at a time: what the kernel
//! and the runtime cost for the same pattern with no framework at all.

use nameserver::NameClient;
use nameserver::server::{self, ServerConfig};
use rpc_core::{Node, RpcError, remote};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Concurrent callers.
const CALLERS: usize = 64;

/// Bytes of each plain echo frame: about a resolve's request and answer.
const PLAIN_FRAME: usize = 200;

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

    let mut clients = Vec::new();
    for _ in 0..CALLERS {
        let node = Node::new(rpc_core::Config::default());
        clients.push(Arc::new(NameClient::connect(&node, &addr).await?));
    }
    let rate = resolves(&clients, seconds).await;
    println!("{CALLERS} concurrent callers, a node each: {rate:.0} resolves/s");
    drop(clients);
    let node = Node::new(rpc_core::Config::default());
    let shared = Arc::new(NameClient::connect(&node, &addr).await?);
    let clients = vec![shared; CALLERS];
    let shared_rate = resolves(&clients, seconds).await;
    println!("{CALLERS} concurrent callers sharing one node: {shared_rate:.0} resolves/s");
    drop(clients);
    names.close().await?;
    let _ = stop_tx.send(());
    server.await??;

    let plain = plain_echo(seconds).await?;
    println!(
        "plain tcp echo of {PLAIN_FRAME} bytes, {CALLERS} connections, one frame in flight each: \
         {plain:.0} round trips/s; resolves on a node each are {:.2}x of it",
        rate / plain
    );
    Ok(())
}

/// Resolves per second of one caller per entry of `clients`, for `seconds`.
async fn resolves(clients: &[Arc<NameClient>], seconds: u64) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let mut callers = tokio::task::JoinSet::new();
    let start = Instant::now();
    for client in clients {
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
    let total = count.load(Ordering::Relaxed);
    total as f64 / start.elapsed().as_secs_f64()
}

/// Round trips per second of [`CALLERS`] plain TCP connections, each
/// echoing one [`PLAIN_FRAME`]-byte frame at a time, for `seconds`.
async fn plain_echo(seconds: u64) -> std::io::Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; PLAIN_FRAME];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&buf).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let count = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let mut conns = Vec::new();
    for _ in 0..CALLERS {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        conns.push(s);
    }
    let start = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for mut s in conns {
        let (count, running) = (Arc::clone(&count), Arc::clone(&running));
        callers.spawn(async move {
            let mut buf = [7u8; PLAIN_FRAME];
            while running.load(Ordering::Relaxed) {
                s.write_all(&buf).await?;
                s.read_exact(&mut buf).await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, std::io::Error>(())
        });
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    running.store(false, Ordering::Relaxed);
    while let Some(r) = callers.join_next().await {
        r.map_err(std::io::Error::other)??;
    }
    let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    server.abort();
    Ok(rate)
}
