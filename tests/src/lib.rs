//! Benchmarks (`rpc-bench`, `transfer-bench` in `src/bin`) and cross-crate
//! end-to-end tests of the workspace; this library holds what the benchmark
//! binaries share.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Waits up to `grace` for `child` to exit, then kills it.
pub fn reap(child: &mut Child, grace: Duration) {
    let until = Instant::now() + grace;
    while Instant::now() < until {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
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
            .spawn()
            .map_err(|e| format!("cannot start the busy loop (timeout, nice, sh): {e}"))?;
        Ok(Spinner { child })
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        // SIGTERM, which `timeout` passes on to the loop; SIGKILL would orphan it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        reap(&mut self.child, Duration::from_secs(2));
    }
}
