//! `rpc-bench`: null-call latency and many-caller throughput of rpc-core, next
//! to a plain tokio TCP length-prefixed echo of the same frame size, in one
//! run on 127.0.0.1.
//!
//! Each server runs in a child process: this binary re-executed with
//! `--serve rpc|echo --runtime FLAVOUR`. A child prints `listening ADDR` and
//! serves until its stdin closes (or it is killed).
//!
//! ```text
//! rpc-bench [--calls N] [--concurrency N] [--tput-calls N] [--warmup N]
//!           [--runtime current|multi] [--awake] [--tls]
//! ```
//!
//! Without `--runtime`, both runtime flavours are measured, one after the
//! other. With `--awake`, a `nice -n 19` busy loop (bounded by `timeout`)
//! keeps a vCPU from halting during the latency figures; see
//! `/work/shared/PERF-NOTES.md`. It is stopped while throughput is measured:
//! on 2 vCPUs the scheduler otherwise keeps the client and the server on one
//! vCPU, and the figure measures them taking turns on it.
//!
//! With `--tls`, a third server (rpc over mutual TLS, credentials from a
//! throwaway CA) is measured in the same run, next to the plaintext one.
//!
//! # The table
//! - `plain tcp echo`: frames of the rpc request's encoded size. Latency: one
//!   frame written, its echo read, one after the other. calls/s: N caller
//!   tasks each hand a frame and a oneshot to a writer task through an mpsc
//!   channel; the writer writes what is waiting in one `write`, a reader
//!   task completes the oneshots in order (issue 14's baseline); against the
//!   simplest echo server, which writes back the whole frames of each read
//!   in one `write`.
//! - `rpc null call`: `ping(u64) -> u64`; calls/s with N tasks sharing one
//!   `PingRef`, hence one connection.
//! - `rpc null call, tls`: the same over mutual TLS 1.3 (`--tls` only).
//! - `cpu/call c+s`: CPU time of the client and the server process per call
//!   in the throughput run (all threads, from `/proc/PID/task/*/schedstat`).
//! - Other echo throughputs, for scale: one task keeping N frames
//!   outstanding, a `write` per frame (no task or channel per call); both
//!   sides writing all they have in
//!   one `write` (what write batching can reach); both sides one `write` per
//!   frame; N tasks each writing under a shared lock and waiting on a oneshot
//!   completed by a reader task (the shape of rpc-core's transport, without
//!   the encoding and the per-request server task).

use clap::{Parser, ValueEnum};
use rpc_core::wire::{
    self, ArgList, IpcHeader, Message, MessageKind, Payload, Request, RequestHeader, Response,
    ResponseBody,
};
use rpc_core::{Capability, Config, Node, RemoteRef, RpcError, remote};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::Proc;
use test_support::bench::{Flavour, Lat, SpinHandle, Spinner, cpus, elapsed_ns, pin, summarize};
use test_support::procfs::cpu_ns;
use tests::pki::{BenchPki, with_tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Any error; the benchmark only reports it.
type BoxErr = Box<dyn std::error::Error + Send + Sync>;

/// Name the rpc server binds its object under.
const PING_NAME: &str = "ping";

/// Upper bound on the `--awake` busy loop's life, in case this process dies
/// without killing it.
const SPIN_LIMIT_SECS: u32 = 600;

/// The benchmarked interface: one small value in, one out.
#[remote(name = "bench.Ping")]
pub trait Ping {
    /// Returns `x + 1`.
    async fn ping(&self, x: u64) -> Result<u64, RpcError>;
}

/// The object the rpc server exports.
struct PingImpl;

impl Ping for PingImpl {
    async fn ping(&self, x: u64) -> Result<u64, RpcError> {
        Ok(x.wrapping_add(1))
    }
}

/// What a child process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServeKind {
    /// An rpc-core node exporting a `Ping` object as `ping`.
    Rpc,
    /// A length-prefixed frame echo.
    Echo,
}

