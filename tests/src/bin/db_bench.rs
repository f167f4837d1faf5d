//! `db-bench`: the database server through the real binaries, each figure a
//! ratio within one run.
//!
//! - Group commit: `client bench-cells` (cell gets, then durable cell sets,
//!   from `--callers` callers on one connection): sets/s against gets/s.
//! - Any value size: `put-file` and `get-file` of a `--mib` MiB file into a
//!   bytes cell, against a plain copy of the same file with an fsync, and
//!   the dbserver's resident memory idle and at its peak.
//! - Streaming import: `import-csv` of a `--rows`-row file, with the peak
//!   resident memory of the client and of the server.
//!
//! Needs the release binaries: `cargo build --release --bins`. Data goes
//! to a temporary directory under the current one (not /tmp, which may be
//! memory).

use clap::Parser;
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use test_support::Proc;
use test_support::procfs::status_kib;
use tests::{BoxErr, sibling_bin, start_servers};

/// Database server benchmark.
#[derive(Parser, Debug)]
struct Args {
    /// Concurrent callers of `bench-cells`.
    #[arg(long, default_value_t = 64)]
    callers: u32,
    /// Seconds per `bench-cells` phase.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Size of the large value, in MiB.
    #[arg(long, default_value_t = 1024)]
    mib: usize,
    /// Rows of the CSV file.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("db-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A name server and a dbserver on a data directory under `dir`.
struct Servers {
    _ns: Proc,
    ns_addr: String,
    db: Proc,
}

impl Servers {
    fn start(dir: &Path) -> Result<Servers, BoxErr> {
        let ((ns, ns_addr), (db, _)) = start_servers(&dir.join("db"))?;
        Ok(Servers {
            _ns: ns,
            ns_addr,
            db,
        })
    }

    /// Runs `client ARGS` to the end; its standard output, its wall time
    /// and its peak resident memory in KiB (read while it runs).
    fn client(&self, args: &[&str]) -> Result<(String, Duration, u64), BoxErr> {
        let t0 = Instant::now();
        let mut child = Command::new(sibling_bin("client")?)
            .args(["--nameserver", &self.ns_addr, "--timeout", "3600"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let pid = child.id().to_string();
        let mut peak = 0;
        while child.try_wait()?.is_none() {
            if let Ok(k) = status_kib(&pid, "VmHWM:") {
                peak = peak.max(k);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!(
                "client {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok((String::from_utf8(out.stdout)?, t0.elapsed(), peak))
    }

    fn db_kib(&self, field: &str) -> Result<u64, BoxErr> {
        Ok(status_kib(&self.db.pid().to_string(), field)?)
    }
}

fn run(args: &Args) -> Result<(), BoxErr> {
    let dir = tempfile::Builder::new()
        .prefix("db-bench-")
        .tempdir_in(std::env::current_dir()?)?;
    cells(args, dir.path())?;
    large(args, dir.path())?;
    import(args, dir.path())?;
    Ok(())
}

fn cells(args: &Args, dir: &Path) -> Result<(), BoxErr> {
    let s = Servers::start(&dir.join("cells"))?;
    let (out, _, _) = s.client(&[
        "--json",
        "bench-cells",
        "--callers",
        &args.callers.to_string(),
        "--seconds",
        &args.seconds.to_string(),
    ])?;
    let j: serde_json::Value = serde_json::from_str(out.trim())?;
    let (gets, sets) = (
        j["get"]["per_sec"].as_f64().unwrap_or(0.0),
        j["set"]["per_sec"].as_f64().unwrap_or(0.0),
    );
    println!(
        "cells, {} callers: gets {gets:.0}/s, durable sets {sets:.0}/s, sets/gets {:.2}x (p99 set {} us)",
        args.callers,
        sets / gets.max(1.0),
        j["set"]["p99_us"]
    );
    Ok(())
}

fn large(args: &Args, dir: &Path) -> Result<(), BoxErr> {
    let s = Servers::start(&dir.join("large"))?;
    let file = dir.join("large.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let block = tests::make_data(1 << 20);
        for _ in 0..args.mib {
            f.write_all(&block)?;
        }
        f.flush()?;
    }
    let f = file.to_string_lossy().into_owned();
    s.client(&["create-table", "files", "--columns", "name:text,body:bytes"])?;
    s.client(&["insert", "files", "big", "null"])?;
    let idle = s.db_kib("VmRSS:")?;
    let (_, put, _) = s.client(&["put-file", "files", "1", "body", &f])?;
    let after_put = s.db_kib("VmHWM:")?;
    let (_, name, _) = s.client(&["get", "files", "1", "name"])?;
    let back = dir.join("back.bin").to_string_lossy().into_owned();
    let (_, get, _) = s.client(&["get-file", "files", "1", "body", &back])?;
    let peak = s.db_kib("VmHWM:")?;
    let t0 = Instant::now();
    {
        let copy = dir.join("copy.bin");
        std::fs::copy(&file, &copy)?;
        std::fs::File::open(&copy)?.sync_all()?;
    }
    let cp = t0.elapsed();
    let mb = args.mib as f64 * 1.048_576;
    let rate = |d: Duration| mb / d.as_secs_f64();
    println!(
        "value of {} MiB: put-file {:.0} MB/s, get-file {:.0} MB/s, copy+fsync {:.0} MB/s \
         (put {:.2}x, get {:.2}x of it); other cell of the row read by a new client in {} ms",
        args.mib,
        rate(put),
        rate(get),
        rate(cp),
        cp.as_secs_f64() / put.as_secs_f64(),
        cp.as_secs_f64() / get.as_secs_f64(),
        name.as_millis()
    );
    println!(
        "dbserver resident memory: idle {} MiB, peak after put {} MiB, after get {} MiB (growth {} MiB)",
        idle / 1024,
        after_put / 1024,
        peak / 1024,
        peak.saturating_sub(idle) / 1024
    );
    for p in [&file, &dir.join("back.bin"), &dir.join("copy.bin")] {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

fn import(args: &Args, dir: &Path) -> Result<(), BoxErr> {
    let s = Servers::start(&dir.join("import"))?;
    let file = dir.join("rows.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        writeln!(f, "name:text,n:int,note")?;
        for i in 0..args.rows {
            writeln!(f, "\"row {i}, quoted\",{i},\"some text for row {i}\"")?;
        }
        f.flush()?;
    }
    let size = std::fs::metadata(&file)?.len();
    let idle = s.db_kib("VmRSS:")?;
    let f = file.to_string_lossy().into_owned();
    let (out, took, client_peak) = s.client(&["import-csv", "rows", &f])?;
    let server_peak = s.db_kib("VmHWM:")?;
    println!(
        "import-csv of {} rows ({} MiB): {:.1} s, {:.0} rows/s; peak resident memory: client {} MiB, \
         dbserver {} MiB (idle {} MiB) [{}]",
        args.rows,
        size >> 20,
        took.as_secs_f64(),
        args.rows as f64 / took.as_secs_f64(),
        client_peak / 1024,
        server_peak / 1024,
        idle / 1024,
        out.trim()
    );
    Ok(())
}
