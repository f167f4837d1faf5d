//! `transfer-bench`: large transfers through rpc-core's large message proxy
//! (issue 5), next to a plain TCP copy of the same bytes, in one run on
//! 127.0.0.1.
//!
//! ```text
//! transfer-bench [--size-mib N] [--repeat N] [--pings N] [--runtime current|multi] [--awake]
//!                [--chunk-kib N] [--window N] [--tls] [--bytes] [--own-conn-pings]
//! ```
//!
//! Servers run in child processes: this binary re-executed with
//! `--serve rpc|tcp`, printing `listening ADDR` and serving until its stdin
//! closes. The peak-RSS figures re-execute the client side too
//! (`--rss-client VARIANT`), because `VmHWM` is a lifetime maximum: every
//! variant gets a fresh server and a fresh client process.
//!
//! # What is measured
//! 1. Throughput of one `--size-mib` value (MB = 10^6 bytes), `--repeat`
//!    rounds, the variants interleaved in every round:
//!    - `plain tcp copy`: a tokio client writes the bytes in 64 KiB writes to
//!      a server that reads and discards them, then answers one byte; timed
//!      until that byte arrives.
//!    - `plain tcp copy, kept in memory`: the same, but the server reads
//!      into one buffer of the value's size, as the in-memory rpc receiver
//!      must: on this machine's VM, first touches of fresh memory cost
//!      about as much as the copy itself.
//!    - `rpc in-memory`: `take(Blob::from_bytes(..))`, the server pulls it with
//!      `into_bytes` and returns the length (the 1 GiB buffer is freed off
//!      the timed path).
//!    - `rpc file up`: `store(Blob::from_file(src), path)`, the server
//!      `save_to`s it (which fsyncs); the file is removed by a later, untimed call.
//!    - `rpc file down`: `fetch(src)` returns `Blob::from_file` on the
//!      server, the client `save_to`s it (fsync included).
//!    - `disk write+fsync`: this process writes the same bytes to a file in
//!      the same directory and fsyncs it: the ceiling of the file variants.
//!    - `fresh memory, first touch`: this process allocates a buffer of the
//!      value's size and fills it. A receiver that keeps the value must touch
//!      that much fresh memory, so `rpc in-memory` cannot beat this rate; its
//!      ratio to the plain copy is printed as the bound of the in-memory aim.
//!    - `rpc Vec<u8>` / `Box<[u8]>` / `bytes::Bytes argument` (with
//!      `--bytes`): the in-memory value as a byte buffer argument
//!      (`take_vec` and so on: a CBOR byte string, pulled as a large value),
//!      not a blob; aim: within 1.2x of the blob's time and peak RSS.
//!    - `rpc in-memory (take), tls` (with `--tls`): the in-memory variant
//!      against a second server over mutual TLS (a throwaway CA), right
//!      after the plaintext one in every round.
//! 2. Peak RSS (`VmHWM` minus `VmRSS` just before the transfer) of a fresh
//!    server and a fresh client process per variant. The in-memory client
//!    holds the value before its idle figure is taken, so its delta is the
//!    framework's overhead; the in-memory server's delta includes the
//!    received value itself (one copy is the floor).
//! 3. Latency of sequential null calls on the transfer's connection: idle,
//!    then while a transfer of each kind runs concurrently: p50, p99, max,
//!    and the share of the transfer's time the caller spent in calls of
//!    5 ms or more. Each measurement starts half a second after the
//!    previous transfer, once its value was freed. With `--own-conn-pings`
//!    the null calls go over a second connection of their own (what a
//!    separate bulk connection per peer would give them).
//! 4. The reference for 3: a plain one-byte tokio TCP echo on a connection
//!    of its own, idle and during each plain copy (the same two kinds of
//!    process, the same bytes), so that 3's ratios can be read against what
//!    this machine gives a plain program.

use clap::{Parser, ValueEnum};
use rpc_core::{Blob, Config, Node, RpcError, remote};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use test_support::Proc;
use test_support::bench::{Flavour, Lat, Spinner, elapsed_ns, mbps, median, summarize};
use test_support::procfs::{cpu_ns, status_kib};
use tests::pki::{BenchPki, with_tls};
use tests::{BoxErr, PlainPing, make_data, plain_copy, write_synced};
use tokio::net::TcpListener;

/// Name the rpc server binds its object under.
const XFER_NAME: &str = "xfer";

/// Upper bound on the `--awake` busy loop's life, in case this process dies
/// without killing it.
const SPIN_LIMIT_SECS: u32 = 900;

/// Deadline of the benchmark's calls: a slow disk must not fail a transfer.
const CALL_TIMEOUT: Duration = Duration::from_secs(900);

/// Transfer knobs given on the command line, passed on to every child process.
#[derive(Debug, Clone, Copy, Default)]
struct Knobs {
    chunk_kib: Option<usize>,
    window: Option<usize>,
}

impl Knobs {
    fn of(args: &Args) -> Knobs {
        Knobs {
            chunk_kib: args.chunk_kib,
            window: args.window,
        }
    }