impl ServeKind {
    fn name(self) -> &'static str {
        match self {
            ServeKind::Rpc => "rpc",
            ServeKind::Echo => "echo",
        }
    }
}

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "rpc-bench",
    about = "rpc-core null-call latency and throughput against a plain TCP echo"
)]
struct Args {
    /// Sequential calls timed for the latency figures (after the warm-up).
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// Concurrent callers on one connection (rpc), outstanding frames (echo).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Calls made for each throughput figure (after a warm-up of a tenth of it).
    #[arg(long, default_value_t = 200_000)]
    tput_calls: usize,
    /// Untimed sequential calls before the latency figures.
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// Runtime flavour of both sides; both flavours, one after the other, when absent.
    #[arg(long, value_enum)]
    runtime: Option<Flavour>,
    /// Keep a vCPU awake with a low-priority busy loop during the latency
    /// measurements (paused for throughput).
    #[arg(long)]
    awake: bool,
    /// Leave the current-thread client and servers where the scheduler puts
    /// them while throughput is measured (by default: client on CPU 0,
    /// servers on CPU 1, as on two hosts).
    #[arg(long)]
    no_pin: bool,
    /// Also measure rpc over mutual TLS (a throwaway CA), next to plaintext.
    #[arg(long)]
    tls: bool,
    /// Only the rpc throughput run, for a profiler attached to either side.
    #[arg(long, hide = true)]
    rpc_only: bool,
    /// Internal: serve (in a child process) instead of measuring.
    #[arg(long, value_enum, hide = true)]
    serve: Option<ServeKind>,
    /// Internal: the served rpc node's TLS credential directory.
    #[arg(long, hide = true)]
    tls_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let r = match args.serve {
        Some(kind) => serve(
            kind,
            args.runtime.unwrap_or(Flavour::Current),
            args.tls_dir.clone(),
        ),
        None => bench(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpc-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- servers

/// Child process: serves `kind` on a runtime of `flavour` until stdin closes.
fn serve(kind: ServeKind, flavour: Flavour, tls: Option<PathBuf>) -> Result<(), BoxErr> {
    let rt = flavour.runtime()?;
    // The parent holds our stdin; its end (or the parent's death) ends us.
    test_support::reexec::exit_when_stdin_closes();
    rt.block_on(async move {
        match kind {
            ServeKind::Rpc => serve_rpc(tls).await,
            ServeKind::Echo => serve_echo().await,
        }
    })
}

fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening {addr}");
    let _ = out.flush();
}

async fn serve_rpc(tls: Option<PathBuf>) -> Result<(), BoxErr> {
    let node = Node::new(with_tls(Config::default(), tls.as_deref())?);
    let addr = node.listen("127.0.0.1:0").await?;
    node.bind_bootstrap(PING_NAME, &PingRef::new(PingImpl))?;
    announce(addr);
    std::future::pending::<()>().await;
    Ok(())
}

async fn serve_echo() -> Result<(), BoxErr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    announce(listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = echo_conn(stream).await {
                eprintln!("rpc-bench echo server: {e}");
            }
        });
    }
}

/// Length of the frames wholly inside `buf`, and how many there are.
fn whole_frames(buf: &[u8]) -> (usize, usize) {
    let (mut off, mut n) = (0, 0);
    while let Some(prefix) = buf.get(off..off + 4) {
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        if buf.len() - off < 4 + len {
            break;
        }
        off += 4 + len;
        n += 1;
    }
    (off, n)
}

/// Length the frame starting `buf` needs, if its prefix is there.
fn frame_need(buf: &[u8]) -> Option<usize> {
    let p = buf.get(..4)?;
    Some(4 + u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize)
}

/// How an echo side writes the frames it has ready: the client's first byte
/// on a connection tells the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    /// One `write` per frame, as a call whose answer is written as soon as it
    /// is ready (the way rpc-core answers each request).
    PerFrame,
    /// One `write` for all the frames one `read` brought in.
    Coalesced,
}

impl Writes {
    fn tag(self) -> u8 {
        match self {
            Writes::PerFrame => b'f',
            Writes::Coalesced => b'c',
        }
    }
}

/// Writes the whole frames of `buf[..end]` as `mode` says.
async fn write_frames(
    s: &mut (impl AsyncWriteExt + Unpin),
    buf: &[u8],
    mode: Writes,
) -> std::io::Result<()> {
    match mode {
        Writes::Coalesced => s.write_all(buf).await,
        Writes::PerFrame => {
            let mut off = 0;
            while let Some(need) = frame_need(&buf[off..]) {
                s.write_all(&buf[off..off + need]).await?;
                off += need;
            }
            Ok(())
        }
    }
}

