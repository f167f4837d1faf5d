//! The README's main command, `client demo`, run as a real process.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_runs_to_the_end() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_client"))
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start client demo");
    let t0 = Instant::now();
    loop {
        if child.try_wait().expect("poll child").is_some() {
            break;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("demo did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("demo output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "bound as dbserver/db",
        "the server called our watcher with 1913",
        "imported 3 rows",
        "Barbara Liskov",
        "shutting down",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}