    /// The node configuration of every process of the run.
    fn config(self) -> Config {
        let d = Config::default();
        Config {
            call_timeout: CALL_TIMEOUT,
            max_large_value: u64::MAX,
            chunk_size: self.chunk_kib.map_or(d.chunk_size, |k| k << 10),
            transfer_window: self.window.unwrap_or(d.transfer_window),
            ..d
        }
    }

    /// Command-line arguments that give a child process the same knobs.
    fn args(self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(k) = self.chunk_kib {
            v.extend(["--chunk-kib".to_owned(), k.to_string()]);
        }
        if let Some(w) = self.window {
            v.extend(["--window".to_owned(), w.to_string()]);
        }
        v
    }
}

/// The benchmarked interface.
#[remote(name = "bench.Xfer")]
pub trait Xfer {
    /// A null call.
    async fn ping(&self) -> Result<(), RpcError>;
    /// Pulls `b` into memory and returns its length.
    async fn take(&self, b: Blob) -> Result<u64, RpcError>;
    /// The length of `v` (a byte string on the wire, like the three below).
    async fn take_vec(&self, v: Vec<u8>) -> Result<u64, RpcError>;
    /// The length of `v`.
    async fn take_boxed(&self, v: Box<[u8]>) -> Result<u64, RpcError>;
    /// The length of `v`.
    async fn take_bytes(&self, v: bytes::Bytes) -> Result<u64, RpcError>;
    /// Writes `b` to the file `path` (`Blob::save_to`) and returns its length.
    async fn store(&self, b: Blob, path: String) -> Result<u64, RpcError>;
    /// A file-backed blob of the file at `path`.
    async fn fetch(&self, path: String) -> Result<Blob, RpcError>;
    /// Removes the file at `path`.
    async fn remove(&self, path: String) -> Result<(), RpcError>;
}

/// The object the rpc server exports.
struct XferImpl;

fn remote_err(what: &str, e: &std::io::Error) -> RpcError {
    RpcError::Remote {
        message: format!("{what}: {e}"),
    }
}

/// The length of `v`, which is freed on a blocking thread: as `take` does.
fn drop_off_path<T: AsRef<[u8]> + Send + 'static>(v: T) -> u64 {
    let n = v.as_ref().len() as u64;
    tokio::task::spawn_blocking(move || drop(v));
    n
}

impl Xfer for XferImpl {
    async fn ping(&self) -> Result<(), RpcError> {
        Ok(())
    }

    async fn take(&self, b: Blob) -> Result<u64, RpcError> {
        let v = b.into_bytes().await?;
        let n = v.len() as u64;
        // Freeing a touched 1 GiB buffer takes tens of ms: an application
        // cost, kept off the measured call, and done as rpc-core advises.
        rpc_core::free_bytes(v);
        Ok(n)
    }

    async fn take_vec(&self, v: Vec<u8>) -> Result<u64, RpcError> {
        Ok(drop_off_path(v))
    }

    async fn take_boxed(&self, v: Box<[u8]>) -> Result<u64, RpcError> {
        Ok(drop_off_path(v))
    }

    async fn take_bytes(&self, v: bytes::Bytes) -> Result<u64, RpcError> {
        Ok(drop_off_path(v))
    }

    async fn store(&self, b: Blob, path: String) -> Result<u64, RpcError> {
        b.save_to(path).await
    }

    async fn fetch(&self, path: String) -> Result<Blob, RpcError> {
        Blob::from_file(&path).map_err(|e| remote_err(&format!("cannot open {path}"), &e))
    }

    async fn remove(&self, path: String) -> Result<(), RpcError> {
        tokio::fs::remove_file(&path)
            .await
            .map_err(|e| remote_err(&format!("cannot remove {path}"), &e))
    }
}

/// What a server child process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServeKind {
    /// An rpc-core node exporting an `Xfer` object.
    Rpc,
    /// Reads a length, then that many bytes, answers one byte; per connection.
    Tcp,
}

impl ServeKind {
    fn name(self) -> &'static str {
        match self {
            ServeKind::Rpc => "rpc",
            ServeKind::Tcp => "tcp",
        }
    }
}

/// A framework transfer variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Variant {
    /// `take(Blob::from_bytes)`: pulled into memory.
    Mem,
    /// `store(Blob::from_file)`: file to file, client to server.
    Up,
    /// `fetch` then `save_to`: file to file, server to client.
    Down,
    /// `take_vec(Vec<u8>)`: a byte buffer argument, not a blob.
    Vec,
    /// `take_boxed(Box<[u8]>)`.
    Boxed,
    /// `take_bytes(bytes::Bytes)`.
    Bytes,
}

impl Variant {
    /// The blob variants, always measured.
    const BLOBS: [Variant; 3] = [Variant::Mem, Variant::Up, Variant::Down];
    /// The byte buffer variants, next to `Mem` with `--bytes`.
    const BYTES: [Variant; 3] = [Variant::Vec, Variant::Boxed, Variant::Bytes];

    /// The variants of a run: the blobs (and the byte buffers with
    /// `--bytes`), cut down to the names in `--only` when it is given.
    fn chosen(args: &Args) -> Vec<Variant> {
        let mut v = Variant::BLOBS.to_vec();
        if args.bytes {
            v.extend(Variant::BYTES);
        }
        v.retain(|v| args.only.is_empty() || args.only.iter().any(|o| o == v.name()));
        v
    }