/// Echoes every whole frame back, written as the client's first byte asks.
async fn echo_conn(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mode = match s.read_u8().await? {
        b'c' => Writes::Coalesced,
        _ => Writes::PerFrame,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    loop {
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let (end, _) = whole_frames(&buf[..have]);
        if end > 0 {
            write_frames(&mut s, &buf[..end], mode).await?;
            buf.copy_within(end..have, 0);
            have -= end;
        }
        if let Some(need) = frame_need(&buf[..have])
            && need > buf.len()
        {
            buf.resize(need, 0);
        }
    }
}

/// A server child process and its address; asked to exit when dropped.
struct ServerProc {
    proc: Proc,
    addr: String,
}

impl ServerProc {
    fn spawn(kind: ServeKind, flavour: Flavour, tls: Option<&Path>) -> Result<ServerProc, BoxErr> {
        let mut args = vec!["--serve", kind.name(), "--runtime", flavour.name()];
        let dir = tls.map(|d| d.to_string_lossy().into_owned());
        if let Some(d) = &dir {
            args.extend(["--tls-dir", d]);
        }
        let mut proc = tests::child(&args)?;
        let addr = proc.try_line("listening ")?;
        Ok(ServerProc { proc, addr })
    }
}

// ---------------------------------------------------------------- measurements

async fn connect(addr: &str, mode: Writes) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_u8(mode.tag()).await?;
    Ok(s)
}

/// Sequential ping-pong of `frame`: one write, one read of the echo.
async fn echo_latency(
    addr: &str,
    frame: &[u8],
    warmup: usize,
    calls: usize,
) -> Result<Lat, BoxErr> {
    let mut s = connect(addr, Writes::PerFrame).await?;
    let mut back = vec![0u8; frame.len()];
    let mut ns = Vec::with_capacity(calls);
    for i in 0..warmup + calls {
        let t = Instant::now();
        s.write_all(frame).await?;
        s.read_exact(&mut back).await?;
        let d = elapsed_ns(t);
        if i >= warmup {
            ns.push(d);
        }
    }
    if back != frame {
        return Err("echo returned other bytes".into());
    }
    Ok(summarize(ns))
}

/// One task keeps `depth` frames outstanding, with no per-call task or
/// channel: every read counts the echoed frames and sends as many new ones,
/// written as `mode` says; the server writes as `server` says. Returns calls/s.
async fn echo_pipeline(
    addr: &str,
    frame: &[u8],
    depth: usize,
    total: usize,
    mode: Writes,
    server: Writes,
) -> Result<f64, BoxErr> {
    let mut s = connect(addr, server).await?;
    let fs = frame.len();
    let batch = frame.repeat(depth.max(1));
    let mut buf = vec![0u8; (depth.max(1) * fs).max(64 * 1024)];
    let mut have = 0;
    let t = Instant::now();
    let mut sent = depth.min(total);
    write_frames(&mut s, &batch[..sent * fs], mode).await?;
    let mut done = 0;
    while done < total {
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            return Err("echo server closed the connection".into());
        }
        have += n;
        let (end, k) = whole_frames(&buf[..have]);
        buf.copy_within(end..have, 0);
        have -= end;
        done += k;
        let more = k.min(total - sent);
        if more > 0 {
            write_frames(&mut s, &batch[..more * fs], mode).await?;
            sent += more;
        }
    }
    Ok(total as f64 / t.elapsed().as_secs_f64())
}

/// Reads echoed frames and completes the caller waiting for each id.
async fn demux(
    rd: &mut (impl AsyncReadExt + Unpin),
    pending: &Mutex<HashMap<u64, oneshot::Sender<()>>>,
    cap: usize,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; cap];
    let mut have = 0;
    loop {
        let n = rd.read(&mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let (end, _) = whole_frames(&buf[..have]);
        let mut off = 0;
        while let Some(need) = frame_need(&buf[off..end]) {
            let mut id = [0u8; 8];
            id.copy_from_slice(&buf[off + 4..off + 12]);
            let tx = pending
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .remove(&u64::from_le_bytes(id));
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
            off += need;
        }
        buf.copy_within(end..have, 0);
        have -= end;
    }
}

