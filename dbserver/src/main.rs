//! `dbserver`: serves a database directory over RPC.
//!
//! Prints `listening HOST:PORT` as the first line of standard output once it
//! accepts connections; logs go to standard error (`RUST_LOG`). Stops
//! gracefully on Ctrl-C or SIGTERM.

use clap::Parser;
use dbserver::server::DbServer;
use nameserver::client::NameClient;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The database server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Directory of the store (created if missing).
    #[arg(long)]
    data: PathBuf,
    /// Name server address: the database is bound there as `<name>/db` and
    /// the data manager as `<name>/data`, under a context this server
    /// registers and keeps leased; the name server also locates the data
    /// this server keeps. Without it both are only in this node's bootstrap
    /// registry, as `db` and `data`.
    #[arg(long, env = "NAMESERVER")]
    nameserver: Option<String>,
    /// Name of this server's context in the name server.
    #[arg(long, default_value = "dbserver")]
    name: String,

    #[command(flatten)]
    net: rpc_core::cli::NetArgs,

    #[command(flatten)]
    limits: rpc_core::cli::LimitArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
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
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dbserver: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dbserver: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let mut config = rpc_core::Config::default();
    args.limits.apply(&mut config);
    args.net.apply(&mut config, &args.listen)?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let server = DbServer::start_with(listener, &args.data, config)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(ns) = &args.nameserver {
        {
            let names = NameClient::connect_as(server.node(), ns, &args.name)
                .await
                .map_err(|e| format!("cannot register with the name server at {ns}: {e}"))?;
            // Rebinds: after a crash the old bindings of this very node (same
            // node id) may still be there until its lease runs out.
            server
                .register(names)
                .await
                .map_err(|e| format!("cannot register in the name server: {e}"))?;
            tracing::info!(%ns, context = %args.name, "bound in the name server (db and data)");
        }
    }
    let metrics = args
        .net
        .start_metrics(server.node(), std::sync::Arc::new(Vec::new))
        .await?;
    {
        let mut out = std::io::stdout().lock();
        // The metrics address first: `listening` stays the line that says "ready".
        if let Some(m) = metrics {
            writeln!(out, "metrics {m}").map_err(|e| format!("cannot write to stdout: {e}"))?;
        }
        writeln!(out, "listening {}", server.addr())
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
    }
    rpc_core::shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