    /// Sends an in-memory value (prepared outside the timing).
    fn in_memory(self) -> bool {
        matches!(
            self,
            Variant::Mem | Variant::Vec | Variant::Boxed | Variant::Bytes
        )
    }

    fn name(self) -> &'static str {
        match self {
            Variant::Mem => "mem",
            Variant::Up => "up",
            Variant::Down => "down",
            Variant::Vec => "vec",
            Variant::Boxed => "boxed",
            Variant::Bytes => "bytes",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Variant::Mem => "rpc in-memory (take)",
            Variant::Up => "rpc file up (store)",
            Variant::Down => "rpc file down (fetch)",
            Variant::Vec => "rpc Vec<u8> argument",
            Variant::Boxed => "rpc Box<[u8]> argument",
            Variant::Bytes => "rpc bytes::Bytes argument",
        }
    }
}

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "transfer-bench",
    about = "rpc-core large-transfer throughput, peak RSS and latency under load, against plain TCP"
)]
struct Args {
    /// Size of the transferred value, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Rounds of the throughput measurement (each variant once per round).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Sequential null calls timed for the idle latency figure.
    #[arg(long, default_value_t = 5_000)]
    pings: usize,
    /// Runtime flavour of every process.
    #[arg(long, value_enum, default_value = "multi")]
    runtime: Flavour,
    /// Keep a vCPU awake with a low-priority busy loop during the measurements.
    #[arg(long)]
    awake: bool,
    /// `Config::chunk_size` of every node, in KiB (rpc-core's default when absent).
    #[arg(long)]
    chunk_kib: Option<usize>,
    /// `Config::transfer_window` of every node (rpc-core's default when absent).
    #[arg(long)]
    window: Option<usize>,
    /// Also measure the in-memory transfer over mutual TLS (a throwaway CA).
    #[arg(long)]
    tls: bool,
    /// Also measure `Vec<u8>`, `Box<[u8]>` and `bytes::Bytes` arguments of
    /// the same size, next to the in-memory blob.
    #[arg(long)]
    bytes: bool,
    /// Only these variants (comma-separated: mem, up, down, vec, boxed,
    /// bytes), for profiling one of them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Time the null calls on a second connection of their own instead of
    /// the transfer's.
    #[arg(long)]
    own_conn_pings: bool,
    /// Internal: the served rpc node's TLS credential directory.
    #[arg(long, hide = true)]
    tls_dir: Option<PathBuf>,
    /// Internal: serve (in a child process) instead of measuring.
    #[arg(long, value_enum, hide = true)]
    serve: Option<ServeKind>,
    /// Internal: be the client of one peak-RSS measurement.
    #[arg(long, value_enum, hide = true)]
    rss_client: Option<Variant>,
    /// Internal: server address of `--rss-client`.
    #[arg(long, hide = true)]
    addr: Option<String>,
    /// Internal: source file of `--rss-client`.
    #[arg(long, hide = true)]
    src: Option<PathBuf>,
    /// Internal: scratch directory of `--rss-client`.
    #[arg(long, hide = true)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let r = match (args.serve, args.rss_client) {
        (Some(kind), _) => serve(kind, args.runtime, Knobs::of(&args), args.tls_dir.clone()),
        (None, Some(v)) => rss_client(&args, v),
        (None, None) => bench(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("transfer-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- servers

/// Child process: serves `kind` until stdin closes.
fn serve(
    kind: ServeKind,
    flavour: Flavour,
    knobs: Knobs,
    tls: Option<PathBuf>,
) -> Result<(), BoxErr> {
    let rt = flavour.runtime()?;
    // The parent holds our stdin; its end (or the parent's death) ends us.
    test_support::reexec::exit_when_stdin_closes();
    rt.block_on(async move {
        match kind {
            ServeKind::Rpc => serve_rpc(knobs, tls).await,
            ServeKind::Tcp => serve_tcp().await,
        }
    })
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn serve_rpc(knobs: Knobs, tls: Option<PathBuf>) -> Result<(), BoxErr> {
    let node = Node::new(with_tls(knobs.config(), tls.as_deref())?);
    let addr = node.listen("127.0.0.1:0").await?;
    node.bind_bootstrap(XFER_NAME, &XferRef::new(XferImpl))?;
    say(&format!("listening {addr}"));
    std::future::pending::<()>().await;
    Ok(())
}

async fn serve_tcp() -> Result<(), BoxErr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    say(&format!("listening {}", listener.local_addr()?));
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = tests::sink_conn(stream).await {
                eprintln!("transfer-bench tcp server: {e}");
            }
        });
    }
}

// ---------------------------------------------------------------- processes

/// A server child process and its address.
struct ServerProc {
    proc: Proc,
    addr: String,
}

impl ServerProc {
    fn spawn(
        kind: ServeKind,
        flavour: Flavour,
        knobs: Knobs,
        tls: Option<&Path>,
    ) -> Result<ServerProc, BoxErr> {
        let mut args = vec!["--serve", kind.name(), "--runtime", flavour.name()];
        let mut extra = knobs.args();
        if let Some(dir) = tls {
            extra.extend(["--tls-dir".to_owned(), path_str(dir)?]);
        }
        args.extend(extra.iter().map(String::as_str));
        let mut proc = tests::child(&args)?;
        let addr = proc.try_line("listening ")?;
        Ok(ServerProc { proc, addr })
    }
}

