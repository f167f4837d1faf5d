//! `hostile-bench`: the attacks of issue 13, each run against a fresh real
//! `nameserver` or `dbserver` process by a peer that speaks the protocol by
//! hand, with what the server ends holding: resident memory (peak during
//! the attack and after it, above the server's idle figure), descriptors,
//! threads and disk; and whether a well-behaved client on another address was
//! served meanwhile.
//!
//! ```text
//! cargo build --release --bins && cargo run --release -p tests --bin hostile-bench [NAME]
//! ```
//!
//! With `NAME`, only the attacks whose name contains it run.
//!
//! The servers are the release binaries next to this one. Attackers connect
//! from 127.0.0.2, the well-behaved client from 127.0.0.1, so per-address
//! budgets tell them apart as they would two hosts. Each attack starts with
//! fresh servers, so its figures are its own.

#[allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]
#[path = "../../../rpc-core/tests/common/raw.rs"]
mod raw;

use nameserver::NameClient;
use nameserver::api::NameContext;
use rpc_core::data::{DataError, DataManager, DataManagerRef, Persistence};
use rpc_core::wire::{self, Arg, Message, ResponseBody, TransferMeta};
use rpc_core::{Blob, Capability, Config, DataId, Node, NodeId, RemoteRef, TransferId};
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use test_support::Proc;
use test_support::procfs::{fd_count, status_kib, thread_count};
use tests::{BoxErr, start_servers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Where attackers connect from.
const ATTACKER: &str = "127.0.0.2";
/// Largest frame the raw peer reads or writes.
const MAX: usize = 1 << 24;
const MIB: u64 = 1 << 20;

fn main() -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hostile-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hostile-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- servers

/// A fresh name server and database server, and what the attack measures.
struct Servers {
    ns: Proc,
    ns_addr: String,
    db: Proc,
    db_addr: String,
    data: tempfile::TempDir,
}

impl Servers {
    fn start() -> Result<Servers, BoxErr> {
        let data = tempfile::Builder::new().prefix("hostile-").tempdir()?;
        let ((ns, ns_addr), (db, db_addr)) = start_servers(data.path())?;
        Ok(Servers {
            ns,
            ns_addr,
            db,
            db_addr,
            data,
        })
    }

    /// The server process an attack aims at.
    fn target(&self, t: Target) -> &Proc {
        match t {
            Target::Ns => &self.ns,
            Target::Db => &self.db,
        }
    }
}

/// Which server an attack aims at.
#[derive(Debug, Clone, Copy)]
enum Target {
    Ns,
    Db,
}

/// A server's resident memory, descriptors, threads and disk at one moment.
#[derive(Debug, Clone, Copy)]
struct Reading {
    rss_kib: u64,
    fds: usize,
    threads: usize,
    disk: u64,
}

fn read(p: &Proc, data: &Path) -> Reading {
    let pid = p.pid().to_string();
    Reading {
        rss_kib: status_kib(&pid, "VmRSS:").unwrap_or(0),
        fds: fd_count(&pid),
        threads: thread_count(&pid),
        disk: du(data),
    }
}

/// Bytes of regular files under `dir`.
fn du(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => du(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Resets `VmHWM` to the current resident size.
fn reset_peak(p: &Proc) {
    let _ = std::fs::write(format!("/proc/{}/clear_refs", p.pid()), "5");
}

// ---------------------------------------------------------------- raw peer

/// A TCP connection from the attacker's address.
async fn tcp(addr: &str) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(
        format!("{ATTACKER}:0")
            .parse()
            .map_err(std::io::Error::other)?,
    )?;
    s.connect(addr.parse().map_err(std::io::Error::other)?)
        .await
}

async fn send(s: &mut TcpStream, m: &Message) -> std::io::Result<()> {
    let mut buf = Vec::new();
    wire::encode_frame(m, &mut buf, MAX).map_err(std::io::Error::other)?;
    s.write_all(&buf).await
}

/// The next message; `None` at the end of the stream, on a read error, or
/// after `wait`.
async fn recv(s: &mut TcpStream, wait: Duration) -> Option<Message> {
    tokio::time::timeout(wait, async {
        let mut prefix = [0u8; 4];
        s.read_exact(&mut prefix).await.ok()?;
        let mut body = vec![0; u32::from_be_bytes(prefix) as usize];
        s.read_exact(&mut body).await.ok()?;
        wire::codec::decode_body(&body).ok()
    })
    .await
    .ok()
    .flatten()
}

/// A handshaken raw connection: the stream, its id and the server's.
struct Peer {
    s: TcpStream,
    me: NodeId,
    server: NodeId,
}

impl Peer {
    /// Connects and handshakes; `Err` with what the server said instead.
    async fn connect(addr: &str) -> Result<Peer, String> {
        let mut s = tcp(addr).await.map_err(|e| e.to_string())?;
        let me = NodeId::random();
        send(&mut s, &raw::hello(me))
            .await
            .map_err(|e| e.to_string())?;
        match recv(&mut s, Duration::from_secs(10)).await {
            Some(Message::Hello(h)) => Ok(Peer {
                s,
                me,
                server: h.node,
            }),
            Some(Message::Close(e)) => Err(e.to_string()),
            other => Err(format!("{other:?}")),
        }
    }

    async fn call(&mut self, id: u64, target: &Capability, method: &str, args: Vec<Arg>) {
        let m = raw::request_message(self.me, self.server, id, target, method, args);
        let _ = send(&mut self.s, &m).await;
    }

    /// A transfer reference from this peer of `size` bytes it will never serve.
    fn announce(&self, size: u64) -> TransferMeta {
        TransferMeta {
            id: TransferId::random(),
            sender: self.me,
            receiver: self.server,
            size,
            checksum: None,
        }
    }
}

/// How the answers to a burst of requests came back.
#[derive(Debug, Default)]
struct Answers {
    out: usize,
    offered: usize,
    refused: Vec<String>,
    closed: Option<String>,
}

impl Answers {
    fn summary(&self) -> String {
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for r in &self.refused {
            let k = r
                .split(['{', '(', ':'])
                .next()
                .unwrap_or(r)
                .trim()
                .to_owned();
            match kinds.iter_mut().find(|(n, _)| *n == k) {
                Some(e) => e.1 += 1,
                None => kinds.push((k, 1)),
            }
        }
        let mut s = format!("{} answered", self.out);
        if self.offered > 0 {
            s.push_str(&format!(" ({} as offered transfers)", self.offered));
        }
        for (k, n) in kinds {
            s.push_str(&format!(", {n} {k}"));
        }
        if let Some(c) = &self.closed {
            s.push_str(&format!("; closed: {c}"));
        }
        s
    }
}

/// Reads answers until `n` came, the stream ends, or `wait` passes without one.
async fn answers(p: &mut Peer, n: usize, wait: Duration) -> Answers {
    let mut a = Answers::default();
    while a.out + a.refused.len() < n {
        match recv(&mut p.s, wait).await {
            Some(Message::Response(r)) => match r.body {
                ResponseBody::Out(out) => {
                    a.out += 1;
                    if out.iter().any(|x| matches!(x, Arg::Transfer(_))) {
                        a.offered += 1;
                    }
                }
                ResponseBody::System(e) => a.refused.push(format!("{e:?}")),
                // The data manager's methods fail with its own error type.
                ResponseBody::Application(Arg::Inline(p)) => {
                    match ciborium::from_reader::<DataError, _>(&p.0[..]) {
                        Ok(DataError::Rpc(e)) => a.refused.push(format!("{e:?}")),
                        Ok(e) => a.refused.push(format!("{e:?}")),
                        Err(_) => a.refused.push("an application error".into()),
                    }
                }
                other => a.refused.push(format!("{other:?}")),
            },
            Some(Message::Close(e)) => {
                a.closed = Some(e.to_string());
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    a
}

// ---------------------------------------------------------------- bystander

/// A well-behaved client: a fresh node connects from 127.0.0.1 and lists the
/// root; the time it took, or why it failed.
async fn bystander(ns: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let node = Node::new(Config {
        call_timeout: Duration::from_secs(5),
        ..Config::default()
    });
    let r = async {
        let names = NameClient::connect(&node, ns)
            .await
            .map_err(|e| e.to_string())?;
        names.list("").await.map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    }
    .await;
    node.shutdown().await;
    r.map(|()| t.elapsed())
}

/// Runs `attack` while a bystander connects afresh every 100 ms; the
/// worst bystander time, or its first failure.
async fn with_bystander<T>(ns: &str, attack: impl Future<Output = T>) -> (T, String) {
    let ns = ns.to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = Arc::clone(&stop);
    let watcher = tokio::spawn(async move {
        let (mut worst, mut calls, mut failed) = (Duration::ZERO, 0, None);
        while !s2.load(Ordering::Relaxed) {
            match bystander(&ns).await {
                Ok(d) => worst = worst.max(d),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
            calls += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match failed {
            Some(e) => format!("FAILED ({e})"),
            None => format!("{calls} served, worst {} ms", worst.as_millis()),
        }
    });
    let r = attack.await;
    stop.store(true, Ordering::Relaxed);
    let seen = watcher
        .await
        .unwrap_or_else(|e| format!("bystander task: {e}"));
    (r, seen)
}

// ---------------------------------------------------------------- attacks

/// One row of the table.
struct Row {
    attack: &'static str,
    target: Target,
    outcome: String,
    bystander: String,
    idle: Reading,
    peak_kib: u64,
    during: Reading,
    after: Reading,
}

/// What an attack leaves: the servers, what happened, and the target's
/// reading while the attacker was still connected.
type AttackFut = Pin<Box<dyn Future<Output = Result<(Servers, String, Reading), BoxErr>>>>;

/// An attack on fresh servers.
type Attack = fn(Servers) -> AttackFut;

/// The root context's capability, as the name server hands it out.
async fn root_cap(ns: &str) -> Result<(Node, NameClient, Capability), BoxErr> {
    let node = Node::new(Config::default());
    let names = NameClient::connect(&node, ns).await?;
    let cap = names
        .root()
        .remote_handle()
        .ok_or("the root is not remote")?
        .capability()
        .clone();
    Ok((node, names, cap))
}

fn attack_hellos(s: Servers) -> AttackFut {
    Box::pin(async move {
        let mut conns = Vec::new();
        for _ in 0..96 {
            let mut c = tcp(&s.ns_addr).await?;
            // A 16 MiB hello, of which 64 KiB is sent.
            c.write_all(&(16u32 << 20).to_be_bytes()).await?;
            let _ = c.write_all(&vec![0u8; 64 << 10]).await;
            conns.push(c);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let during = read(&s.ns, s.data.path());
        // Each should be told (a close frame) and closed.
        let (mut told, mut closed) = (0, 0);
        for c in &mut conns {
            if let Some(Message::Close(_)) = recv(c, Duration::from_secs(2)).await {
                told += 1;
            }
            let mut b = [0u8; 256];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_secs(2), c.read(&mut b)).await
            {
                closed += 1;
            }
        }
        Ok((
            s,
            format!("{told} of 96 told the hello is too large, {closed} closed at once"),
            during,
        ))
    })
}

fn attack_silent(s: Servers) -> AttackFut {
    Box::pin(async move {
        let mut held = Vec::new();
        for _ in 0..1100 {
            match tcp(&s.ns_addr).await {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let during = read(&s.ns, s.data.path());
        let mut open = 0;
        for c in &mut held {
            let mut b = [0u8; 1];
            if tokio::time::timeout(Duration::from_millis(1), c.read(&mut b))
                .await
                .is_err()
            {
                open += 1;
            }
        }
        Ok((
            s,
            format!(
                "{} sockets held silent; {open} still open after 1 s (oldest dropped past 64 per address)",
                held.len()
            ),
            during,
        ))
    })
}

fn attack_idle(s: Servers) -> AttackFut {
    Box::pin(async move {
        let (mut ok, mut refused, mut why) = (Vec::new(), 0, String::new());
        for _ in 0..2000 {
            match Peer::connect(&s.ns_addr).await {
                Ok(p) => ok.push(p),
                Err(e) => {
                    refused += 1;
                    if why.is_empty() {
                        why = e;
                    }
                }
            }
        }
        let during = read(&s.ns, s.data.path());
        Ok((
            s,
            format!("{} handshaken, {refused} refused ({why})", ok.len()),
            during,
        ))
    })
}

fn attack_reused_ids(s: Servers) -> AttackFut {
    Box::pin(async move {
        let (_n, _names, root) = root_cap(&s.ns_addr).await?;
        let mut p = Peer::connect(&s.ns_addr).await?;
        for _ in 0..6000 {
            p.call(1, &root, "list", vec![raw::arg(&String::new())])
                .await;
        }
        let a = answers(&mut p, 6000, Duration::from_secs(3)).await;
        let during = read(&s.ns, s.data.path());
        Ok((
            s,
            format!("6,000 requests, all id 1: {}", a.summary()),
            during,
        ))
    })
}

fn attack_unpulled_replies(s: Servers) -> AttackFut {
    Box::pin(async move {
        let (node, _names, root) = root_cap(&s.ns_addr).await?;
        let own = NameClient::connect_as(&node, &s.ns_addr, "attacker").await?;
        let ctx = own.root();
        let long = "n".repeat(200);
        for i in 0..2000 {
            ctx.bind(format!("attacker/{long}{i}"), root.clone())
                .await?;
        }
        let mut p = Peer::connect(&s.ns_addr).await?;
        for id in 1..=3050u64 {
            p.call(id, &root, "list", vec![raw::arg(&"attacker".to_owned())])
                .await;
        }
        let a = answers(&mut p, 3050, Duration::from_secs(5)).await;
        let during = read(&s.ns, s.data.path());
        Ok((
            s,
            format!(
                "3,050 lists of 2,000 long names, never pulled: {}",
                a.summary()
            ),
            during,
        ))
    })
}

fn attack_bindings(s: Servers) -> AttackFut {
    Box::pin(async move {
        let (node, _names, root) = root_cap(&s.ns_addr).await?;
        let own = NameClient::connect_as(&node, &s.ns_addr, "binder").await?;
        let ctx = own.root();
        let (mut ok, mut refused, mut why) = (0, 0, String::new());
        for i in 0..100_000 {
            match ctx.bind(format!("binder/b{i}"), root.clone()).await {
                Ok(()) => ok += 1,
                Err(e) => {
                    refused += 1;
                    if why.is_empty() {
                        why = e.to_string();
                    }
                    if refused >= 100 {
                        break;
                    }
                }
            }
        }
        let during = read(&s.ns, s.data.path());
        Ok((
            s,
            format!("{ok} bound, then {refused} refused ({why}); stopped there"),
            during,
        ))
    })
}

fn attack_large_args(s: Servers) -> AttackFut {
    Box::pin(async move {
        let (_n, _names, root) = root_cap(&s.ns_addr).await?;
        let mut p = Peer::connect(&s.ns_addr).await?;
        for id in 1..=4u64 {
            let meta = p.announce(384 * MIB);
            p.call(id, &root, "list", vec![Arg::Transfer(meta)]).await;
        }
        let a = answers(&mut p, 4, Duration::from_secs(5)).await;
        let during = read(&s.ns, s.data.path());
        Ok((
            s,
            format!("4 arguments of 384 MiB announced: {}", a.summary()),
            during,
        ))
    })
}

/// The dbserver's data manager capability.
async fn data_cap(ns: &str) -> Result<(Node, DataManagerRef, Capability), BoxErr> {
    let node = Node::new(Config::default());
    let names = NameClient::connect(&node, ns).await?;
    let dm: DataManagerRef = names.resolve("dbserver/data").await?;
    let cap = dm
        .remote_handle()
        .ok_or("the data manager is not remote")?
        .capability()
        .clone();
    Ok((node, dm, cap))
}

fn attack_huge_blob(s: Servers) -> AttackFut {
    Box::pin(async move {
        let (_n, _dm, cap) = data_cap(&s.ns_addr).await?;
        let mut p = Peer::connect(&s.db_addr).await?;
        let meta = p.announce(1 << 40);
        p.call(
            1,
            &cap,
            "put",
            vec![raw::arg(&meta), raw::arg(&Persistence::Persistent)],
        )
        .await;
        let a = answers(&mut p, 1, Duration::from_secs(10)).await;
        // And one of 100 MB whose sender leaves without a chunk.
        let meta = p.announce(100_000_000);
        p.call(
            2,
            &cap,
            "put",
            vec![raw::arg(&meta), raw::arg(&Persistence::Persistent)],
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let during = read(&s.db, s.data.path());
        drop(p);
        Ok((
            s,
            format!(
                "1 TiB Blob to data put: {}; a 100 MB one whose sender left",
                a.summary()
            ),
            during,
        ))
    })
}

fn attack_open_transfers(s: Servers) -> AttackFut {
    Box::pin(async move {
        let (_n, _dm, cap) = data_cap(&s.ns_addr).await?;
        let mut p = Peer::connect(&s.db_addr).await?;
        for id in 1..=1000u64 {
            let meta = p.announce(1_000_000);
            p.call(
                id,
                &cap,
                "put",
                vec![raw::arg(&meta), raw::arg(&Persistence::Persistent)],
            )
            .await;
        }
        let a = answers(&mut p, 1000, Duration::from_secs(3)).await;
        let during = read(&s.db, s.data.path());
        Ok((
            s,
            format!("1,000 Blobs announced, never served: {}", a.summary()),
            during,
        ))
    })
}

fn attack_unpulled_gets(s: Servers) -> AttackFut {
    Box::pin(async move {
        let (_n, dm, cap) = data_cap(&s.ns_addr).await?;
        let item: DataId = dm
            .put(Blob::from_bytes(vec![7; 1 << 20]), Persistence::Persistent)
            .await?
            .id();
        let mut p = Peer::connect(&s.db_addr).await?;
        for id in 1..=20_000u64 {
            p.call(id, &cap, "get", vec![raw::arg(&item)]).await;
        }
        let a = answers(&mut p, 20_000, Duration::from_secs(5)).await;
        let during = read(&s.db, s.data.path());
        Ok((
            s,
            format!("20,000 gets of a 1 MiB item, never pulled: {}", a.summary()),
            during,
        ))
    })
}

fn attack_chunk_flood(s: Servers) -> AttackFut {
    Box::pin(async move {
        let (_n, dm, cap) = data_cap(&s.ns_addr).await?;
        let item: DataId = dm
            .put(Blob::from_bytes(vec![7; 4 << 20]), Persistence::Persistent)
            .await?
            .id();
        let mut p = Peer::connect(&s.db_addr).await?;
        p.call(1, &cap, "get", vec![raw::arg(&item)]).await;
        let meta = loop {
            match recv(&mut p.s, Duration::from_secs(10)).await {
                Some(Message::Response(r)) => match r.body {
                    // The answer (DataInfo, Blob) is one inline value, the
                    // Blob in it a transfer reference.
                    ResponseBody::Out(out) => match out.into_iter().find_map(|a| match a {
                        Arg::Transfer(m) => Some(m),
                        Arg::Inline(p) => {
                            ciborium::from_reader::<(ciborium::Value, TransferMeta), _>(&p.0[..])
                                .ok()
                                .map(|(_, m)| m)
                        }
                    }) {
                        Some(m) => break m,
                        None => return Err("the get's answer offered no transfer".into()),
                    },
                    other => return Err(format!("get failed: {other:?}").into()),
                },
                Some(_) => {}
                None => return Err("no answer to the get".into()),
            }
        };
        // 100,000 requests for its first 64 KiB, 6.1 GiB if all were
        // served; the attacker never reads again.
        let req = Message::ChunkRequest {
            id: meta.id,
            offset: 0,
            len: 64 << 10,
        };
        let mut flood = Vec::new();
        for _ in 0..100_000 {
            wire::encode_frame(&req, &mut flood, MAX)?;
        }
        let written = tokio::time::timeout(Duration::from_secs(5), p.s.write_all(&flood)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let during = read(&s.db, s.data.path());
        let how = match written {
            Ok(Ok(())) => "all written".to_owned(),
            Ok(Err(e)) => format!("writing failed: {e}"),
            Err(_) => "the server stopped reading them".to_owned(),
        };
        Ok((
            s,
            format!("100,000 requests for one 64 KiB chunk of a get's answer, never read ({how})"),
            during,
        ))
    })
}

async fn measure(attack: &'static str, target: Target, f: Attack) -> Result<Row, BoxErr> {
    let s = Servers::start()?;
    let (ns_addr, data) = (s.ns_addr.clone(), s.data.path().to_path_buf());
    // Settle, then the idle figures.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = read(s.target(target), &data);
    reset_peak(s.target(target));
    let (r, seen) = with_bystander(&ns_addr, f(s)).await;
    let (s, outcome, during) = r?;
    let p = s.target(target);
    let peak_kib = status_kib(&p.pid().to_string(), "VmHWM:").unwrap_or(0);
    // The attacker is gone (its sockets dropped with the attack's future).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = read(p, &data);
    Ok(Row {
        attack,
        target,
        outcome,
        bystander: seen,
        idle,
        peak_kib,
        during,
        after,
    })
}

async fn run() -> Result<(), BoxErr> {
    // An argument picks the attacks whose name contains it.
    let only = std::env::args().nth(1).unwrap_or_default();
    let attacks: [(&'static str, Target, Attack); 11] = [
        (
            "96 hellos of 16 MiB, all but the end",
            Target::Ns,
            attack_hellos,
        ),
        ("1,100 silent sockets", Target::Ns, attack_silent),
        ("2,000 idle handshaken connections", Target::Ns, attack_idle),
        (
            "call ids reused while in flight",
            Target::Ns,
            attack_reused_ids,
        ),
        (
            "replies over 64 KiB never pulled",
            Target::Ns,
            attack_unpulled_replies,
        ),
        (
            "100,000 bindings from one node",
            Target::Ns,
            attack_bindings,
        ),
        (
            "large values announced as arguments",
            Target::Ns,
            attack_large_args,
        ),
        (
            "a 1 TiB Blob to a method saving to disk",
            Target::Db,
            attack_huge_blob,
        ),
        (
            "1,000 transfers never ended",
            Target::Db,
            attack_open_transfers,
        ),
        (
            "data get in a loop, never pulled",
            Target::Db,
            attack_unpulled_gets,
        ),
        (
            "chunk requests flooded, answers never read",
            Target::Db,
            attack_chunk_flood,
        ),
    ];
    let mut rows = Vec::new();
    for (name, target, f) in attacks.into_iter().filter(|a| a.0.contains(&only)) {
        eprintln!("attack: {name} ...");
        let row = measure(name, target, f).await?;
        eprintln!("  {}", row.outcome);
        rows.push(row);
    }
    println!(
        "| attack | server | what it does now | bystander (fresh connect + list every 100 ms) | RSS idle -> peak / after (MiB) | descriptors idle / during / after | threads idle / during / after | disk after |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mib = |k: u64| k as f64 / 1024.0;
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.0} -> {:.0} / {:.0} | {} / {} / {} | {} / {} / {} | {} B |",
            r.attack,
            match r.target {
                Target::Ns => "nameserver",
                Target::Db => "dbserver",
            },
            r.outcome,
            r.bystander,
            mib(r.idle.rss_kib),
            mib(r.peak_kib),
            mib(r.after.rss_kib),
            r.idle.fds,
            r.during.fds,
            r.after.fds,
            r.idle.threads,
            r.during.threads,
            r.after.threads,
            r.after.disk.saturating_sub(r.idle.disk),
        );
    }
    Ok(())
}
