//! `data-bench`: the data manager (issue 7), measured in one run on 127.0.0.1.
//!
//! ```text
//! data-bench [--size-mib N] [--uses N] [--repeat N]
//! ```
//!
//! Two data servers run in child processes (this binary re-executed with
//! `--serve DIR`: a node with a disk data manager and a `Use` service), and a
//! plain TCP sink (`--serve-tcp`).
//!
//! # What is measured
//! 1. **By value vs by reference.** `--uses` calls that each need one
//!    `--size-mib` file on server A: by value, every call sends the file as a
//!    `Blob` (the server saves it and reads it back); by reference, the file
//!    is `put` once (persistent) and every call passes its `DataRef` (the
//!    server reads its stored item). Bytes written by the client and wall
//!    time, as ratios reference / value.
//! 2. **Moving data node to node.** `move_to` of the stored item from A to
//!    B (B pulls it in chunks from A's file into its own, checks it, A
//!    deletes its copy), against a plain TCP copy of the same bytes between
//!    two processes and a write+fsync of them to disk by this process, in
//!    the same run: median MB/s (min-max) over `--repeat` rounds, and the
//!    peak RSS above idle of A and B during the move
//!    (`VmHWM` reset through `/proc/PID/clear_refs` before each move).

use clap::Parser;
use rpc_core::data::{BOOTSTRAP_NAME, DataConfig, DataManager, DataManagerRef};
use rpc_core::data::{DataRef, DataStore, Persistence};
use rpc_core::{Blob, Config, Node, RpcError, remote};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use test_support::Proc;
use test_support::bench::{mbps, median};
use test_support::procfs::status_kib;
use tests::{BoxErr, make_data, plain_copy, write_synced};

/// Name the servers bind their `Use` service under.
const USE_NAME: &str = "use";

/// Deadline of the benchmark's calls: a slow disk must not fail a transfer.
const CALL_TIMEOUT: Duration = Duration::from_secs(900);

/// Bytes read per step when a server checksums a file.
const READ_STEP: usize = 1 << 20;

/// A service whose calls need the bytes of one value.
#[remote(name = "bench.Use")]
pub trait Use {
    /// CRC-32 of the data `r` names (stored here, or fetched).
    async fn by_ref(&self, r: DataRef) -> Result<u32, RpcError>;
    /// CRC-32 of `b`, saved to a file first (as a data manager would).
    async fn by_value(&self, b: Blob) -> Result<u32, RpcError>;
}

/// The object the data servers export.
struct UseImpl {
    node: Node,
    /// Where by-value calls save what they receive.
    scratch: PathBuf,
}

fn storage(e: &std::io::Error) -> RpcError {
    RpcError::Remote {
        message: format!("data storage failed: {e}"),
    }
}

/// CRC-32 of the file at `path`, read in [`READ_STEP`] pieces on a blocking thread.
async fn crc_of(path: PathBuf) -> Result<u32, RpcError> {
    tokio::task::spawn_blocking(move || -> std::io::Result<u32> {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; READ_STEP];
        let mut h = crc32fast::Hasher::new();
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(h.finalize());
            }
            h.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| RpcError::Remote {
        message: e.to_string(),
    })?
    .map_err(|e| storage(&e))
}

impl Use for UseImpl {
    async fn by_ref(&self, r: DataRef) -> Result<u32, RpcError> {
        let h = DataStore::of(&self.node)?.fetch(&r).await?;
        let path = h
            .path()
            .ok_or_else(|| RpcError::Remote {
                message: "the data store keeps no files".into(),
            })?
            .to_owned();
        crc_of(path).await
    }

    async fn by_value(&self, b: Blob) -> Result<u32, RpcError> {
        b.save_to(&self.scratch).await?;
        let crc = crc_of(self.scratch.clone()).await;
        let _ = tokio::fs::remove_file(&self.scratch).await;
        crc
    }
}