// ---------------------------------------------------------------- helpers

fn path_str(p: &Path) -> Result<String, BoxErr> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} is not UTF-8", p.display()).into())
}

/// Where the bytes of one run are.
#[derive(Debug, Clone)]
struct Files {
    /// The source file (the same bytes as the in-memory value).
    src: PathBuf,
    /// Scratch directory for received files.
    dir: PathBuf,
}

/// One framework transfer of `variant`; returns the size the far side reports
/// and the time the transfer took. [`Variant::Mem`] sends `mem`, which the
/// caller prepared outside the timing.
async fn transfer(
    x: &XferRef,
    variant: Variant,
    mem: Option<Vec<u8>>,
    files: &Files,
    tag: &str,
) -> Result<(u64, Duration), BoxErr> {
    match variant {
        Variant::Mem => {
            let v = mem.ok_or("no in-memory value")?;
            let t = Instant::now();
            let n = x.take(Blob::from_bytes(v)).await?;
            Ok((n, t.elapsed()))
        }
        Variant::Up => {
            let to = path_str(&files.dir.join(format!("up-{tag}")))?;
            let t = Instant::now();
            let n = x.store(Blob::from_file(&files.src)?, to.clone()).await?;
            let d = t.elapsed();
            x.remove(to).await?;
            Ok((n, d))
        }
        Variant::Vec | Variant::Boxed | Variant::Bytes => {
            let v = mem.ok_or("no in-memory value")?;
            let t = Instant::now();
            let n = match variant {
                Variant::Vec => x.take_vec(v).await?,
                Variant::Boxed => x.take_boxed(v.into_boxed_slice()).await?,
                _ => x.take_bytes(bytes::Bytes::from(v)).await?,
            };
            Ok((n, t.elapsed()))
        }
        Variant::Down => {
            let to = files.dir.join(format!("down-{tag}"));
            let t = Instant::now();
            let blob = x.fetch(path_str(&files.src)?).await?;
            let n = blob.save_to(&to).await?;
            let d = t.elapsed();
            tokio::fs::remove_file(&to).await?;
            Ok((n, d))
        }
    }
}

// ---------------------------------------------------------------- measurements

/// Median, min and max of some MB/s figures (and the median CPU seconds).
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
    cpu_s: Option<f64>,
}

fn stats(runs: &[(f64, Option<f64>)]) -> Stats {
    let rates: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let cpus: Option<Vec<f64>> = runs.iter().map(|r| r.1).collect();
    Stats {
        median: median(rates.clone()),
        min: rates.iter().copied().fold(f64::INFINITY, f64::min),
        max: rates.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        cpu_s: cpus.map(median),
    }
}

/// Latency of sequential calls, and the throughput of the transfer that ran
/// meanwhile (MB/s).
#[derive(Debug, Clone, Copy, Default)]
struct During {
    lat: Lat,
    xfer_mbps: Option<f64>,
    /// Share of the transfer's time the caller spent in calls of 5 ms or more.
    slow_share: f64,
}

/// Throughput rows, in print order.
#[derive(Debug, Default)]
struct Figures {
    plain: Vec<(f64, Option<f64>)>,
    /// The plain copy into one buffer of the value's size.
    plain_mem: Vec<(f64, Option<f64>)>,
    variants: Vec<Vec<(f64, Option<f64>)>>,
    disk: Vec<(f64, Option<f64>)>,
    /// Filling a fresh buffer of the value's size.
    touch: Vec<(f64, Option<f64>)>,
    /// The in-memory variant over mutual TLS, with `--tls`.
    tls_mem: Vec<(f64, Option<f64>)>,
    idle: Lat,
    during: Vec<During>,
    /// Null calls went over a connection of their own.
    own_conn: bool,
    /// The plain one-byte echo on its own connection, idle.
    plain_idle: Lat,
    /// The plain echo during the plain copy, then during the one kept in memory.
    plain_during: Vec<During>,
}

/// Runs `fut` and returns its result with the CPU seconds both processes used.
async fn with_cpu<T>(
    server: u32,
    fut: impl Future<Output = Result<T, BoxErr>>,
) -> Result<(T, Option<f64>), BoxErr> {
    let me = std::process::id();
    let before = cpu_ns(&me.to_string()).zip(cpu_ns(&server.to_string()));
    let r = fut.await?;
    let after = cpu_ns(&me.to_string()).zip(cpu_ns(&server.to_string()));
    let cpu = before
        .zip(after)
        .map(|((a0, b0), (a1, b1))| (a1 + b1).saturating_sub(a0 + b0) as f64 / 1e9);
    Ok((r, cpu))
}

