//! The README's main command, `client demo`, run as a real process.

use std::process::Command;
use std::time::Duration;
use test_support::Proc;

#[test]
fn demo_runs_to_the_end() {
    let out = Proc::spawn(Command::new(env!("CARGO_BIN_EXE_client")).arg("demo"))
        .with_wait(Duration::from_secs(60))
        .finish();
    assert!(out.ok, "demo failed: {}\n{}", out.stdout, out.stderr);
    for needle in [
        "bound as dbserver/db",
        "the server called our watcher with 1913",
        "imported 3 rows",
        "Barbara Liskov",
        "shutting down",
    ] {
        assert!(
            out.stdout.contains(needle),
            "missing {needle:?} in:\n{}",
            out.stdout
        );
    }
}
