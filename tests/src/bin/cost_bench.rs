//! `cost-bench`: what an idle connection and an export cost a node in
//! resident memory (issue 14, item 6).
//!
//! ```text
//! cost-bench [--connections N] [--exports N]
//! ```
//!
//! - Idle connections: a server node in a child process (this binary
//!   re-executed with `--serve`); the parent opens `--connections` client
//!   nodes, each with one connection to it, lets them settle, and reads the
//!   server's `VmRSS` before and after: the difference divided by the count
//!   (aim: at most 64 KiB). The server's descriptor count is shown too.
//! - Exports: a fresh child process (`--export-child N`) exports N objects
//!   (pinned, as a name server's bindings are) and reports its `VmRSS`
//!   before and after (aim: at most 1 KiB each).
//!
//! Name resolves per second, the third small cost, are measured by
//! `cargo run --release -p nameserver --example resolve_bench`.

use clap::Parser;
use rpc_core::{Config, Node, RpcError, remote};
use std::process::ExitCode;
use std::time::Duration;
use test_support::procfs::status_kib;
use tests::BoxErr;

/// An interface with one method: exports need a class.
#[remote(name = "bench.Cost")]
pub trait Cost {
    /// Returns `x`.
    async fn echo(&self, x: u64) -> Result<u64, RpcError>;
}

/// The exported object: no state of its own.
struct CostImpl;

impl Cost for CostImpl {
    async fn echo(&self, x: u64) -> Result<u64, RpcError> {
        Ok(x)
    }
}

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "cost-bench",
    about = "resident memory per idle connection and per export"
)]
struct Args {
    /// Idle connections opened to the server.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Objects exported by the export child.
    #[arg(long, default_value_t = 100_000)]
    exports: usize,
    /// Internal: serve (in a child process), accepting this many connections.
    #[arg(long, hide = true)]
    serve: Option<usize>,
    /// Internal: export this many objects and report the memory.
    #[arg(long, hide = true)]
    export_child: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let r = match (args.serve, args.export_child) {
        (Some(n), _) => serve(n),
        (_, Some(n)) => export_child(n),
        _ => bench(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cost-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The server's node configuration: room for `n` connections from one address.
fn server_config(n: usize) -> Config {
    Config {
        max_connections: n + 16,
        max_connections_per_address: n + 16,
        ..Config::default()
    }
}

/// Child process: a node serving until stdin closes.
fn serve(n: usize) -> Result<(), BoxErr> {
    let rt = tokio::runtime::Runtime::new()?;
    test_support::reexec::exit_when_stdin_closes();
    rt.block_on(async move {
        let node = Node::new(server_config(n));
        let addr = node.listen("127.0.0.1:0").await?;
        node.bind_bootstrap("cost", &CostRef::new(CostImpl))?;
        println!("listening {addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// Child process: exports `n` objects and prints `exports BEFORE AFTER` (KiB).
fn export_child(n: usize) -> Result<(), BoxErr> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let node = Node::new(Config::default());
        // One export first, so that the tables exist before the baseline.
        let first = node.capability_of(&CostRef::new(CostImpl))?;
        node.pin(&first.object);
        let before = status_kib("self", "VmRSS:")?;
        for _ in 0..n {
            let cap = node.capability_of(&CostRef::new(CostImpl))?;
            node.pin(&cap.object);
        }
        let after = status_kib("self", "VmRSS:")?;
        if node.stats().exports < n {
            return Err(format!("only {} exports", node.stats().exports).into());
        }
        println!("exports {before} {after}");
        Ok(())
    })
}

/// Open descriptors of process `pid`.
fn fds(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn bench(args: &Args) -> Result<(), BoxErr> {
    let n = args.connections.max(1);
    let mut server = tests::child(&["--serve", &n.to_string()])?;
    let addr = server.try_line("listening ")?;
    let spid = server.pid().to_string();
    let rt = tokio::runtime::Runtime::new()?;
    let (idle, busy, fd0, fd1) = rt.block_on(async {
        // One connection first: what every connection shares is then there.
        let warm = Node::new(Config::default());
        let r: CostRef = warm.lookup(&addr, "cost").await?;
        r.echo(1).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle = status_kib(&spid, "VmRSS:")?;
        let fd0 = fds(&spid);
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let node = Node::new(Config::default());
            node.connect(&addr).await?;
            nodes.push(node);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = status_kib(&spid, "VmRSS:")?;
        let fd1 = fds(&spid);
        for node in nodes {
            node.shutdown().await;
        }
        warm.shutdown().await;
        Ok::<_, BoxErr>((idle, busy, fd0, fd1))
    })?;
    drop(server);
    let per_conn = (busy.saturating_sub(idle)) as f64 * 1024.0 / n as f64;

    let m = args.exports.max(1);
    let mut child = tests::child(&["--export-child", &m.to_string()])?;
    let line = child.try_line("exports ")?;
    let mut it = line.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(before)), Some(Ok(after))) = (it.next(), it.next()) else {
        return Err(format!("bad export report: {line}").into());
    };
    let per_export = (after.saturating_sub(before)) as f64 * 1024.0 / m as f64;

    let goal = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "cost-bench: server RSS {idle} KiB with one connection, {busy} KiB with {n} more \
         ({fd0} -> {fd1} descriptors)"
    );
    println!(
        "idle connection: {:.1} KiB of server RSS each; aim <= 64 KiB: {}",
        per_conn / 1024.0,
        goal(per_conn <= 64.0 * 1024.0)
    );
    println!(
        "export: {per_export:.0} bytes of RSS each ({m} exports, {before} -> {after} KiB); \
         aim <= 1 KiB: {}",
        goal(per_export <= 1024.0)
    );
    Ok(())
}