/// What times a null round trip: a framework call or the plain echo.
enum Pinger<'a> {
    Rpc(&'a XferRef),
    Plain(&'a mut PlainPing),
}

impl Pinger<'_> {
    /// Nanoseconds of one round trip.
    async fn ping(&mut self) -> Result<u64, BoxErr> {
        let t = Instant::now();
        match self {
            Pinger::Rpc(x) => x.ping().await?,
            Pinger::Plain(p) => p.ping().await?,
        }
        Ok(elapsed_ns(t))
    }

    /// `n` sequential round trips.
    async fn pings(&mut self, n: usize) -> Result<Vec<u64>, BoxErr> {
        let mut ns = Vec::with_capacity(n);
        for _ in 0..n {
            ns.push(self.ping().await?);
        }
        Ok(ns)
    }

    /// Idle latency: a tenth of `n` to warm up, then `n` timed.
    async fn idle(&mut self, n: usize) -> Result<Lat, BoxErr> {
        self.pings(n / 10).await?;
        Ok(summarize(self.pings(n).await?))
    }

    /// Round trips while `job` (a transfer of `size` bytes) runs, and the
    /// transfer's own result.
    async fn during<T: Send + 'static>(
        &mut self,
        size: u64,
        job: tokio::task::JoinHandle<Result<(T, Duration), BoxErr>>,
    ) -> Result<(T, During), BoxErr> {
        let mut ns = Vec::new();
        while !job.is_finished() {
            ns.push(self.ping().await?);
        }
        let (r, d) = job.await??;
        let slow: u64 = ns.iter().filter(|&&n| n >= 5_000_000).sum();
        let during = During {
            lat: summarize(ns),
            xfer_mbps: Some(mbps(size, d)),
            slow_share: slow as f64 / d.as_nanos().max(1) as f64,
        };
        Ok((r, during))
    }
}

/// Throughput rounds and latency, against already running servers.
async fn measure(
    tcp: (String, u32),
    rpc: (String, u32),
    tls: Option<(String, u32, Config)>,
    data: std::sync::Arc<Vec<u8>>,
    files: Files,
    args: (usize, usize, Knobs, Vec<Variant>, bool),
) -> Result<Figures, BoxErr> {
    let (repeat, n_pings, knobs, variants, own_conn) = args;
    let size = data.len() as u64;
    let client = Node::new(knobs.config());
    let x: XferRef = client.lookup(&rpc.0, XFER_NAME).await?;
    // Warm-up: connection, code paths, a small transfer of each kind.
    x.ping().await?;
    let warm = data[..data.len().min(8 << 20)].to_vec();
    x.take(Blob::from_bytes(warm.clone())).await?;
    plain_copy(&tcp.0, &warm, false).await?;
    plain_copy(&tcp.0, &warm, true).await?;
    let tls = match tls {
        Some((addr, pid, config)) => {
            let node = Node::new(config);
            let x: XferRef = node.lookup(&addr, XFER_NAME).await?;
            x.take(Blob::from_bytes(warm.clone())).await?;
            Some((node, x, pid))
        }
        None => None,
    };
    drop(warm);

    let mut fig = Figures {
        variants: vec![Vec::new(); variants.len()],
        during: vec![During::default(); variants.len()],
        own_conn,
        ..Figures::default()
    };
    let check = |n: u64, what: &str| -> Result<(), BoxErr> {
        if n == size {
            Ok(())
        } else {
            Err(format!("{what} moved {n} bytes, not {size}").into())
        }
    };
    for round in 0..repeat {
        let (d, cpu) = with_cpu(tcp.1, plain_copy(&tcp.0, &data, false)).await?;
        fig.plain.push((mbps(size, d), cpu));
        let mut line = format!("round {}/{repeat}: plain {:.0}", round + 1, mbps(size, d));
        let (d, cpu) = with_cpu(tcp.1, plain_copy(&tcp.0, &data, true)).await?;
        fig.plain_mem.push((mbps(size, d), cpu));
        line.push_str(&format!(", plain-mem {:.0}", mbps(size, d)));
        for (i, &v) in variants.iter().enumerate() {
            // The in-memory value is copied for each run, outside the timing.
            let mem = v.in_memory().then(|| data.to_vec());
            let tag = format!("r{round}");
            let ((n, d), cpu) = with_cpu(rpc.1, transfer(&x, v, mem, &files, &tag)).await?;
            check(n, v.label())?;
            fig.variants[i].push((mbps(size, d), cpu));
            line.push_str(&format!(", {} {:.0}", v.name(), mbps(size, d)));
            if let (Variant::Mem, Some((_, tx, pid))) = (v, &tls) {
                let mem = Some(data.to_vec());
                let ((n, d), cpu) = with_cpu(*pid, transfer(tx, v, mem, &files, &tag)).await?;
                check(n, "rpc in-memory over tls")?;
                fig.tls_mem.push((mbps(size, d), cpu));
                line.push_str(&format!(", mem-tls {:.0}", mbps(size, d)));
            }
        }
        let disk_path = files.dir.join(format!("disk-{round}"));
        let d2 = std::sync::Arc::clone(&data);
        let p2 = disk_path.clone();
        let d = tokio::task::spawn_blocking(move || write_synced(&p2, &d2)).await??;
        tokio::fs::remove_file(&disk_path).await?;
        fig.disk.push((mbps(size, d), None));
        line.push_str(&format!(", disk {:.0}", mbps(size, d)));
        let n = data.len();
        let d = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let fresh = vec![1u8; n];
            let d = t.elapsed();
            // Unmapping it is no part of the figure, and stays off the runtime.
            drop(fresh);
            d
        })
        .await?;
        fig.touch.push((mbps(size, d), None));
        line.push_str(&format!(", touch {:.0} MB/s", mbps(size, d)));
        eprintln!("{line}");
    }

    // Latency on the transfer's connection (or one of its own): idle, then
    // during each transfer.
    tokio::time::sleep(SETTLE).await;
    let own = if own_conn {
        let node = Node::new(knobs.config());
        let px: XferRef = node.lookup(&rpc.0, XFER_NAME).await?;
        Some((node, px))
    } else {
        None
    };
    let mut pinger = Pinger::Rpc(own.as_ref().map_or(&x, |(_, px)| px));
    fig.idle = pinger.idle(n_pings).await?;
    for (i, &v) in variants.iter().enumerate() {
        tokio::time::sleep(SETTLE).await;
        let (x2, files2) = (x.clone(), files.clone());
        let mem = v.in_memory().then(|| data.to_vec());
        let job = tokio::spawn(async move { transfer(&x2, v, mem, &files2, "lat").await });
        let (n, during) = pinger.during(size, job).await?;
        check(n, v.label())?;
        fig.during[i] = during;
        eprintln!(
            "latency during {}: {} pings, p99 {:.0} us",
            v.name(),
            during.lat.n,
            during.lat.p99
        );
    }
    if let Some((node, px)) = own {
        drop(px);
        node.shutdown().await;
    }
    drop(x);
    client.shutdown().await;

    // The reference: a plain echo on its own connection, idle and during
    // each plain copy.
    let mut echo = PlainPing::connect(&tcp.0).await?;
    let mut pinger = Pinger::Plain(&mut echo);
    fig.plain_idle = pinger.idle(n_pings).await?;
    for keep in [false, true] {
        tokio::time::sleep(SETTLE).await;
        let (addr, d2) = (tcp.0.clone(), std::sync::Arc::clone(&data));
        let job = tokio::spawn(async move { Ok(((), plain_copy(&addr, &d2, keep).await?)) });
        let ((), during) = pinger.during(size, job).await?;
        fig.plain_during.push(during);
    }
    if let Some((node, x, _)) = tls {
        drop(x);
        node.shutdown().await;
    }
    Ok(fig)
}

