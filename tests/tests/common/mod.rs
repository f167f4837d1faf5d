//! Process helpers shared by the end-to-end tests (`e2e.rs`, `data_e2e.rs`):
//! finding the real binaries, running them as [`Proc`]esses whose every wait
//! has a deadline, starting (and restarting) the name server and database
//! servers, and running `client` commands.
//!
//! Cargo sets `CARGO_BIN_EXE_*` only for a package's own binaries, so the
//! binaries are looked up next to the test executable; build them first
//! with `cargo build --workspace --bins` (`cargo test --workspace` does too).

// Each test file compiles this module on its own and uses only part of it;
// what one of them leaves unused would otherwise warn in that one.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Upper bound of any single wait.
pub(crate) const WAIT: Duration = Duration::from_secs(30);
/// Lease of the test's name server: a killed dbserver's entries go this soon.
pub(crate) const LEASE_MS: u64 = 1000;
/// The `--timeout` of every client run.
pub(crate) const CLIENT_TIMEOUT_SECS: &str = "10";

/// `target/<profile>/<name>`: the parent of this executable's `deps` directory.
pub(crate) fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (or `cargo test --workspace`)",
        path.display()
    );
    path
}

/// A child process, killed when dropped; standard output and error read
/// line by line on threads, so that every wait has a deadline.
pub(crate) struct Proc {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

fn lines_of(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

impl Proc {
    pub(crate) fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
        }
    }

    /// The address of the `listening HOST:PORT` line, or the process's
    /// standard error if it exits without one.
    pub(crate) fn listening(&mut self) -> Result<String, String> {
        match self.stdout.recv_timeout(WAIT) {
            Ok(line) => line
                .strip_prefix("listening ")
                .map(|a| a.trim().to_owned())
                .ok_or_else(|| format!("unexpected first line {line:?}")),
            Err(_) => {
                let _ = self.wait_exit();
                Err(self.stderr.try_iter().collect::<Vec<_>>().join("\n"))
            }
        }
    }

    pub(crate) fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "process did not exit in time");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the process wrote to standard error so far (all of it once it
    /// exited).
    pub(crate) fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// The process id, for reading `/proc/PID`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (a graceful stop) and waits for the process to exit.
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        self.wait_exit()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) fn start_nameserver() -> (Proc, String) {
    let mut p = Proc::spawn(Command::new(bin("nameserver")).args([
        "--listen",
        "127.0.0.1:0",
        "--lease-ms",
        &LEASE_MS.to_string(),
    ]));
    let addr = p.listening().expect("nameserver started");
    (p, addr)
}

/// A dbserver registered under the default context, `dbserver`.
pub(crate) fn start_dbserver(
    ns: &str,
    data: &Path,
    listen: &str,
) -> Result<(Proc, String), String> {
    start_named_dbserver(ns, "dbserver", data, listen)
}

/// A dbserver registered as `name` (it binds `name/db` and `name/data`).
pub(crate) fn start_named_dbserver(
    ns: &str,
    name: &str,
    data: &Path,
    listen: &str,
) -> Result<(Proc, String), String> {
    let mut p = Proc::spawn(
        Command::new(bin("dbserver"))
            .args([
                "--listen",
                listen,
                "--nameserver",
                ns,
                "--name",
                name,
                "--data",
            ])
            .arg(data)
            .env("RUST_LOG", "warn"),
    );
    let addr = p.listening()?;
    Ok((p, addr))
}

/// Restarts the dbserver `name` that listened on `addr` on the same data
/// directory, after it was killed or stopped; returns it and its address.
///
/// The name server still holds the dead server's bindings (and data
/// locations) until their lease runs out, and the new server (same
/// persistent node id) fails to bind them before then; each failed attempt
/// renews that lease, so wait longer than a lease before each attempt. If
/// the port cannot be bound again, take a new one (clients resolve the
/// server through the name server either way).
pub(crate) fn restart_dbserver(ns: &str, name: &str, data: &Path, addr: &str) -> (Proc, String) {
    let pause = Duration::from_millis(LEASE_MS * 3 / 2);
    let deadline = Instant::now() + WAIT;
    let mut listen = addr.to_owned();
    let (p, new_addr) = loop {
        std::thread::sleep(pause);
        match start_named_dbserver(ns, name, data, &listen) {
            Ok(started) => break started,
            Err(e) => {
                assert!(Instant::now() < deadline, "dbserver did not restart: {e}");
                if e.contains("cannot listen") {
                    listen = "127.0.0.1:0".into();
                }
            }
        }
    };
    eprintln!("dbserver {name} restarted on {new_addr} (was {addr})");
    (p, new_addr)
}

/// What a finished client printed.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) ok: bool,
    /// The exit status (`None`: killed by a signal).
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) fn client(ns: &str, args: &[&str]) -> Out {
    let mut p = Proc::spawn(
        Command::new(bin("client"))
            .env_remove("NAMESERVER")
            .env_remove("RUST_LOG")
            .args(["--nameserver", ns, "--timeout", CLIENT_TIMEOUT_SECS])
            .args(args),
    );
    let status = p.wait_exit();
    let drain = |rx: &mpsc::Receiver<String>| {
        let mut s = String::new();
        while let Ok(line) = rx.recv_timeout(WAIT) {
            s.push_str(&line);
            s.push('\n');
        }
        s
    };
    Out {
        ok: status.success(),
        code: status.code(),
        stdout: drain(&p.stdout),
        stderr: drain(&p.stderr),
    }
}

/// Runs a client command that must succeed; its standard output.
pub(crate) fn ok(ns: &str, args: &[&str]) -> String {
    let out = client(ns, args);
    assert!(out.ok, "client {args:?} failed: {out:?}");
    out.stdout
}

/// Runs a client command that must fail with exit status `code` (1: the
/// command failed, 2: usage error), printing nothing on standard output and
/// exactly one line on standard error; that line.
pub(crate) fn fails(ns: &str, code: i32, args: &[&str]) -> String {
    let out = client(ns, args);
    assert_eq!(
        out.code,
        Some(code),
        "client {args:?}: expected exit status {code}: {out:?}"
    );
    assert!(
        out.stdout.is_empty() && out.stderr.lines().count() == 1,
        "client {args:?}: expected no output and one line on stderr: {out:?}"
    );
    out.stderr.trim_end().to_owned()
}
