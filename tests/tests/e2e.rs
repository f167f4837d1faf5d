#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! The three real binaries as processes: `nameserver`, `dbserver
//! --nameserver ADDR --data DIR` and `client`. A session through all three;
//! `dbserver` killed with SIGKILL in the middle of a stream of `client
//! insert`s and restarted on the same data directory, every acknowledged row
//! then found by `client scan`; `client ls` showing both servers' contexts.
//!
//! Cargo sets `CARGO_BIN_EXE_*` only for a package's own binaries, so the
//! binaries are looked up next to this test executable; build them first
//! with `cargo build --workspace --bins` (`cargo test --workspace` does too).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Upper bound of any single wait.
const WAIT: Duration = Duration::from_secs(30);
/// Lease of the test's name server: a killed dbserver's entries go this soon.
const LEASE_MS: u64 = 1000;

/// `target/<profile>/<name>`: the parent of this executable's `deps` directory.
fn bin(name: &str) -> PathBuf {
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
struct Proc {
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
    fn spawn(cmd: &mut Command) -> Proc {
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
    fn listening(&mut self) -> Result<String, String> {
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

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "process did not exit in time");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn start_nameserver() -> (Proc, String) {
    let mut p = Proc::spawn(Command::new(bin("nameserver")).args([
        "--listen",
        "127.0.0.1:0",
        "--lease-ms",
        &LEASE_MS.to_string(),
    ]));
    let addr = p.listening().expect("nameserver started");
    (p, addr)
}

fn start_dbserver(ns: &str, data: &Path, listen: &str) -> Result<(Proc, String), String> {
    let mut p = Proc::spawn(
        Command::new(bin("dbserver"))
            .args(["--listen", listen, "--nameserver", ns, "--data"])
            .arg(data)
            .env("RUST_LOG", "warn"),
    );
    let addr = p.listening()?;
    Ok((p, addr))
}

/// What a finished client printed.
#[derive(Debug)]
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn client(ns: &str, args: &[&str]) -> Out {
    let mut p = Proc::spawn(
        Command::new(bin("client"))
            .env_remove("NAMESERVER")
            .env_remove("RUST_LOG")
            .args(["--nameserver", ns, "--timeout", "10"])
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
        stdout: drain(&p.stdout),
        stderr: drain(&p.stderr),
    }
}

fn ok(ns: &str, args: &[&str]) -> String {
    let out = client(ns, args);
    assert!(out.ok, "client {args:?} failed: {out:?}");
    out.stdout
}

#[test]
fn a_session_through_three_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (_ns, ns) = start_nameserver();
    let (_db, _) = start_dbserver(&ns, &dir.path().join("data"), "127.0.0.1:0").unwrap();

    let ls = ok(&ns, &["ls"]);
    assert!(ls.contains("context  dbserver"), "{ls}");
    assert!(ls.contains("context  nameserver"), "{ls}");
    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "ls", "dbserver"])).unwrap();
    // Sorted by name: the data manager, then the database.
    assert_eq!(j["entries"][0]["name"], "data");
    assert_eq!(j["entries"][1]["name"], "db");
    assert_eq!(j["entries"][1]["kind"], "object");

    ok(
        &ns,
        &["create-table", "people", "--columns", "name:text,born:int"],
    );
    assert_eq!(ok(&ns, &["insert", "people", "Ada", "1815"]), "1\n");
    assert_eq!(
        ok(&ns, &["set", "people", "1", "born", "1816"]),
        "people[1].born = 1816\n"
    );
    assert_eq!(ok(&ns, &["get", "people", "1", "born"]), "1816\n");
    assert_eq!(
        ok(&ns, &["scan", "people"]),
        "id  name  born\n1   Ada   1816\n"
    );
    let bad = client(&ns, &["get", "people", "1", "nope"]);
    assert!(
        !bad.ok && bad.stdout.is_empty() && bad.stderr.lines().count() == 1,
        "{bad:?}"
    );
}

#[test]
fn acknowledged_inserts_survive_kill_9_of_dbserver() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_ns, ns) = start_nameserver();
    let (mut db, addr) = start_dbserver(&ns, &data, "127.0.0.1:0").unwrap();
    ok(&ns, &["create-table", "log", "--columns", "w:text,i:int"]);

    // Writers run `client insert` until told to stop; each keeps what was acknowledged.
    let acked: Arc<Mutex<Vec<(u64, String, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (ns, acked, stop) = (ns.clone(), Arc::clone(&acked), Arc::clone(&stop));
        writers.push(std::thread::spawn(move || {
            let who = format!("w{w}");
            let mut i = 0i64;
            while !stop.load(Ordering::SeqCst) {
                let out = client(&ns, &["insert", "log", &who, &i.to_string()]);
                if out.ok {
                    let row = out.stdout.trim().parse().unwrap();
                    acked.lock().unwrap().push((row, who.clone(), i));
                }
                i += 1;
            }
        }));
    }
    let deadline = Instant::now() + WAIT;
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "inserts too slow");
        std::thread::sleep(Duration::from_millis(10));
    }
    db.kill9();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // Restart on the same data directory and port. The name server still
    // holds the killed server's `dbserver/db` until its lease runs out, and
    // the new server (same persistent node id) fails to bind it before then;
    // each failed attempt renews that lease, so wait longer than a lease
    // before each attempt. If the port cannot be bound again, take a new one
    // (the client resolves the database through the name server either way).
    let pause = Duration::from_millis(LEASE_MS * 3 / 2);
    let deadline = Instant::now() + WAIT;
    let mut listen = addr.clone();
    let (_db, new_addr) = loop {
        std::thread::sleep(pause);
        match start_dbserver(&ns, &data, &listen) {
            Ok(started) => break started,
            Err(e) => {
                assert!(Instant::now() < deadline, "dbserver did not restart: {e}");
                if e.contains("cannot listen") {
                    listen = "127.0.0.1:0".into();
                }
            }
        }
    };
    eprintln!("dbserver restarted on {new_addr} (was {addr})");

    let j: serde_json::Value = serde_json::from_str(&ok(&ns, &["--json", "scan", "log"])).unwrap();
    let stored: HashMap<u64, serde_json::Value> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_u64().unwrap(), r["values"].clone()))
        .collect();
    for (row, who, i) in &acked {
        assert_eq!(
            stored.get(row),
            Some(&serde_json::json!([who, i])),
            "acknowledged row {row} lost"
        );
    }
    // At most the inserts in flight (one per writer) landed unacknowledged.
    assert!(
        stored.len() <= acked.len() + 4,
        "{} rows for {} acks",
        stored.len(),
        acked.len()
    );
    // And the restarted server takes writes again.
    ok(&ns, &["insert", "log", "after", "0"]);
}