/// Pause before each latency measurement, so that the previous transfer's
/// value is freed first: unmapping 1 GiB takes 50-100 ms on this VM, and
/// stalls every thread of the process that maps memory meanwhile (the
/// kernel's mmap lock), wherever it is freed. That cost belongs to the
/// transfer that made the value, not to the one measured next.
const SETTLE: Duration = Duration::from_millis(500);

/// Peak RSS above idle, in KiB, of one variant's server and client processes.
#[derive(Debug, Clone, Copy)]
struct Rss {
    server: u64,
    client: u64,
    mbps: f64,
}

/// One fresh server and one fresh client process for `v`.
fn measure_rss(v: Variant, flavour: Flavour, files: &Files, knobs: Knobs) -> Result<Rss, BoxErr> {
    let server = ServerProc::spawn(ServeKind::Rpc, flavour, knobs, None)?;
    let spid = server.proc.pid().to_string();
    let (src, dir) = (path_str(&files.src)?, path_str(&files.dir)?);
    let extra = knobs.args();
    let mut args = vec![
        "--rss-client",
        v.name(),
        "--runtime",
        flavour.name(),
        "--addr",
        &server.addr,
        "--src",
        &src,
        "--dir",
        &dir,
    ];
    args.extend(extra.iter().map(String::as_str));
    let mut client = tests::child(&args)?;
    let client_idle: u64 = client.try_line("ready ")?.parse()?;
    let server_idle = status_kib(&spid, "VmRSS:")?;
    client.tell("go")?;
    let done = client.try_line("done ")?;
    let server_peak = status_kib(&spid, "VmHWM:")?;
    let mut it = done.split_whitespace();
    let client_peak: u64 = it.next().ok_or("no client peak")?.parse()?;
    let rate: f64 = it.next().ok_or("no client rate")?.parse()?;
    drop(client);
    drop(server);
    Ok(Rss {
        server: server_peak.saturating_sub(server_idle),
        client: client_peak.saturating_sub(client_idle),
        mbps: rate,
    })
}

/// Child process: the client side of one peak-RSS measurement.
fn rss_client(args: &Args, v: Variant) -> Result<(), BoxErr> {
    let addr = args.addr.clone().ok_or("--addr missing")?;
    let files = Files {
        src: args.src.clone().ok_or("--src missing")?,
        dir: args.dir.clone().ok_or("--dir missing")?,
    };
    let rt = args.runtime.runtime()?;
    let knobs = Knobs::of(args);
    let task = rt.spawn(async move {
        let client = Node::new(knobs.config());
        let x: XferRef = client.lookup(&addr, XFER_NAME).await?;
        x.ping().await?;
        // The application's own copy of an in-memory value is there before idle.
        let mem = if v.in_memory() {
            Some(tokio::fs::read(&files.src).await?)
        } else {
            None
        };
        say(&format!("ready {}", status_kib("self", "VmRSS:")?));
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)
        })
        .await??;
        let (n, d) = transfer(&x, v, mem, &files, "rss").await?;
        say(&format!(
            "done {} {}",
            status_kib("self", "VmHWM:")?,
            mbps(n, d)
        ));
        drop(x);
        client.shutdown().await;
        Ok::<(), BoxErr>(())
    });
    let r = rt.block_on(task)?;
    rt.shutdown_timeout(Duration::from_secs(1));
    r
}