/// `conc` tasks on one connection, each call a frame tagged with an id and
/// written under a shared lock, answered through a oneshot by one reader
/// task: a multiplexed RPC transport without the encoding, the envelope or a
/// task per request on the server. Returns calls/s.
async fn echo_tasks(addr: &str, frame: &[u8], conc: usize, total: usize) -> Result<f64, BoxErr> {
    if frame.len() < 12 {
        return Err("frame too small to carry a call id".into());
    }
    let (mut rd, wr) = connect(addr, Writes::Coalesced).await?.into_split();
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>> = Arc::default();
    let reader = {
        let pending = Arc::clone(&pending);
        let cap = (conc + 1) * frame.len() + 64 * 1024;
        tokio::spawn(async move {
            let r = demux(&mut rd, &pending, cap).await;
            // Fail the callers still waiting: dropping their senders wakes them.
            if let Ok(mut p) = pending.lock() {
                p.clear();
            }
            r
        })
    };
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(conc);
    for c in 0..conc {
        let n = total / conc + usize::from(c < total % conc);
        let (wr, pending) = (Arc::clone(&wr), Arc::clone(&pending));
        let mut f = frame.to_vec();
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let id = ((c as u64) << 32) | i as u64;
                f[4..12].copy_from_slice(&id.to_le_bytes());
                let (tx, rx) = oneshot::channel();
                pending.lock().map_err(|_| "poisoned")?.insert(id, tx);
                wr.lock().await.write_all(&f).await?;
                rx.await?;
            }
            Ok::<(), BoxErr>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let rate = total as f64 / t.elapsed().as_secs_f64();
    reader.abort();
    Ok(rate)
}

/// `conc` tasks on one connection, each handing its frame and a oneshot to
/// a writer task through an mpsc channel; the writer writes whatever frames
/// are waiting in one `write` and queues their oneshots, in order, for the
/// reader task, which completes them in that order (the echo keeps it):
/// the usual shape of a hand-written tokio client, and issue 14's baseline.
/// Returns calls/s.
async fn echo_writer_task(
    addr: &str,
    frame: &[u8],
    conc: usize,
    total: usize,
) -> Result<f64, BoxErr> {
    use std::collections::VecDeque;
    let (mut rd, mut wr) = connect(addr, Writes::Coalesced).await?.into_split();
    let fifo: Arc<Mutex<VecDeque<oneshot::Sender<()>>>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, oneshot::Sender<()>)>(conc.max(1));
    let writer = {
        let fifo = Arc::clone(&fifo);
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some((f, done)) = rx.recv().await {
                buf.clear();
                buf.extend_from_slice(&f);
                let mut q = vec![done];
                while let Ok((f, done)) = rx.try_recv() {
                    buf.extend_from_slice(&f);
                    q.push(done);
                }
                // Queued before the write: the echo may come back at once.
                fifo.lock().map_err(|_| "poisoned")?.extend(q);
                wr.write_all(&buf).await?;
            }
            Ok::<(), BoxErr>(())
        })
    };
    let reader = {
        let fifo = Arc::clone(&fifo);
        let cap = (conc + 1) * frame.len() + 64 * 1024;
        tokio::spawn(async move {
            let mut buf = vec![0u8; cap];
            let mut have = 0;
            loop {
                let n = rd.read(&mut buf[have..]).await?;
                if n == 0 {
                    return Ok::<(), BoxErr>(());
                }
                have += n;
                let (end, k) = whole_frames(&buf[..have]);
                {
                    let mut q = fifo.lock().map_err(|_| "poisoned")?;
                    for _ in 0..k {
                        if let Some(done) = q.pop_front() {
                            let _ = done.send(());
                        }
                    }
                }
                buf.copy_within(end..have, 0);
                have -= end;
            }
        })
    };
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(conc);
    for c in 0..conc {
        let n = total / conc + usize::from(c < total % conc);
        let tx = tx.clone();
        let f = frame.to_vec();
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                let (done, wait) = oneshot::channel();
                tx.send((f.clone(), done))
                    .await
                    .map_err(|_| "writer gone")?;
                wait.await?;
            }
            Ok::<(), BoxErr>(())
        }));
    }
    drop(tx);
    for task in tasks {
        task.await??;
    }
    let rate = total as f64 / t.elapsed().as_secs_f64();
    writer.await??;
    reader.abort();
    Ok(rate)
}

async fn rpc_latency(ping: &PingRef, warmup: usize, calls: usize) -> Result<Lat, BoxErr> {
    let mut ns = Vec::with_capacity(calls);
    for i in 0..(warmup + calls) as u64 {
        let t = Instant::now();
        let r = ping.ping(i).await?;
        let d = elapsed_ns(t);
        if r != i + 1 {
            return Err(format!("ping({i}) returned {r}").into());
        }
        if i >= warmup as u64 {
            ns.push(d);
        }
    }
    Ok(summarize(ns))
}

