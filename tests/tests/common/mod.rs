//! Process helpers shared by the end-to-end tests of this package: finding
//! the real binaries, running them as [`Proc`]esses whose every wait has a
//! deadline, starting (and restarting) the name server and database
//! servers, and running `client` commands.
//!
//! Cargo sets `CARGO_BIN_EXE_*` only for a package's own binaries, so the
//! binaries are looked up next to the test executable: `cargo test
//! --workspace` builds them there; to run this package's tests alone, run
//! `cargo build --workspace --bins` first.

// Each test file compiles this module on its own and uses only part of it;
// what one of them leaves unused would otherwise warn in that one.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
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
        "{} is missing: run `cargo test --workspace`, or `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A child process whose every wait has a deadline and whose standard
/// error is kept (and printed when a test fails).
pub(crate) use test_support::Proc;

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
pub(crate) use test_support::Output as Out;

pub(crate) fn client(ns: &str, args: &[&str]) -> Out {
    Proc::spawn(
        Command::new(bin("client"))
            .env_remove("NAMESERVER")
            .env_remove("RUST_LOG")
            .args(["--nameserver", ns, "--timeout", CLIENT_TIMEOUT_SECS])
            .args(args),
    )
    .finish()
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