fn bench(args: &Args) -> Result<(), BoxErr> {
    if args.size_mib == 0 || args.repeat == 0 || args.pings == 0 {
        return Err("--size-mib, --repeat and --pings must be positive".into());
    }
    let size = usize::try_from(args.size_mib << 20)?;
    let knobs = Knobs::of(args);
    if knobs.chunk_kib == Some(0) || knobs.window == Some(0) {
        return Err("--chunk-kib and --window must be positive".into());
    }
    let spinner = if args.awake {
        let s = Spinner::start(SPIN_LIMIT_SECS)?;
        std::thread::sleep(Duration::from_millis(200));
        Some(s)
    } else {
        None
    };
    let state = if args.awake { "awake" } else { "idle" };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_owned();

    let tmp = tempfile::Builder::new()
        .prefix("transfer-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let files = Files {
        src: tmp.path().join("src"),
        dir: tmp.path().to_path_buf(),
    };
    let data = std::sync::Arc::new(make_data(size));
    write_synced(&files.src, &data).map_err(|e| format!("cannot write the source file: {e}"))?;

    let pki = if args.tls {
        Some(BenchPki::new()?)
    } else {
        None
    };
    let cfg = knobs.config();
    println!(
        "transfer-bench: 127.0.0.1, servers in child processes, runtime={}, state={state}, \
         load average {load}; chunk {} KiB, window {}; value {} MiB ({:.1} MB), {} rounds; \
         files in {}",
        args.runtime.name(),
        cfg.chunk_size >> 10,
        cfg.transfer_window,
        args.size_mib,
        size as f64 / 1e6,
        args.repeat,
        files.dir.display()
    );

    let fig = {
        let tcp = ServerProc::spawn(ServeKind::Tcp, args.runtime, knobs, None)?;
        let rpc = ServerProc::spawn(ServeKind::Rpc, args.runtime, knobs, None)?;
        let tls = match &pki {
            Some(pki) => {
                let dir = pki.server_dir();
                let proc = ServerProc::spawn(ServeKind::Rpc, args.runtime, knobs, Some(&dir))?;
                Some((proc, pki.client_config(knobs.config())?))
            }
            None => None,
        };
        let rt = args.runtime.runtime()?;
        let task = rt.spawn(measure(
            (tcp.addr.clone(), tcp.proc.pid()),
            (rpc.addr.clone(), rpc.proc.pid()),
            tls.as_ref()
                .map(|(p, c)| (p.addr.clone(), p.proc.pid(), c.clone())),
            std::sync::Arc::clone(&data),
            files.clone(),
            (
                args.repeat,
                args.pings,
                knobs,
                Variant::chosen(args),
                args.own_conn_pings,
            ),
        ));
        let fig = rt.block_on(task)??;
        rt.shutdown_timeout(Duration::from_secs(1));
        fig
    };
    drop(data);

    let mut rss = Vec::new();
    let variants = Variant::chosen(args);
    for &v in &variants {
        let r = measure_rss(v, args.runtime, &files, knobs)?;
        eprintln!(
            "peak rss {}: server +{} KiB, client +{} KiB",
            v.name(),
            r.server,
            r.client
        );
        rss.push((v, r));
    }
    drop(spinner);
    print_report(&fig, &rss, size, &variants);
    tmp.close()
        .map_err(|e| format!("cannot remove the temp dir: {e}"))?;
    Ok(())
}

