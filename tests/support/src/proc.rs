//! A child process for a test or a benchmark: its standard output and error
//! read line by line on threads, so that every wait has a deadline; its
//! standard error kept, so that a failed wait or a failing test shows what
//! the child said; killed (or given a grace period) when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Default upper bound of any single wait.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running child process; see the module documentation.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// What it was started as, for messages.
    name: String,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// Every line of standard error so far.
    kept: Arc<Mutex<Vec<String>>>,
    /// Whether standard error is also copied to this process's, as it comes.
    echo: Arc<AtomicBool>,
    /// Time given to exit by itself once stdin is closed, when dropped.
    grace: Duration,
    wait: Duration,
}

/// What a finished child printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// Whether it exited with status 0.
    pub ok: bool,
    /// Its exit code, if it exited (not killed by a signal).
    pub code: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Where a line of standard error also goes.
type Keep = (Arc<Mutex<Vec<String>>>, Arc<AtomicBool>);

/// Lines of `r`, each sent on the returned channel (and kept, and echoed
/// if asked, for standard error).
fn lines_of(r: impl Read + Send + 'static, keep: Option<Keep>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if let Some((kept, echo)) = &keep {
                if echo.load(Ordering::Relaxed) {
                    eprintln!("{line}");
                }
                if let Ok(mut k) = kept.lock() {
                    k.push(line.clone());
                }
            }
            // The receiver may be gone; the line is still kept.
            let _ = tx.send(line);
        }
    });
    rx
}

impl Proc {
    /// Starts `cmd` with standard input closed.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc::start(cmd.stdin(Stdio::null())).expect("start a child process")
    }

    /// Starts `cmd` with standard input piped: [`Proc::tell`] writes to it,
    /// and closing it (on drop) is how a child is asked to exit.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn spawn_piped(cmd: &mut Command) -> Proc {
        Proc::start(cmd.stdin(Stdio::piped())).expect("start a child process")
    }

    /// Starts `cmd` (whose standard input the caller chose).
    ///
    /// # Errors
    /// When it cannot be started.
    pub fn start(cmd: &mut Command) -> std::io::Result<Proc> {
        let name = format!("{:?}", cmd.get_program());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let kept = Arc::new(Mutex::new(Vec::new()));
        let echo = Arc::new(AtomicBool::new(false));
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("child without piped output"));
        };
        Ok(Proc {
            stdin: child.stdin.take(),
            stdout: lines_of(stdout, None),
            stderr: lines_of(stderr, Some((Arc::clone(&kept), Arc::clone(&echo)))),
            child,
            name,
            kept,
            echo,
            grace: Duration::ZERO,
            wait: WAIT,
        })
    }

    /// On drop, close stdin and give the child `grace` to exit by itself
    /// before it is killed.
    pub fn with_grace(mut self, grace: Duration) -> Proc {
        self.grace = grace;
        self
    }

    /// Copy the child's standard error to this process's as it comes (a
    /// benchmark's servers), besides keeping it.
    pub fn with_echo(self) -> Proc {
        self.echo.store(true, Ordering::Relaxed);
        self
    }

    /// Bound every wait by `wait` instead of [`WAIT`].
    pub fn with_wait(mut self, wait: Duration) -> Proc {
        self.wait = wait;
        self
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child wrote to standard error so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.kept.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Why a wait failed: the exit status if it exited, and its stderr.
    fn report(&mut self, what: &str) -> String {
        // Give a dying child a moment to finish writing its last words.
        let status = (0..50).find_map(|_| match self.child.try_wait() {
            Ok(Some(s)) => Some(s),
            _ => {
                std::thread::sleep(Duration::from_millis(10));
                None
            }
        });
        let status = status.map_or_else(|| "still running".to_owned(), |s| s.to_string());
        format!(
            "{what} from {} ({status}); its stderr:\n{}",
            self.name,
            self.stderr_lines().join("\n")
        )
    }

    /// The rest of the first line of standard output holding `prefix`
    /// (libtest may print a test's name before a child's words on the same
    /// line), within the wait bound.
    ///
    /// # Errors
    /// When the child ends its output or the bound passes first: what it
    /// said on stderr, and how it exited.
    pub fn try_line(&mut self, prefix: &str) -> Result<String, String> {
        let deadline = Instant::now() + self.wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    if let Some(at) = line.find(prefix) {
                        return Ok(line[at + prefix.len()..].trim().to_owned());
                    }
                }
                Err(e) => return Err(self.report(&format!("no `{prefix}` line ({e})"))),
            }
        }
    }

    /// [`Proc::try_line`], failing the test with the child's stderr.
    ///
    /// # Panics
    /// As [`Proc::try_line`] errs.
    pub fn line(&mut self, prefix: &str) -> String {
        self.try_line(prefix).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The address of the child's `listening HOST:PORT` line.
    ///
    /// # Errors
    /// As [`Proc::try_line`].
    pub fn listening(&mut self) -> Result<String, String> {
        self.try_line("listening ")
    }

    /// The first line of standard error holding `needle`.
    ///
    /// # Panics
    /// When none comes within the wait bound.
    pub fn stderr_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + self.wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => {
                    let r = self.report(&format!("no `{needle}` on stderr ({e})"));
                    panic!("{r}")
                }
            }
        }
    }

    /// Writes `line` to the child's standard input.
    ///
    /// # Errors
    /// When its stdin is not piped or closed.
    pub fn tell(&mut self, line: &str) -> std::io::Result<()> {
        let w = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the child's stdin is not piped"))?;
        writeln!(w, "{line}")?;
        w.flush()
    }

    /// Closes the child's standard input.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// The exit status, within the wait bound.
    ///
    /// # Panics
    /// When it does not exit in time.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + self.wait;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() >= deadline {
                let r = self.report("no exit in time");
                panic!("{r}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit and collects the rest of the output.
    ///
    /// # Panics
    /// When it does not exit in time.
    pub fn finish(mut self) -> Output {
        let status = self.wait_exit();
        let collect = |rx: &mpsc::Receiver<String>| {
            let mut text = String::new();
            // The reader threads end at EOF, which follows the exit.
            while let Ok(line) = rx.recv_timeout(WAIT) {
                text.push_str(&line);
                text.push('\n');
            }
            text
        };
        let stdout = collect(&self.stdout);
        // Drain the channel so the threads end; the text is what was kept.
        while self.stderr.recv_timeout(WAIT).is_ok() {}
        let mut stderr = self.stderr_lines().join("\n");
        if !stderr.is_empty() {
            stderr.push('\n');
        }
        Output {
            ok: status.success(),
            code: status.code(),
            stdout,
            stderr,
        }
    }

    /// SIGKILL, and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (a graceful stop), then the exit status.
    ///
    /// # Panics
    /// When the signal cannot be sent or it does not exit in time.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid} failed");
        self.wait_exit()
    }
}

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

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.echo.load(Ordering::Relaxed) {
            eprintln!(
                "--- stderr of {} (pid {}) ---\n{}\n--- end of its stderr ---",
                self.name,
                self.child.id(),
                self.stderr_lines().join("\n")
            );
        }
        self.close_stdin();
        reap(&mut self.child, self.grace);
    }
}
