//! Benchmarks (`rpc-bench`, `transfer-bench`, `data-bench` in `src/bin`) and
//! cross-crate end-to-end tests of the workspace; this library holds what the
//! benchmark binaries share (child processes, `/proc` readings, test data).

pub mod pki;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::Proc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Write size of the plain TCP copy and read size of its server.
pub const TCP_IO: usize = 64 * 1024;

/// Any error; the benchmarks only report it.
pub type BoxErr = Box<dyn std::error::Error + Send + Sync>;

/// This benchmark binary run again with `args` (a server, or the client of
/// one measurement), its standard error shown as it comes; dropping it
/// closes its stdin, which asks it to exit, and kills it 5 s later.
///
/// # Errors
/// When it cannot be started.
pub fn child(args: &[&str]) -> Result<Proc, BoxErr> {
    let exe = std::env::current_exe()?;
    let proc = Proc::start(Command::new(exe).args(args).stdin(Stdio::piped()))?;
    Ok(proc.with_echo().with_grace(Duration::from_secs(5)))
}

/// A release binary next to this benchmark (`cargo build --release --bins`
/// builds them all).
///
/// # Errors
/// When it is missing.
pub fn sibling_bin(name: &str) -> Result<std::path::PathBuf, BoxErr> {
    let path = std::env::current_exe()?.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: cargo build --release --bins",
            path.display()
        )
        .into())
    }
}

/// A release `nameserver` and a `dbserver` registered with it over
/// `data`, both on loopback port 0 and logging warnings only; each with the
/// address it printed on its `listening` line.
///
/// # Errors
/// A binary is missing or did not start.
pub fn start_servers(data: &std::path::Path) -> Result<((Proc, String), (Proc, String)), BoxErr> {
    let start = |cmd: &mut Command| -> Result<(Proc, String), BoxErr> {
        let mut p = Proc::start(cmd.env("RUST_LOG", "warn").stdin(Stdio::null()))?;
        let addr = p.listening()?;
        Ok((p, addr))
    };
    let ns = start(Command::new(sibling_bin("nameserver")?).args(["--listen", "127.0.0.1:0"]))?;
    let db = start(
        Command::new(sibling_bin("dbserver")?)
            .args(["--listen", "127.0.0.1:0", "--nameserver", &ns.1, "--data"])
            .arg(data),
    )?;
    Ok((ns, db))
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

/// Set in the plain copy's length header: the server keeps the bytes in one
/// buffer of their size, as an in-memory rpc receiver does, instead of
/// reading them through one 64 KiB buffer.
const KEEP: u64 = 1 << 63;

/// Set in the header instead of a length: the connection echoes each byte
/// it reads, until the client closes it (see [`PlainPing`]).
const ECHO: u64 = 1 << 62;

/// Reads a u64 length, then that many bytes, and acknowledges the last one
/// with one byte. Without `KEEP` in the header the bytes go through one
/// 64 KiB buffer; with it, into a buffer of their size, freed after the
/// acknowledgement off the timed path. With `ECHO` it is a [`PlainPing`]'s
/// server instead.
///
/// # Errors
/// I/O errors of the connection.
pub async fn sink_conn(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let head = s.read_u64().await?;
    if head == ECHO {
        let mut b = [0u8; 1];
        while s.read(&mut b).await? == 1 {
            s.write_all(&b).await?;
        }
        return Ok(());
    }
    let len = head & !KEEP;
    let eof = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
    if head & KEEP != 0 {
        let len = usize::try_from(len).map_err(|_| std::io::ErrorKind::InvalidData)?;
        let mut v: Vec<u8> = Vec::with_capacity(len);
        while v.len() < len {
            // Reads into the spare capacity: no zeroing, no regrowth.
            if s.read_buf(&mut v).await? == 0 {
                return Err(eof());
            }
        }
        s.write_u8(1).await?;
        tokio::task::spawn_blocking(move || drop(v));
        return Ok(());
    }
    let mut buf = vec![0u8; TCP_IO];
    let mut got = 0u64;
    while got < len {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(eof());
        }
        got += n as u64;
    }
    s.write_u8(1).await?;
    Ok(())
}

/// The plain TCP copy: 64 KiB writes of `data`, timed until the server's
/// one-byte ack. With `keep` the server holds all of it in memory at once
/// (see [`sink_conn`]).
///
/// # Errors
/// I/O errors, or a server that answers something else.
pub async fn plain_copy(addr: &str, data: &[u8], keep: bool) -> Result<Duration, BoxErr> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let t = Instant::now();
    let keep = if keep { KEEP } else { 0 };
    s.write_u64(data.len() as u64 | keep).await?;
    for c in data.chunks(TCP_IO) {
        s.write_all(c).await?;
    }
    if s.read_u8().await? != 1 {
        return Err("tcp server answered something else".into());
    }
    Ok(t.elapsed())
}

/// A plain TCP round trip of one byte each way, on a connection of its
/// own to a [`sink_conn`] server: the plain reference for a null call's latency
/// between two processes, idle or while they move bulk bytes.
#[derive(Debug)]
pub struct PlainPing(TcpStream);

impl PlainPing {
    /// Opens an echo connection to the plain server at `addr`.
    ///
    /// # Errors
    /// I/O errors of the connection.
    pub async fn connect(addr: &str) -> std::io::Result<PlainPing> {
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        s.write_u64(ECHO).await?;
        Ok(PlainPing(s))
    }

    /// One round trip.
    ///
    /// # Errors
    /// I/O errors, or a server that closed or answered something else.
    pub async fn ping(&mut self) -> Result<(), BoxErr> {
        self.0.write_u8(7).await?;
        if self.0.read_u8().await? != 7 {
            return Err("echo server answered something else".into());
        }
        Ok(())
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
