//! `bench-cells [--callers 64] [--seconds 5] [--processes 1]`: cell gets,
//! then cell sets, per second, from many concurrent callers sharing this
//! process's one connection to the database server. With `--processes N`
//! it starts N copies of itself as workers (`--worker`), lets them set up,
//! starts them together and sums their rates.
//!
//! Each caller has its own cell (one row per caller in a fresh table,
//! dropped afterwards), so sets do not contend on one row; every set is a
//! durable commit on the server.

use crate::ClientError;
use crate::cli::BenchCellsArgs;
use crate::context::Context;
use crate::output::{BenchReport, Output, PhaseReport};
use dbserver::api::{Cell, CellRef, Database, Table};
use dbserver::{Column, Value, ValueType};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// What a worker prints once set up; it then waits for [`GO`] on standard input.
pub const READY: &str = "ready";
/// What starts the workers' measurements.
pub const GO: &str = "go";

impl PhaseReport {
    /// Sums rates and counts; keeps the worst latencies.
    fn add(&mut self, other: &PhaseReport) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.per_sec += other.per_sec;
        self.p50_us = self.p50_us.max(other.p50_us);
        self.p99_us = self.p99_us.max(other.p99_us);
    }
}

/// Runs the benchmark (or, with `--processes` above 1, its workers).
///
/// # Errors
/// Setup failures (resolving, creating the table); a worker that fails.
pub async fn run(args: BenchCellsArgs, ctx: &Context) -> Result<Output, ClientError> {
    if args.processes > 1 && !args.worker {
        return run_workers(&args, ctx).await;
    }
    let db = ctx.db().await?;
    let name = format!("bench_{}", ctx.node().id().0.simple());
    let (table, cells) = ctx
        .bounded(async {
            let table = db
                .create_table(name.clone(), vec![Column::new("n", ValueType::Int)])
                .await?;
            let mut cells = Vec::with_capacity(args.callers as usize);
            for _ in 0..args.callers {
                let row = table.insert(vec![Value::Int(0)]).await?;
                cells.push(table.cell(row, "n".into()).await?);
            }
            Ok((table, cells))
        })
        .await?;
    if args.worker {
        wait_for_go(ctx).await?;
    }
    let phase = Duration::from_secs(args.seconds);
    let get = measure(&cells, phase, false).await;
    let set = measure(&cells, phase, true).await;
    drop(table);
    // Best effort: a leftover benchmark table is harmless.
    let _ = ctx.bounded(async { Ok(db.drop_table(name).await?) }).await;
    Ok(Output::Bench(BenchReport {
        callers: args.callers,
        processes: 1,
        seconds: args.seconds,
        get,
        set,
    }))
}

/// Tells the parent that this worker is set up, and waits for its go.
async fn wait_for_go(ctx: &Context) -> Result<(), ClientError> {
    ctx.printer()
        .line(READY)
        .map_err(|source| ClientError::Io {
            what: "writing to standard output",
            source,
        })?;
    let mut line = String::new();
    BufReader::new(tokio::io::stdin())
        .read_line(&mut line)
        .await
        .map_err(|source| ClientError::Io {
            what: "reading standard input",
            source,
        })?;
    if line.trim() == GO {
        Ok(())
    } else {
        Err(ClientError::Check(format!(
            "expected `{GO}` on standard input, got {line:?}"
        )))
    }
}