#[derive(Parser, Debug)]
#[command(about = "data manager benchmark: by value vs by reference, node-to-node moves")]
struct Args {
    /// Size of the value, in MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: usize,
    /// Calls that use the value in phase 1.
    #[arg(long, default_value_t = 10)]
    uses: usize,
    /// Rounds of phase 2 (moves and plain copies, interleaved).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Internal: serve a data manager over this directory.
    #[arg(long, hide = true)]
    serve: Option<PathBuf>,
    /// Internal: serve a plain TCP sink.
    #[arg(long, hide = true)]
    serve_tcp: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("data-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = if let Some(dir) = &args.serve {
        rt.block_on(serve(dir))
    } else if args.serve_tcp {
        rt.block_on(serve_tcp())
    } else {
        rt.block_on(bench(&args))
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("data-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config() -> Config {
    Config {
        call_timeout: CALL_TIMEOUT,
        max_large_value: u64::MAX,
        ..Config::default()
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Serves until standard input closes.
async fn until_stdin_closes() {
    let _ = tokio::task::spawn_blocking(test_support::reexec::until_stdin_closes).await;
}

async fn serve(dir: &Path) -> Result<(), BoxErr> {
    let node = Node::new(config());
    let addr = node.listen("127.0.0.1:0").await?;
    DataStore::enable(&node, DataConfig::on_disk(dir.join("store"))).await?;
    let service = UseRef::new(UseImpl {
        node: node.clone(),
        scratch: dir.join("by-value.bin"),
    });
    node.bind_bootstrap(USE_NAME, &service)?;
    say(&format!("listening {addr}"));
    until_stdin_closes().await;
    node.shutdown().await;
    Ok(())
}

async fn serve_tcp() -> Result<(), BoxErr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    say(&format!("listening {}", listener.local_addr()?));
    tokio::select! {
        () = until_stdin_closes() => Ok(()),
        r = async {
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(async move {
                    if let Err(e) = tests::sink_conn(stream).await {
                        eprintln!("data-bench tcp sink: {e}");
                    }
                });
            }
        } => r,
    }
}

/// A server child process and its address.
struct Server {
    proc: Proc,
    addr: String,
}

impl Server {
    fn spawn(args: &[&str]) -> Result<Server, BoxErr> {
        let mut proc = tests::child(args)?;
        let addr = proc.try_line("listening ")?;
        Ok(Server { proc, addr })
    }

    fn pid(&self) -> String {
        self.proc.pid().to_string()
    }

    /// Resets the peak RSS to the current RSS; returns the current RSS in KiB.
    fn reset_peak(&self) -> Result<u64, BoxErr> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")?;
        Ok(status_kib(&self.pid(), "VmRSS:")?)
    }

    fn peak_kib(&self) -> Result<u64, BoxErr> {
        Ok(status_kib(&self.pid(), "VmHWM:")?)
    }
}

fn path_str(p: &Path) -> Result<&str, BoxErr> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()).into())
}

