//! Test interfaces and an in-process name server shared by the integration tests.
#![allow(dead_code, missing_docs, unreachable_pub)] // each test file uses a different subset

use nameserver::server::{self, ServerConfig};
use rpc_core::{Config, Node, RpcError, remote};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(10);

#[remote(name = "test.Greeter")]
pub trait Greeter {
    async fn greet(&self, who: String) -> Result<String, RpcError>;
}

/// Same class name, other method signatures: another version of the interface.
#[remote(name = "test.Greeter")]
pub trait GreeterV2 {
    async fn greet(&self, who: String, polite: bool) -> Result<String, RpcError>;
}

#[remote(name = "test.Counter")]
pub trait Counter {
    async fn next(&self) -> Result<u64, RpcError>;
}

pub struct Hello(pub &'static str);

impl Greeter for Hello {
    async fn greet(&self, who: String) -> Result<String, RpcError> {
        Ok(format!("{}, {who}", self.0))
    }
}

#[derive(Default)]
pub struct Count(pub AtomicU64);

impl Counter for Count {
    async fn next(&self) -> Result<u64, RpcError> {
        Ok(self.0.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

/// A name server running in this process through `server::start`: ready
/// when `start` returns.
pub struct TestServer {
    pub addr: String,
    running: Option<server::Running>,
}

impl TestServer {
    pub async fn start(lease: Duration) -> TestServer {
        TestServer::start_on("127.0.0.1:0", lease).await
    }

    pub async fn start_on(addr: &str, lease: Duration) -> TestServer {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local address").to_string();
        let config = ServerConfig {
            lease,
            node: fast_config(),
            ..ServerConfig::default()
        };
        let running = server::start(listener, &config).expect("name server started");
        TestServer {
            addr,
            running: Some(running),
        }
    }

    /// Shuts down gracefully; the port is free when this returns.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            tokio::time::timeout(WAIT, running.stop())
                .await
                .expect("server stopped in time");
        }
    }
}

/// Node settings with a short shutdown grace, so tests finish quickly.
pub fn fast_config() -> Config {
    Config {
        shutdown_grace: Duration::from_millis(100),
        call_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

/// A node that listens on a free port.
pub async fn listening_node() -> Node {
    let node = Node::new(fast_config());
    node.listen("127.0.0.1:0").await.expect("bind");
    node
}

/// Polls `check` every 10 ms until it holds or `within` passes; returns the
/// time it took, or `None`.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