fn goal(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn print_report(fig: &Figures, rss: &[(Variant, Rss)], size: usize, variants: &[Variant]) {
    let plain = stats(&fig.plain);
    let disk = stats(&fig.disk);
    println!();
    println!(
        "{:<34}{:>9}{:>9}{:>9}{:>12}{:>13}",
        "throughput (MB/s)", "median", "min", "max", "vs plain", "cpu c+s (s)"
    );
    let row = |name: &str, s: &Stats| {
        let cpu = s.cpu_s.map_or_else(|| "-".into(), |c| format!("{c:.2}"));
        println!(
            "{name:<34}{:>9.0}{:>9.0}{:>9.0}{:>11.2}x{cpu:>13}",
            s.median,
            s.min,
            s.max,
            s.median / plain.median
        );
    };
    row("plain tcp copy (64 KiB writes)", &plain);
    let plain_mem = stats(&fig.plain_mem);
    row("plain tcp copy, kept in memory", &plain_mem);
    let vstats: Vec<Stats> = fig.variants.iter().map(|v| stats(v)).collect();
    for (v, s) in variants.iter().zip(&vstats) {
        row(v.label(), s);
    }
    let tls = (!fig.tls_mem.is_empty()).then(|| stats(&fig.tls_mem));
    if let Some(t) = &tls {
        row("rpc in-memory (take), tls", t);
    }
    row("disk write+fsync (reference)", &disk);
    let touch = stats(&fig.touch);
    row("fresh memory, first touch (ref.)", &touch);

    println!();
    println!(
        "{:<34}{:>16}{:>16}{:>12}",
        "peak RSS above idle (MiB)", "server", "client", "MB/s"
    );
    for (v, r) in rss {
        println!(
            "{:<34}{:>16.1}{:>16.1}{:>12.0}",
            v.label(),
            r.server as f64 / 1024.0,
            r.client as f64 / 1024.0,
            r.mbps
        );
    }
    println!(
        "  (fresh server and client process per variant; value {:.1} MiB; the in-memory \
         client's idle figure already holds the value)",
        size as f64 / (1 << 20) as f64
    );

    println!();
    println!(
        "{:<34}{:>8}{:>9}{:>9}{:>10}{:>10}{:>11}",
        if fig.own_conn {
            "null call on its own connection"
        } else {
            "null call on the same connection"
        },
        "calls",
        "p50(us)",
        "p99(us)",
        "max(us)",
        "p99/idle",
        "xfer MB/s"
    );
    let lrow = |name: &str, d: &During, idle: &Lat| {
        let (l, x) = (&d.lat, d.xfer_mbps);
        let x = x.map_or_else(|| "-".into(), |m| format!("{m:.0}"));
        println!(
            "{name:<34}{:>8}{:>9.1}{:>9.1}{:>10.1}{:>9.2}x{x:>11}",
            l.n,
            l.p50,
            l.p99,
            l.max,
            l.p99 / idle.p99
        );
    };
    let idle = |lat: Lat| During {
        lat,
        xfer_mbps: None,
        slow_share: 0.0,
    };
    lrow("idle", &idle(fig.idle), &fig.idle);
    for (v, l) in variants.iter().zip(&fig.during) {
        lrow(&format!("during {}", v.label()), l, &fig.idle);
    }
    println!("plain echo on its own connection (reference):");
    lrow("idle", &idle(fig.plain_idle), &fig.plain_idle);
    let copies = ["during plain tcp copy", "during plain copy, kept"];
    for (name, l) in copies.iter().zip(&fig.plain_during) {
        lrow(name, l, &fig.plain_idle);
    }

    println!();
    // The aims of issue 14, each a ratio within this run.
    let floor = plain.median.min(disk.median);
    let blob = vstats.first().map_or(0.0, |m| m.median);
    let blob_rss = rss
        .iter()
        .find(|(v, _)| *v == Variant::Mem)
        .map(|(_, r)| *r);
    for (v, s) in variants.iter().zip(&vstats) {
        match v {
            Variant::Mem => println!(
                "aim {} >= 0.80x plain: {} ({:.2}x; {:.2}x of the plain copy kept in memory; \
                 first touches of the value's memory alone bound it at {:.2}x)",
                v.label(),
                goal(s.median >= 0.8 * plain.median),
                s.median / plain.median,
                s.median / plain_mem.median,
                touch.median / plain.median
            ),
            Variant::Up | Variant::Down => println!(
                "aim {} >= 0.90x min(plain, disk): {} ({:.2}x)",
                v.label(),
                goal(s.median >= 0.9 * floor),
                s.median / floor
            ),
            Variant::Vec | Variant::Boxed | Variant::Bytes => {
                // Time within 1.2x of the blob's is a rate of at least 1/1.2 of it.
                let mem = rss.iter().find(|(r, _)| r == v).map(|(_, r)| *r);
                let mem_ratio = mem.zip(blob_rss).map(|(m, b)| {
                    let f = |r: Rss| (r.server + r.client) as f64;
                    f(m) / f(b).max(1.0)
                });
                println!(
                    "aim {} within 1.2x of the blob: time {} ({:.2}x), peak rss {} ({})",
                    v.label(),
                    goal(s.median * 1.2 >= blob),
                    blob / s.median,
                    goal(mem_ratio.is_some_and(|r| r <= 1.2)),
                    mem_ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
                );
            }
        }
    }
    if let (Some(t), Some(m)) = (&tls, vstats.first()) {
        println!(
            "aim tls in-memory >= 0.60x plaintext in-memory: {} ({:.2}x)",
            goal(t.median >= 0.6 * m.median),
            t.median / m.median
        );
    }
    for (v, l) in variants.iter().zip(&fig.during) {
        println!(
            "aim during {}: max <= 20 ms {} ({:.1} ms); p99 <= 3x idle {} ({:.2}x); \
             waits >= 5 ms <= 1% of the transfer {} ({:.2}%)",
            v.label(),
            goal(l.lat.max <= 20_000.0),
            l.lat.max / 1000.0,
            goal(l.lat.p99 <= 3.0 * fig.idle.p99),
            l.lat.p99 / fig.idle.p99,
            goal(l.slow_share <= 0.01),
            l.slow_share * 100.0
        );
    }
    for (name, l) in copies.iter().zip(&fig.plain_during) {
        println!(
            "  reference, plain echo {name}: max {:.1} ms; p99 {:.2}x its idle; waits >= 5 ms {:.2}%",
            l.lat.max / 1000.0,
            l.lat.p99 / fig.plain_idle.p99,
            l.slow_share * 100.0
        );
    }
}
