//! A test executable running one of its own tests as a child process: the
//! child test does its work only when an environment variable selects it
//! (and passes silently in a normal run), and the parent starts it with
//! [`child_test`].

use std::process::Command;

/// The value of `env` when this executable runs as a child selected by it;
/// `None` in a normal test run.
pub fn child_role(env: &str) -> Option<String> {
    std::env::var(env).ok()
}

/// A command running only the test `name` of this test executable, its
/// output not captured, with `env=value` set.
///
/// # Panics
/// When this executable's path cannot be read.
pub fn child_test(name: &str, env: &str, value: &str) -> Command {
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, value);
    cmd
}

/// Ends this process once standard input is closed (the parent's end, or
/// the parent's death), from a thread of its own: a server child that
/// needs no clean shutdown.
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        until_stdin_closes();
        std::process::exit(0);
    });
}

/// Blocks until standard input is closed: how a child is told to stop.
pub fn until_stdin_closes() {
    let mut sink = std::io::sink();
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut sink);
}
