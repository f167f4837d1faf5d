//! Test interfaces and objects shared by the integration tests.
#![allow(dead_code, missing_docs, unreachable_pub)] // each test file uses a different subset
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

pub mod pulls;
pub mod raw;
pub mod raw_tls;

use bytes::Bytes;
use rpc_core::{Config, Node, RpcError, remote};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum CalcError {
    #[error("division by zero")]
    DivByZero,
    #[error(transparent)]
    Rpc(#[from] RpcError),
}

#[remote(name = "test.Calc")]
pub trait Calc {
    async fn add(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    async fn echo(&self, s: String) -> Result<String, RpcError>;
    async fn sleep(&self, ms: u64) -> Result<(), RpcError>;
    async fn subscribe(&self, l: ListenerRef) -> Result<(), RpcError>;
    async fn notify_all(&self, v: i64) -> Result<u32, RpcError>;
    async fn relay(&self, other: CalcRef, a: i64, b: i64) -> Result<i64, CalcError>;
    async fn is_home(&self, c: CalcRef) -> Result<bool, RpcError>;
    async fn count_listeners(&self, l: Option<Vec<ListenerRef>>) -> Result<usize, RpcError>;
    async fn make_child(&self) -> Result<CalcRef, RpcError>;
    async fn boom(&self) -> Result<(), RpcError>;
    async fn relay_sleep(&self, other: CalcRef, ms: u64) -> Result<(), RpcError>;
    async fn make_children(&self, n: u32) -> Result<Vec<CalcRef>, RpcError>;
    async fn echo_bytes(&self, b: serde_bytes::ByteBuf) -> Result<serde_bytes::ByteBuf, RpcError>;
    async fn make_bytes(&self, n: u64, seed: u8) -> Result<serde_bytes::ByteBuf, RpcError>;
    /// The bytes reversed, each byte buffer type the runtime sends as one byte string.
    async fn rev_vec(&self, b: Vec<u8>) -> Result<Vec<u8>, RpcError>;
    async fn rev_boxed(&self, b: Box<[u8]>) -> Result<Box<[u8]>, RpcError>;
    async fn rev_bytes(&self, b: bytes::Bytes) -> Result<Bytes, RpcError>;
    async fn blob_len(&self, b: rpc_core::Blob) -> Result<u64, RpcError>;
    async fn store_blob(&self, b: rpc_core::Blob, path: String) -> Result<u64, RpcError>;
    async fn file_blob(&self, path: String) -> Result<rpc_core::Blob, RpcError>;
    /// Sleeps; safe to run twice.
    #[idempotent]
    async fn sleep_idempotent(&self, ms: u64) -> Result<(), RpcError>;
}

/// Same class name, other signatures: a stub of another version.
#[remote(name = "test.Calc")]
pub trait CalcV2 {
    async fn add(&self, a: i64, b: i64, c: i64) -> Result<i64, CalcError>;
}

#[remote(name = "test.Listener")]
pub trait Listener {
    async fn notify(&self, v: i64) -> Result<(), RpcError>;
}

/// Records what the server side saw.
#[derive(Default)]
pub struct Probe {
    pub started: Notify,
    pub cancelled: AtomicBool,
    pub cancel_seen: Notify,
    /// Milliseconds the last `sleep` had left before its caller's deadline.
    pub deadline_left_ms: std::sync::atomic::AtomicU64,
}

pub struct CalcImpl {
    pub listeners: parking_lot::Mutex<Vec<ListenerRef>>,
    pub probe: Arc<Probe>,
}

impl CalcImpl {
    pub fn new() -> (Self, Arc<Probe>) {
        let probe = Arc::new(Probe::default());
        (
            CalcImpl {
                listeners: parking_lot::Mutex::new(Vec::new()),
                probe: Arc::clone(&probe),
            },
            probe,
        )
    }
}

struct DropFlag(Arc<Probe>, bool);
impl Drop for DropFlag {
    fn drop(&mut self) {
        if !self.1 {
            self.0.cancelled.store(true, Ordering::SeqCst);
            self.0.cancel_seen.notify_one();
        }
    }
}

impl Calc for CalcImpl {
    async fn add(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        Ok(a + b)
    }
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        if b == 0 {
            return Err(CalcError::DivByZero);
        }
        Ok(a / b)
    }
    async fn echo(&self, s: String) -> Result<String, RpcError> {
        Ok(s)
    }
    async fn sleep(&self, ms: u64) -> Result<(), RpcError> {
        let mut flag = DropFlag(Arc::clone(&self.probe), false);
        if let Some(d) = rpc_core::call_deadline() {
            let left = d.saturating_duration_since(tokio::time::Instant::now());
            self.probe
                .deadline_left_ms
                .store(left.as_millis() as u64, Ordering::SeqCst);
        }
        self.probe.started.notify_one();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        flag.1 = true;
        Ok(())
    }
    async fn subscribe(&self, l: ListenerRef) -> Result<(), RpcError> {
        self.listeners.lock().push(l);
        Ok(())
    }
    async fn notify_all(&self, v: i64) -> Result<u32, RpcError> {
        let ls: Vec<_> = self.listeners.lock().clone();
        for l in &ls {
            l.notify(v).await?;
        }
        Ok(ls.len() as u32)
    }
    async fn relay(&self, other: CalcRef, a: i64, b: i64) -> Result<i64, CalcError> {
        other.add(a, b).await
    }
    async fn is_home(&self, c: CalcRef) -> Result<bool, RpcError> {
        Ok(c.is_local())
    }
    async fn count_listeners(&self, l: Option<Vec<ListenerRef>>) -> Result<usize, RpcError> {
        Ok(l.map_or(0, |v| v.len()))
    }
    async fn make_child(&self) -> Result<CalcRef, RpcError> {
        Ok(CalcRef::new(CalcImpl::new().0))
    }
    async fn boom(&self) -> Result<(), RpcError> {
        panic!("boom");
    }
    async fn relay_sleep(&self, other: CalcRef, ms: u64) -> Result<(), RpcError> {
        other.sleep(ms).await
    }
    async fn echo_bytes(&self, b: serde_bytes::ByteBuf) -> Result<serde_bytes::ByteBuf, RpcError> {
        Ok(b)
    }
    async fn make_bytes(&self, n: u64, seed: u8) -> Result<serde_bytes::ByteBuf, RpcError> {
        Ok(serde_bytes::ByteBuf::from(pattern(n as usize, seed)))
    }
    async fn rev_vec(&self, mut b: Vec<u8>) -> Result<Vec<u8>, RpcError> {
        b.reverse();
        Ok(b)
    }
    async fn rev_boxed(&self, mut b: Box<[u8]>) -> Result<Box<[u8]>, RpcError> {
        b.reverse();
        Ok(b)
    }
    async fn rev_bytes(&self, b: bytes::Bytes) -> Result<Bytes, RpcError> {
        let mut v = b.to_vec();
        v.reverse();
        Ok(Bytes::from(v))
    }
    async fn blob_len(&self, b: rpc_core::Blob) -> Result<u64, RpcError> {
        Ok(b.into_bytes().await?.len() as u64)
    }
    async fn store_blob(&self, b: rpc_core::Blob, path: String) -> Result<u64, RpcError> {
        b.save_to(path).await
    }
    async fn file_blob(&self, path: String) -> Result<rpc_core::Blob, RpcError> {
        rpc_core::Blob::from_file(&path).map_err(|e| RpcError::Remote {
            message: format!("cannot open {path}: {e}"),
        })
    }
    async fn make_children(&self, n: u32) -> Result<Vec<CalcRef>, RpcError> {
        Ok((0..n).map(|_| CalcRef::new(CalcImpl::new().0)).collect())
    }
    async fn sleep_idempotent(&self, ms: u64) -> Result<(), RpcError> {
        self.sleep(ms).await
    }
}

#[derive(Default)]
pub struct Counter {
    pub total: AtomicI64,
    pub calls: AtomicI64,
}

impl Listener for Arc<Counter> {
    async fn notify(&self, v: i64) -> Result<(), RpcError> {
        self.total.fetch_add(v, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A listening node exporting a `CalcImpl` as "calc".
pub async fn calc_server() -> (Node, String, Arc<Probe>) {
    calc_server_with(Config::default()).await
}

pub async fn calc_server_with(config: Config) -> (Node, String, Arc<Probe>) {
    let node = Node::new(config);
    let addr = node.listen("127.0.0.1:0").await.expect("bind");
    let (calc, probe) = CalcImpl::new();
    node.bind_bootstrap("calc", &CalcRef::new(calc))
        .expect("bind");
    (node, addr.to_string(), probe)
}

/// Deterministic bytes that differ at every position modulo 251.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// How the nodes of a [`World`] reach each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// No network: every object lives on one node and is called directly.
    Local,
    /// Nodes connected pairwise by in-memory duplex streams (no ports).
    Memory,
    /// Nodes listening on 127.0.0.1, connecting over TCP.
    Tcp,
}

/// `n` nodes, each exporting a `CalcImpl` as "calc", connected by `link`:
/// the same test body runs against a local object and a remote one
/// (capnp-rpc's `rpc_top_level` pattern).
pub struct World {
    pub link: Link,
    /// One node per index (one node shared by every index for `Local`).
    pub nodes: Vec<Node>,
    /// Listening addresses (`Tcp` only).
    addrs: Vec<String>,
    /// Local reference and probe of each node's "calc".
    calcs: Vec<(CalcRef, Arc<Probe>)>,
}

impl World {
    pub async fn new(link: Link, n: usize) -> World {
        Self::with(link, n, Config::default()).await
    }

    pub async fn with(link: Link, n: usize, config: Config) -> World {
        let count = if link == Link::Local { 1 } else { n };
        let nodes: Vec<Node> = (0..count).map(|_| Node::new(config.clone())).collect();
        let mut addrs = Vec::new();
        match link {
            Link::Local => {}
            Link::Memory => {
                for i in 0..count {
                    for j in i + 1..count {
                        connect_in_memory(&nodes[i], &nodes[j]).await;
                    }
                }
            }
            Link::Tcp => {
                for node in &nodes {
                    addrs.push(node.listen("127.0.0.1:0").await.unwrap().to_string());
                }
            }
        }
        let calcs = (0..n)
            .map(|i| {
                let (calc, probe) = CalcImpl::new();
                let r = CalcRef::new(calc);
                nodes[i.min(count - 1)].bind_bootstrap("calc", &r).unwrap();
                (r, probe)
            })
            .collect();
        World {
            link,
            nodes,
            addrs,
            calcs,
        }
    }

    /// The node playing index `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i.min(self.nodes.len() - 1)]
    }

    /// The "calc" of node `on`, as node `from` sees it.
    pub async fn calc(&self, from: usize, on: usize) -> CalcRef {
        if self.link == Link::Local || from == on {
            return self.calcs[on].0.clone();
        }
        match self.link {
            Link::Tcp => self.node(from).lookup(&self.addrs[on], "calc").await,
            _ => {
                let peer = self.node(on).id();
                self.node(from).lookup_peer(peer, "calc").await
            }
        }
        .unwrap()
    }

    /// What the "calc" of node `on` saw.
    pub fn probe(&self, on: usize) -> &Arc<Probe> {
        &self.calcs[on].1
    }
}

/// A server node exporting a `CalcImpl` as "calc" and a client node, joined
/// in memory; returns both nodes, the server's probe and the client's proxy.
pub async fn memory_pair(server: Config, client: Config) -> (Node, Arc<Probe>, Node, CalcRef) {
    let s = Node::new(server);
    let (calc, probe) = CalcImpl::new();
    s.bind_bootstrap("calc", &CalcRef::new(calc)).unwrap();
    let c = Node::new(client);
    connect_in_memory(&c, &s).await;
    let r = c.lookup_peer(s.id(), "calc").await.unwrap();
    (s, probe, c, r)
}

/// Connects `a` (dialing) and `b` (accepting) over an in-memory duplex.
pub async fn connect_in_memory(a: &Node, b: &Node) {
    let (x, y) = tokio::io::duplex(DUPLEX_BUFFER);
    let (ra, rb) = tokio::join!(a.connect_stream(x), b.accept_stream(y));
    assert_eq!(ra.unwrap(), b.id());
    assert_eq!(rb.unwrap(), a.id());
}

/// Bytes an in-memory link buffers each way.
pub const DUPLEX_BUFFER: usize = 1 << 20;

/// A stream whose link can be cut silently, as a switch port going down:
/// once cut, nothing more arrives and what is written vanishes, and
/// neither end is told.
pub struct Cuttable<S> {
    inner: S,
    cut: Arc<AtomicBool>,
}

impl<S> Cuttable<S> {
    /// `inner`, cut when `cut` is set.
    pub fn new(inner: S, cut: Arc<AtomicBool>) -> Self {
        Cuttable { inner, cut }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Cuttable<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.cut.load(Ordering::SeqCst) {
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Cuttable<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.cut.load(Ordering::SeqCst) {
            return std::task::Poll::Ready(Ok(buf.len()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