async fn bench(args: &Args) -> Result<(), BoxErr> {
    let size = args.size_mib << 20;
    let uses = args.uses.max(1);
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("value.bin");
    let data = make_data(size);
    let want = crc32fast::hash(&data);
    std::fs::write(&src, &data)?;
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a_dir)?;
    std::fs::create_dir_all(&b_dir)?;
    let a = Server::spawn(&["--serve", path_str(&a_dir)?])?;
    let b = Server::spawn(&["--serve", path_str(&b_dir)?])?;
    let tcp = Server::spawn(&["--serve-tcp"])?;

    let client = Node::new(config());
    let a_use: UseRef = client.lookup(&a.addr, USE_NAME).await?;
    let a_dm: DataManagerRef = client.lookup(&a.addr, BOOTSTRAP_NAME).await?;
    let b_dm: DataManagerRef = client.lookup(&b.addr, BOOTSTRAP_NAME).await?;
    println!(
        "data-bench: {} MiB value, {uses} uses, {} move rounds, servers in child processes",
        args.size_mib, args.repeat
    );

    // 1. By value vs by reference.
    let sent = || client.stats().bytes_sent;
    let (s0, t0) = (sent(), Instant::now());
    for _ in 0..uses {
        let got = a_use.by_value(Blob::from_file(&src)?).await?;
        check(got == want, "by-value checksum")?;
    }
    let (val_bytes, val_time) = (sent() - s0, t0.elapsed());
    let (s0, t0) = (sent(), Instant::now());
    let r = a_dm
        .put(Blob::from_file(&src)?, Persistence::Persistent)
        .await?;
    for _ in 0..uses {
        let got = a_use.by_ref(r.clone()).await?;
        check(got == want, "by-reference checksum")?;
    }
    let (ref_bytes, ref_time) = (sent() - s0, t0.elapsed());
    println!("\n1. {uses} calls that need the value");
    println!(
        "   by value      {:>14} bytes sent  {:>8.2} s",
        val_bytes,
        val_time.as_secs_f64()
    );
    println!(
        "   by reference  {:>14} bytes sent  {:>8.2} s   (one put, then {uses} DataRefs)",
        ref_bytes,
        ref_time.as_secs_f64()
    );
    println!(
        "   ratio reference/value: bytes {:.3} (ideal 1/{uses} = {:.3}), time {:.3}",
        ref_bytes as f64 / val_bytes as f64,
        1.0 / uses as f64,
        ref_time.as_secs_f64() / val_time.as_secs_f64()
    );

    // 2. Moves, interleaved with plain copies; the item goes back and forth.
    let mut moves = Vec::new();
    let mut copies = Vec::new();
    let mut disk = Vec::new();
    let mut rss = Vec::new();
    let (mut here, mut there) = ((&a, a_dm.clone()), (&b, b_dm.clone()));
    for _ in 0..args.repeat.max(1) {
        let (from_idle, to_idle) = (here.0.reset_peak()?, there.0.reset_peak()?);
        let t = Instant::now();
        let moved = here.1.move_to(r.id(), there.1.clone()).await?;
        let took = t.elapsed();
        check(moved.info() == r.info(), "moved data changed")?;
        rss.push((
            here.0.peak_kib()?.saturating_sub(from_idle),
            there.0.peak_kib()?.saturating_sub(to_idle),
        ));
        moves.push(mbps(size as u64, took));
        copies.push(mbps(
            size as u64,
            plain_copy(&tcp.addr, &data, false).await?,
        ));
        let disk_file = dir.path().join("disk.bin");
        disk.push(mbps(size as u64, write_synced(&disk_file, &data)?));
        std::fs::remove_file(&disk_file)?;
        std::mem::swap(&mut here, &mut there);
    }
    let range = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    };
    let (mv_min, mv_max) = range(&moves);
    let (cp_min, cp_max) = range(&copies);
    let (dk_min, dk_max) = range(&disk);
    let (mv, cp, dk) = (
        median(moves.clone()),
        median(copies.clone()),
        median(disk.clone()),
    );
    println!(
        "\n2. move {} MiB node to node (file to file)",
        args.size_mib
    );
    println!("   plain tcp copy   {cp:>8.0} MB/s  ({cp_min:.0}-{cp_max:.0})");
    println!(
        "   disk write+fsync {dk:>8.0} MB/s  ({dk_min:.0}-{dk_max:.0})   (this process, same directory)"
    );
    println!(
        "   data move        {mv:>8.0} MB/s  ({mv_min:.0}-{mv_max:.0})   vs tcp {:.2}x, vs disk {:.2}x",
        mv / cp,
        mv / dk
    );
    let worst = rss
        .iter()
        .fold((0, 0), |acc, r| (acc.0.max(r.0), acc.1.max(r.1)));
    println!(
        "   peak RSS above idle during a move, worst of {} rounds: sender {:.1} MiB, receiver {:.1} MiB",
        rss.len(),
        worst.0 as f64 / 1024.0,
        worst.1 as f64 / 1024.0
    );
    client.shutdown().await;
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), BoxErr> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}").into())
    }
}