/// One caller per cell, calling for `phase`; then the figures.
async fn measure(cells: &[CellRef], phase: Duration, set: bool) -> PhaseReport {
    let start = Instant::now();
    let end = start + phase;
    let mut callers = tokio::task::JoinSet::new();
    for (i, cell) in cells.iter().enumerate() {
        let cell = cell.clone();
        callers.spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut errors = 0u64;
            let mut n = i64::try_from(i).unwrap_or(0) * 1_000_000_000;
            while Instant::now() < end {
                let t0 = Instant::now();
                let ok = if set {
                    n += 1;
                    cell.set(Value::Int(n)).await.is_ok()
                } else {
                    cell.get().await.is_ok()
                };
                if ok {
                    let us = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
                    latencies.push(us);
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        });
    }
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    while let Some(done) = callers.join_next().await {
        match done {
            Ok((l, e)) => {
                all.extend(l);
                errors += e;
            }
            Err(_) => errors += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: usize| {
        if all.is_empty() {
            0
        } else {
            u64::from(all[(all.len() - 1) * p / 100])
        }
    };
    PhaseReport {
        calls: all.len() as u64,
        errors,
        per_sec: all.len() as f64 / elapsed.max(f64::EPSILON),
        p50_us: pct(50),
        p99_us: pct(99),
    }
}

/// Starts `--processes` workers, starts them together, sums their figures.
async fn run_workers(args: &BenchCellsArgs, ctx: &Context) -> Result<Output, ClientError> {
    let exe = std::env::current_exe().map_err(|source| ClientError::Io {
        what: "finding the client executable",
        source,
    })?;
    let mut workers = Vec::new();
    for _ in 0..args.processes {
        let mut cmd = tokio::process::Command::new(&exe);
        if let Some(dir) = ctx.tls_dir() {
            cmd.arg("--tls").arg(dir);
        }
        let child = cmd
            .args(["--nameserver", ctx.nameserver(), "--db", ctx.db_path()])
            .arg("--json")
            .arg("--timeout")
            .arg(ctx.timeout().as_secs().to_string())
            .args(["bench-cells", "--worker", "--callers"])
            .arg(args.callers.to_string())
            .arg("--seconds")
            .arg(args.seconds.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ClientError::Io {
                what: "starting a benchmark worker",
                source,
            })?;
        workers.push(child);
    }
    // Wait until every worker is set up, so that they measure the same window.
    let mut outs = Vec::new();
    for w in &mut workers {
        let stdout = w
            .stdout
            .take()
            .ok_or_else(|| ClientError::Check("benchmark worker without standard output".into()))?;
        let mut out = BufReader::new(stdout);
        let mut line = String::new();
        ctx.bounded(async {
            out.read_line(&mut line)
                .await
                .map_err(|source| ClientError::Io {
                    what: "reading a benchmark worker",
                    source,
                })
        })
        .await?;
        if line.trim() != READY {
            let mut err = String::new();
            if let Some(mut e) = w.stderr.take() {
                let _ = e.read_to_string(&mut err).await;
            }
            return Err(ClientError::Check(format!(
                "benchmark worker failed to start: {}",
                err.trim()
            )));
        }
        outs.push(out);
    }
    for w in &mut workers {
        if let Some(mut stdin) = w.stdin.take() {
            stdin
                .write_all(format!("{GO}\n").as_bytes())
                .await
                .map_err(|source| ClientError::Io {
                    what: "starting a benchmark worker",
                    source,
                })?;
        }
    }
    let mut total = BenchReport {
        callers: args.callers,
        processes: args.processes,
        seconds: args.seconds,
        get: PhaseReport::default(),
        set: PhaseReport::default(),
    };
    // Both phases, plus setup and teardown time.
    let limit = Duration::from_secs(2 * args.seconds) + ctx.timeout();
    for (w, mut out) in workers.iter_mut().zip(outs) {
        let mut rest = String::new();
        let status = crate::context::bounded(limit, async {
            out.read_to_string(&mut rest)
                .await
                .map_err(|source| ClientError::Io {
                    what: "reading a benchmark worker",
                    source,
                })?;
            w.wait().await.map_err(|source| ClientError::Io {
                what: "waiting for a benchmark worker",
                source,
            })
        })
        .await?;
        let report: BenchReport = serde_json::from_str(rest.trim())
            .ok()
            .filter(|_| status.success())
            .ok_or_else(|| {
                ClientError::Check(format!(
                    "benchmark worker failed ({status}): {}",
                    rest.trim()
                ))
            })?;
        total.get.add(&report.get);
        total.set.add(&report.set);
    }
    Ok(Output::Bench(total))
}
