//! Readings of `/proc` about a process: resident memory, descriptors, CPU
//! time. `pid` is a process id or `self`.

/// A `/proc/PID/status` field such as `VmRSS:` or `VmHWM:`, in KiB.
///
/// # Errors
/// When the file cannot be read or has no such field.
pub fn status_kib(pid: &str, field: &str) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))
}

/// Open file descriptors of `pid` (0 when it cannot be read).
pub fn fd_count(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Threads of `pid` (0 when they cannot be read).
pub fn thread_count(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

/// CPU time used so far by all live threads of `pid`, in ns, from
/// `/proc/PID/task/*/schedstat`; `None` where that is not readable.
pub fn cpu_ns(pid: &str) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}
