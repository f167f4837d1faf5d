//! `nameserver`: runs a name server on `--listen HOST:PORT`, prints
//! `listening HOST:PORT` (the real port) as its first line of standard output,
//! logs to standard error (`RUST_LOG`), and stops gracefully on ctrl-c or
//! SIGTERM.

use clap::{CommandFactory, FromArgMatches, Parser};
use nameserver::server::{self, ServerConfig};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;

/// Name server of the distributed object system: a tree of naming contexts
/// (one per node), a class registry, and bindings that vanish when their node
/// stops renewing its lease.
#[derive(Debug, Parser)]
#[command(name = "nameserver", version)]
struct Args {
    /// Address to listen on, HOST:PORT; port 0 picks a free port (printed as
    /// `listening HOST:PORT` on standard output).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: String,

    /// Lease time in milliseconds: the entries of a node that stops renewing
    /// disappear this long after its last renewal.
    #[arg(long, env = "NAMESERVER_LEASE_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    lease_ms: u64,

    #[command(flatten)]
    net: rpc_core::cli::NetArgs,

    /// Entries (contexts, bindings, class offers, data locations) one node
    /// may own; more are refused with a quota error.
    #[arg(long, value_name = "N", default_value_t = nameserver::server::DEFAULT_MAX_ENTRIES,
          help_heading = "Limits")]
    max_entries: usize,

    #[command(flatten)]
    limits: rpc_core::cli::LimitArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    // The limit flags default to the name server's own budgets.
    let cmd = rpc_core::cli::LimitArgs::with_defaults(Args::command(), &server::node_defaults());
    let args = match Args::from_arg_matches(&cmd.get_matches()) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    tracing_subscriber::fmt()
        // A served call's span (target `rpc::call`, at debug) is printed as it
        // closes, with its trace id, parent span, outcome and time.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut node = server::node_defaults();
    args.limits.apply(&mut node);
    if let Err(e) = args.net.apply(&mut node, &args.listen) {
        eprintln!("nameserver: {e}");
        return ExitCode::FAILURE;
    }
    let listener = match TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nameserver: could not listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nameserver: could not read the listening address: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = ServerConfig {
        lease: Duration::from_millis(args.lease_ms),
        max_entries: args.max_entries,
        node,
    };
    // `listening` means ready: a client that connects on it finds the root
    // (printed before the root was bound, a fast client could miss it).
    let running = match server::start(listener, &config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nameserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    let entries = running.entry_counter();
    let metrics = args
        .net
        .start_metrics(
            running.node(),
            std::sync::Arc::new(move || vec![("nameserver_entries", entries() as f64)]),
        )
        .await;
    let metrics = match metrics {
        Ok(m) => m,
        Err(e) => {
            eprintln!("nameserver: {e}");
            running.stop().await;
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    // The metrics address first: `listening` stays the line that says "ready".
    let metrics_line = metrics.map_or(Ok(()), |m| writeln!(out, "metrics {m}"));
    if metrics_line
        .and_then(|()| writeln!(out, "listening {addr}"))
        .and_then(|()| out.flush())
        .is_err()
    {
        // Whoever started us reads this line; without it they cannot go on.
        eprintln!("nameserver: could not write to standard output");
        running.stop().await;
        return ExitCode::FAILURE;
    }
    drop(out);
    rpc_core::shutdown_signal().await;
    running.stop().await;
    ExitCode::SUCCESS
}
