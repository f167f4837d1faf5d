//! The benchmarks' shared pieces: tokio runtime flavours, latency summaries,
//! rates, and the `--awake` busy loop.

use crate::proc::reap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Tokio runtime flavour of a benchmark's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavour {
    /// `new_current_thread`.
    Current,
    /// `new_multi_thread` with the default worker count (one per CPU).
    Multi,
}

impl Flavour {
    /// The flag value naming it.
    pub fn name(self) -> &'static str {
        match self {
            Flavour::Current => "current",
            Flavour::Multi => "multi",
        }
    }

    /// A runtime of this flavour with all drivers enabled.
    ///
    /// # Errors
    /// When the runtime cannot be built.
    pub fn runtime(self) -> std::io::Result<tokio::runtime::Runtime> {
        match self {
            Flavour::Current => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            Flavour::Multi => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build(),
        }
    }
}

/// Summary of latencies, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lat {
    /// How many were measured.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// Summarizes latencies given in nanoseconds (nearest-rank percentiles).
pub fn summarize(mut ns: Vec<u64>) -> Lat {
    ns.sort_unstable();
    let n = ns.len().max(1);
    let rank = |q: usize| ns.get((n * q).div_ceil(100).saturating_sub(1)).copied();
    let us = |v: Option<u64>| v.unwrap_or(0) as f64 / 1_000.0;
    Lat {
        n: ns.len(),
        p50: us(rank(50)),
        p99: us(rank(99)),
        max: us(ns.last().copied()),
        mean: ns.iter().sum::<u64>() as f64 / n as f64 / 1_000.0,
    }
}

/// Nanoseconds since `t`.
pub fn elapsed_ns(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// `bytes` in `d` as MB/s (MB = 10^6 bytes).
pub fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

/// The median of `v` (NaN when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `--awake` busy loop, `timeout N nice -n 19 sh -c 'while :; do :; done'`:
/// keeps a vCPU from halting (see PERF-NOTES); stopped when dropped.
#[derive(Debug)]
pub struct Spinner {
    child: Child,
}

impl Spinner {
    /// Starts the loop, which ends by itself after `limit_secs` at the latest.
    ///
    /// # Errors
    /// When `timeout`, `nice` or `sh` cannot be started.
    pub fn start(limit_secs: u32) -> Result<Spinner, String> {
        let child = Command::new("timeout")
            .args([
                "--kill-after=5",
                &limit_secs.to_string(),
                "nice",
                "-n",
                "19",
                "sh",
                "-c",
                "while :; do :; done",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Its own group, so that `SpinHandle` can stop `timeout` and the loop.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the busy loop (timeout, nice, sh): {e}"))?;
        Ok(Spinner { child })
    }

    /// A handle that can stop the loop for a while, for a task that does not
    /// hold the spinner.
    pub fn handle(&self) -> SpinHandle {
        SpinHandle {
            group: self.child.id(),
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        // SIGTERM, which `timeout` passes on to the loop; SIGKILL would orphan it.
        signal(&self.child.id().to_string(), "TERM");
        // A paused loop only acts on the SIGTERM once it runs again.
        signal_group(self.child.id(), "CONT");
        reap(&mut self.child, Duration::from_secs(2));
    }
}

/// Stops and restarts a [`Spinner`]'s loop.
///
/// Why: on 2 vCPUs the loop counts as a busy CPU to the scheduler, which then
/// keeps a client and its server child on the other vCPU together (seen with
/// `ps -L -o psr`: both on one vCPU at about 50 % each, the loop alone on the
/// other). Figures where both processes should be busy at once (throughput)
/// are measured with the loop paused.
#[derive(Debug, Clone, Copy)]
pub struct SpinHandle {
    /// `timeout` runs in a process group of its own, the loop inside it.
    group: u32,
}

impl SpinHandle {
    /// Stops the loop (SIGSTOP to its process group) until the guard drops.
    pub fn pause(self) -> SpinPaused {
        signal_group(self.group, "STOP");
        SpinPaused { group: self.group }
    }
}

/// Restarts the loop when dropped; see [`SpinHandle::pause`].
#[derive(Debug)]
pub struct SpinPaused {
    group: u32,
}

impl Drop for SpinPaused {
    fn drop(&mut self) {
        signal_group(self.group, "CONT");
    }
}

/// Sends `SIG<sig>` to every process of the group `group`.
fn signal_group(group: u32, sig: &str) {
    signal(&format!("-{group}"), sig);
}

/// Sends `SIG<sig>` to `target`, as `kill` names it (a pid, or `-group`).
fn signal(target: &str, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Pins `tid` (a thread, or with `all` every thread of the process `tid`) to
/// the CPUs of `cpus` (a `taskset` list such as `1` or `0-1`), with util-linux
/// `taskset`. Returns false when that failed (no `taskset`, no such thread).
pub fn pin(tid: u32, cpus: &str, all: bool) -> bool {
    let mut cmd = Command::new("taskset");
    if all {
        cmd.arg("-a");
    }
    cmd.args(["-p", "-c", cpus, &tid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Number of CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