/// `conc` tasks sharing one reference (one connection). Returns calls/s.
async fn rpc_throughput(ping: &PingRef, conc: usize, total: usize) -> Result<f64, BoxErr> {
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(conc);
    for c in 0..conc {
        let n = (total / conc + usize::from(c < total % conc)) as u64;
        let p = ping.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let r = p.ping(i).await.map_err(|e| e.to_string())?;
                if r != i + 1 {
                    return Err(format!("ping({i}) returned {r}"));
                }
            }
            Ok::<(), String>(())
        }));
    }
    // Await them all before failing, so no caller outlives the measurement.
    let mut first_err = None;
    for task in tasks {
        if let Err(e) = task.await.map_err(|e| e.to_string()).and_then(|r| r) {
            first_err.get_or_insert(e);
        }
    }
    let rate = total as f64 / t.elapsed().as_secs_f64();
    match first_err {
        Some(e) => Err(e.into()),
        None => Ok(rate),
    }
}

/// The request and response frames of `ping(x)` exactly as the client's
/// connection encodes them (same envelope, ids, capability and deadline).
fn rpc_frames(client: &Node, ping: &PingRef, x: u64) -> Result<(Vec<u8>, Vec<u8>), BoxErr> {
    let h = ping
        .remote_handle()
        .ok_or("the looked-up reference is local")?;
    let cap = h.capability();
    let class = <PingRef as RemoteRef>::CLASS;
    let cbor_u64 = |v: u64| -> Payload {
        // CBOR major type 0 (unsigned), shortest form.
        let mut b = Vec::with_capacity(9);
        match v {
            0..=23 => b.push(v as u8),
            24..=0xff => b.extend([0x18, v as u8]),
            0x100..=0xffff => {
                b.push(0x19);
                b.extend((v as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                b.push(0x1a);
                b.extend((v as u32).to_be_bytes());
            }
            _ => {
                b.push(0x1b);
                b.extend(v.to_be_bytes());
            }
        }
        Payload(b)
    };
    // A call id and argument typical of the throughput run.
    let call_id = 100_000;
    let ipc = |kind, sender, receiver| IpcHeader {
        kind,
        call_id,
        sender,
        receiver,
    };
    let req = Message::Request(Request {
        ipc: ipc(MessageKind::Request, client.id(), cap.home.node),
        rpc: RequestHeader {
            target: Capability {
                class: class.id,
                version: class.version,
                ..cap.clone()
            },
            method_id: 0,
            deadline_ms: Some(u64::try_from(h.timeout().as_millis()).unwrap_or(u64::MAX)),
            deadline_explicit: false,
            trace: None,
        },
        args: ArgList {
            method: "ping".into(),
            args: vec![rpc_core::wire::Arg::Inline(cbor_u64(x))],
        },
    });
    let resp = Message::Response(Response::new(
        ipc(MessageKind::Response, cap.home.node, client.id()),
        ResponseBody::Out(vec![rpc_core::wire::Arg::Inline(cbor_u64(x + 1))]),
    ));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    wire::encode_frame(&req, &mut a, usize::MAX)?;
    wire::encode_frame(&resp, &mut b, usize::MAX)?;
    Ok((a, b))
}

/// Figures of one runtime flavour.
#[derive(Debug)]
struct Figures {
    req_len: usize,
    resp_len: usize,
    echo: Lat,
    rpc: Lat,
    echo_tput: f64,
    echo_cpu: Option<Cpu>,
    rpc_cpu: Option<Cpu>,
    coalesced_tput: f64,
    per_frame_tput: f64,
    pipeline_tput: f64,
    tasks_tput: f64,
    rpc_tput: f64,
    /// The rpc figures over mutual TLS, with `--tls`.
    tls: Option<TlsFigures>,
}

/// Figures of the rpc server over mutual TLS.
#[derive(Debug)]
struct TlsFigures {
    lat: Lat,
    tput: f64,
    cpu: Option<Cpu>,
}

/// Knobs of one measurement run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    calls: usize,
    warmup: usize,
    conc: usize,
    tput_calls: usize,
    rpc_only: bool,
    /// The `--awake` loop, paused while throughput is measured.
    spin: Option<SpinHandle>,
    /// Pin the client and the servers to CPUs of their own for throughput.
    pin: bool,
}

/// The client's runtime thread on CPU 0 and the servers on CPU 1 until
/// dropped.
///
/// Why: on 2 vCPUs the scheduler sometimes keeps a current-thread client and
/// its server on one vCPU for a whole run (`ps -L -o psr`), and they then
/// take turns on it. The echo server does almost nothing per frame, so the
/// echo gains from sharing (1.9M calls/s once against 0.6-0.7M apart) while
/// rpc, with work on both sides, loses (0.31M against 0.4-0.6M): the ratio
/// swung from 0.16x to 0.8x between runs. Pinned, every run measures two
/// processes on CPUs of their own, as on two hosts.
struct Pinned {
    me: u32,
    servers: Vec<u32>,
}

impl Pinned {
    /// Pins; `None` (and a note) when `taskset` failed.
    fn new(servers: Vec<u32>) -> Option<Pinned> {
        // The current-thread runtime runs on the main thread (`block_on` in
        // `bench_flavour`), whose thread id is the process id.
        let me = std::process::id();
        let pinned = Pinned { me, servers };
        if pin(me, "0", false) && pinned.servers.iter().all(|&p| pin(p, "1", true)) {
            Some(pinned)
        } else {
            eprintln!("rpc-bench: could not pin with taskset; throughput measured unpinned");
            None
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let all = format!("0-{}", cpus() - 1);
        pin(self.me, &all, false);
        for &p in &self.servers {
            pin(p, &all, true);
        }
    }
}

/// CPU time per call of the client (this process) and the server, in µs.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    client: f64,
    server: f64,
}

/// Runs `fut` (which makes `calls` calls to the server process `server`) and
/// measures the CPU time both processes spend meanwhile.
async fn with_cpu<T>(
    server: u32,
    calls: usize,
    fut: impl Future<Output = Result<T, BoxErr>>,
) -> Result<(T, Option<Cpu>), BoxErr> {
    let me = std::process::id();
    let before = (cpu_ns(&me.to_string()), cpu_ns(&server.to_string()));
    let r = fut.await?;
    let after = (cpu_ns(&me.to_string()), cpu_ns(&server.to_string()));
    let per_call = |a: Option<u64>, b: Option<u64>| -> Option<f64> {
        Some(b?.saturating_sub(a?) as f64 / calls as f64 / 1_000.0)
    };
    let cpu = per_call(before.0, after.0)
        .zip(per_call(before.1, after.1))
        .map(|(client, server)| Cpu { client, server });
    Ok((r, cpu))
}

/// The server processes.
#[derive(Debug, Clone)]
struct Servers {
    echo_addr: String,
    echo_pid: u32,
    rpc_addr: String,
    rpc_pid: u32,
    /// The TLS rpc server's address and pid, and the client's TLS config.
    tls: Option<(String, u32, Config)>,
}

async fn measure(srv: Servers, plan: Plan) -> Result<Figures, BoxErr> {
    let (echo_addr, rpc_addr) = (&srv.echo_addr, &srv.rpc_addr);
    let client = Node::new(Config::default());
    let ping: PingRef = client.lookup(rpc_addr, PING_NAME).await?;
    if plan.rpc_only {
        let rate = rpc_throughput(&ping, plan.conc, plan.tput_calls).await?;
        eprintln!("rpc only: {rate:.0} calls/s");
        std::process::exit(0);
    }
    let (req, resp) = rpc_frames(&client, &ping, 1_000)?;
    let tput_warm = (plan.tput_calls / 10).max(plan.conc);
    let tls = match &srv.tls {
        Some((addr, pid, config)) => {
            let node = Node::new(config.clone());
            let ping: PingRef = node.lookup(addr, PING_NAME).await?;
            Some((node, ping, *pid))
        }
        None => None,
    };

    // Latency, echo then rpc (then tls), then throughput likewise: each
    // group close in time.
    let echo = echo_latency(echo_addr, &req, plan.warmup, plan.calls).await?;
    let rpc = rpc_latency(&ping, plan.warmup, plan.calls).await?;
    let tls_lat = match &tls {
        Some((_, p, _)) => Some(rpc_latency(p, plan.warmup, plan.calls).await?),
        None => None,
    };

    // Throughput wants the client and the server busy at once, each on a
    // vCPU: with the busy loop running, the scheduler keeps them on one.
    let paused = plan.spin.map(SpinHandle::pause);
    let pinned = if plan.pin {
        let mut pids = vec![srv.echo_pid, srv.rpc_pid];
        pids.extend(srv.tls.as_ref().map(|t| t.1));
        Pinned::new(pids)
    } else {
        None
    };

    // Main baseline: as many caller tasks, an mpsc to a writer task, a FIFO
    // reader, and the simplest echo server (writes back what one read
    // brought in).
    let (conc, n) = (plan.conc, plan.tput_calls);
    let (pf, co) = (Writes::PerFrame, Writes::Coalesced);
    echo_writer_task(echo_addr, &req, conc, tput_warm).await?;
    let (echo_tput, echo_cpu) =
        with_cpu(srv.echo_pid, n, echo_writer_task(echo_addr, &req, conc, n)).await?;
    rpc_throughput(&ping, conc, tput_warm).await?;
    let (rpc_tput, rpc_cpu) = with_cpu(srv.rpc_pid, n, rpc_throughput(&ping, conc, n)).await?;
    let tls = match (tls, tls_lat) {
        (Some((node, p, pid)), Some(lat)) => {
            rpc_throughput(&p, conc, tput_warm).await?;
            let (tput, cpu) = with_cpu(pid, n, rpc_throughput(&p, conc, n)).await?;
            drop(p);
            node.shutdown().await;
            Some(TlsFigures { lat, tput, cpu })
        }
        _ => None,
    };

    // References around it.
    echo_pipeline(echo_addr, &req, conc, tput_warm, pf, co).await?;
    let pipeline_tput = echo_pipeline(echo_addr, &req, conc, n, pf, co).await?;
    echo_pipeline(echo_addr, &req, conc, tput_warm, co, co).await?;
    let coalesced_tput = echo_pipeline(echo_addr, &req, conc, n, co, co).await?;
    echo_pipeline(echo_addr, &req, conc, tput_warm, pf, pf).await?;
    let per_frame_tput = echo_pipeline(echo_addr, &req, conc, n, pf, pf).await?;
    echo_tasks(echo_addr, &req, conc, tput_warm).await?;
    let tasks_tput = echo_tasks(echo_addr, &req, conc, n).await?;
    drop((pinned, paused));

    drop(ping);
    client.shutdown().await;
    Ok(Figures {
        req_len: req.len(),
        resp_len: resp.len(),
        echo,
        rpc,
        echo_tput,
        echo_cpu,
        rpc_cpu,
        coalesced_tput,
        per_frame_tput,
        pipeline_tput,
        tasks_tput,
        rpc_tput,
        tls,
    })
}

fn bench_flavour(flavour: Flavour, plan: Plan, pki: Option<&BenchPki>) -> Result<Figures, BoxErr> {
    let plan = Plan {
        pin: plan.pin && flavour == Flavour::Current,
        ..plan
    };
    let echo = ServerProc::spawn(ServeKind::Echo, flavour, None)?;
    let rpc = ServerProc::spawn(ServeKind::Rpc, flavour, None)?;
    let tls = match pki {
        Some(pki) => {
            let proc = ServerProc::spawn(ServeKind::Rpc, flavour, Some(&pki.server_dir()))?;
            let config = pki.client_config(Config::default())?;
            Some((proc, config))
        }
        None => None,
    };
    let rt = flavour.runtime()?;
    // Spawned, not run by block_on: on the multi-thread runtime this puts the
    // client on a worker thread, next to its I/O, as an application's would be.
    let servers = Servers {
        echo_addr: echo.addr.clone(),
        echo_pid: echo.proc.pid(),
        rpc_addr: rpc.addr.clone(),
        rpc_pid: rpc.proc.pid(),
        tls: tls
            .as_ref()
            .map(|(p, c)| (p.addr.clone(), p.proc.pid(), c.clone())),
    };
    let task = rt.spawn(measure(servers, plan));
    let figures = rt.block_on(task)??;
    rt.shutdown_timeout(Duration::from_secs(1));
    drop((echo, rpc, tls));
    Ok(figures)
}

fn bench(args: &Args) -> Result<(), BoxErr> {
    if args.calls == 0 || args.concurrency == 0 || args.tput_calls < args.concurrency {
        return Err(
            "--calls and --concurrency must be positive, --tput-calls >= --concurrency".into(),
        );
    }
    let flavours = match args.runtime {
        Some(f) => vec![f],
        None => vec![Flavour::Current, Flavour::Multi],
    };
    let spinner = if args.awake {
        let s = Spinner::start(SPIN_LIMIT_SECS)?;
        std::thread::sleep(Duration::from_millis(200));
        Some(s)
    } else {
        None
    };
    let plan = Plan {
        calls: args.calls,
        warmup: args.warmup,
        conc: args.concurrency,
        tput_calls: args.tput_calls,
        rpc_only: args.rpc_only,
        spin: spinner.as_ref().map(Spinner::handle),
        pin: !args.no_pin && cpus() >= 2,
    };
    let pki = if args.tls {
        Some(BenchPki::new()?)
    } else {
        None
    };
    let state = if args.awake {
        "awake (loop paused for calls/s)"
    } else {
        "idle"
    };
    // Other work on the machine keeps vCPUs awake too: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?");
    println!(
        "rpc-bench: 127.0.0.1, servers in child processes, load average {load}; latency: {} \
         sequential calls after {} warm-up; throughput: {} calls, {} callers on one connection",
        plan.calls, plan.warmup, plan.tput_calls, plan.conc
    );
    for (i, f) in flavours.iter().enumerate() {
        let fig = bench_flavour(*f, plan, pki.as_ref())?;
        if i > 0 {
            println!();
        }
        let state = if plan.pin && *f == Flavour::Current {
            format!("{state}; calls/s pinned: client CPU 0, servers CPU 1")
        } else {
            state.to_owned()
        };
        print_table(*f, &state, plan.conc, &fig);
    }
    drop(spinner);
    Ok(())
}

fn print_table(flavour: Flavour, state: &str, conc: usize, f: &Figures) {
    let tput_head = format!("calls/s({conc})");
    println!(
        "runtime={}  state={state}  frames: request {} B, response {} B (rpc), {} B both ways (echo)",
        flavour.name(),
        f.req_len,
        f.resp_len,
        f.req_len
    );
    println!(
        "{:<26}{:>9}{:>9}{:>10}{:>13}{:>19}",
        "", "p50(us)", "p99(us)", "mean(us)", tput_head, "cpu/call c+s(us)"
    );
    let cpu = |c: Option<Cpu>| match c {
        Some(c) => format!("{:.2}+{:.2}", c.client, c.server),
        None => "-".into(),
    };
    let row = |name: &str, l: &Lat, t: f64, c: Option<Cpu>| {
        println!(
            "{name:<26}{:>9.1}{:>9.1}{:>10.1}{:>13.0}{:>19}",
            l.p50,
            l.p99,
            l.mean,
            t,
            cpu(c)
        );
    };
    row("plain tcp echo", &f.echo, f.echo_tput, f.echo_cpu);
    row("rpc null call", &f.rpc, f.rpc_tput, f.rpc_cpu);
    if let Some(t) = &f.tls {
        row("rpc null call, tls", &t.lat, t.tput, t.cpu);
    }
    let x = |a: f64, b: f64| format!("{:.2}x", a / b);
    let cpu_ratio = match (f.rpc_cpu, f.echo_cpu) {
        (Some(r), Some(e)) => x(r.client + r.server, e.client + e.server),
        _ => "-".into(),
    };
    println!(
        "{:<26}{:>9}{:>9}{:>10}{:>13}{:>19}",
        "ratio rpc/echo",
        x(f.rpc.p50, f.echo.p50),
        x(f.rpc.p99, f.echo.p99),
        x(f.rpc.mean, f.echo.mean),
        x(f.rpc_tput, f.echo_tput),
        cpu_ratio
    );
    println!(
        "{:<54}{tput_head:>13}  rpc/that",
        "other echo throughputs (main: mpsc + writer task)"
    );
    let other = |name: &str, t: f64| {
        println!("{name:<54}{t:>13.0}  {:>8}", x(f.rpc_tput, t));
    };
    other("  one task pipelining, a write per frame", f.pipeline_tput);
    other(
        "  both sides one write per read (coalesced)",
        f.coalesced_tput,
    );
    other("  both sides one write per frame", f.per_frame_tput);
    other(
        &format!("  {conc} tasks, write lock + oneshot per call"),
        f.tasks_tput,
    );
    let goal = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "goals: p50 <= 1.5x echo: {} ({}); calls/s >= 0.6x echo: {} ({})",
        goal(f.rpc.p50 <= 1.5 * f.echo.p50),
        x(f.rpc.p50, f.echo.p50),
        goal(f.rpc_tput >= 0.6 * f.echo_tput),
        x(f.rpc_tput, f.echo_tput)
    );
    if let Some(t) = &f.tls {
        println!(
            "tls/plaintext rpc: p50 {}, p99 {}, calls/s {}; goals: p50 <= 1.3x: {}; calls/s >= 0.7x: {}",
            x(t.lat.p50, f.rpc.p50),
            x(t.lat.p99, f.rpc.p99),
            x(t.tput, f.rpc_tput),
            goal(t.lat.p50 <= 1.3 * f.rpc.p50),
            goal(t.tput >= 0.7 * f.rpc_tput)
        );
    }
}
