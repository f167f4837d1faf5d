//! Benchmarks (`rpc-bench`, `transfer-bench`, `data-bench` in `src/bin`) and
//! cross-crate end-to-end tests of the workspace; this library holds what the
//! benchmark binaries share (child processes, `/proc` readings, test data).

pub mod pki;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Write size of the plain TCP copy and read size of its server.
pub const TCP_IO: usize = 64 * 1024;

/// Any error; the benchmarks only report it.
pub type BoxErr = Box<dyn std::error::Error + Send + Sync>;

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

/// A child process of this binary; closes its stdin and reaps it when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    /// Starts this executable again with `args`, its stdin and stdout piped.
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn spawn(args: &[&str]) -> Result<Proc, BoxErr> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        // From here on the guard reaps the child on any error.
        let mut guard = Proc {
            child,
            stdin,
            stdout: BufReader::new(
                stdout.ok_or_else(|| std::io::Error::other("child without stdout"))?,
            ),
        };
        if guard.stdin.is_none() {
            guard.child.kill()?;
            return Err("child without stdin".into());
        }
        Ok(guard)
    }

    /// The next line the child prints, which must start with `prefix`; the rest.
    ///
    /// # Errors
    /// When the child says something else or closes its stdout.
    pub fn expect_line(&mut self, prefix: &str) -> Result<String, BoxErr> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        match line.trim().strip_prefix(prefix) {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => Err(format!("child said {line:?}, expected {prefix:?}").into()),
        }
    }

    /// Writes `line` to the child's stdin.
    ///
    /// # Errors
    /// When its stdin is closed.
    pub fn tell(&mut self, line: &str) -> Result<(), BoxErr> {
        let w = self.stdin.as_mut().ok_or("child stdin closed")?;
        writeln!(w, "{line}")?;
        w.flush()?;
        Ok(())
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        reap(&mut self.child, Duration::from_secs(5));
    }
}

/// `VmRSS:` or `VmHWM:` of process `pid` ("self" for this one), in KiB.
///
/// # Errors
/// When the file cannot be read or has no such field.
pub fn status_kib(pid: &str, field: &str) -> Result<u64, BoxErr> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status").into())
}

/// `size` bytes of xorshift64* output: real data, not zeros.
pub fn make_data(size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while v.len() < size {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let w = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        let take = (size - v.len()).min(8);
        v.extend_from_slice(&w[..take]);
    }
    v
}

/// Reads a u64 length, then that many bytes in reads of up to 64 KiB, and
/// acknowledges the last one with one byte.
///
/// # Errors
/// I/O errors of the connection.
pub async fn sink_conn(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let len = s.read_u64().await?;
    let mut buf = vec![0u8; TCP_IO];
    let mut got = 0u64;
    while got < len {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got += n as u64;
    }
    s.write_u8(1).await?;
    Ok(())
}

/// The plain TCP copy: 64 KiB writes of `data`, timed until the server's one-byte ack.
///
/// # Errors
/// I/O errors, or a server that answers something else.
pub async fn plain_copy(addr: &str, data: &[u8]) -> Result<Duration, BoxErr> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let t = Instant::now();
    s.write_u64(data.len() as u64).await?;
    for c in data.chunks(TCP_IO) {
        s.write_all(c).await?;
    }
    if s.read_u8().await? != 1 {
        return Err("tcp server answered something else".into());
    }
    Ok(t.elapsed())
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

/// Writes `data` to `path` and fsyncs it; returns the time it took.
///
/// # Errors
/// I/O errors on `path`.
pub fn write_synced(path: &std::path::Path, data: &[u8]) -> std::io::Result<Duration> {
    let t = Instant::now();
    let mut f = std::fs::File::create(path)?;
    for c in data.chunks(1 << 20) {
        f.write_all(c)?;
    }
    f.sync_all()?;
    Ok(t.elapsed())
}
