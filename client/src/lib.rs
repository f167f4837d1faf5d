//! The client side of the demo database: what the `client` binary runs.
//!
//! `client --nameserver HOST:PORT COMMAND`: finds the database through the
//! name server (`dbserver/db`, or `--db PATH`) and runs one command; `--json`
//! makes the output machine-readable. See [`cli::Command`] for the commands.
//!
//! # Layout
//! One-way layers: each module imports only those above it.
//! - [`error`]: [`ClientError`], the one error type of the client.
//! - [`schema`]: column specs and command-line values (pure).
//! - [`csvfile`]: CSV files as rows for `import-csv` (the `csv` crate).
//! - [`dynamic`]: JSON arguments and results of `call` to and from CBOR (pure).
//! - [`output`]: what commands produce (results, `bench-cells` reports,
//!   watch events) and all printing, as text or JSON.
//! - [`cli`]: the clap parser and its one subcommand enum.
//! - [`context`]: the connection every command runs with.
//! - [`commands`]: one module per subcommand, each `run(args, ctx)`.
//! - [`demo`]: the all-in-one walk-through, with an embedded name server and
//!   database server on loopback; [`run`] ties a parsed command line to
//!   all of the above.
//!
//! # Example
//! ```no_run
//! use clap::Parser;
//! # async fn demo() -> Result<(), client::ClientError> {
//! let cli = client::cli::Cli::parse_from(["client", "--nameserver", "127.0.0.1:7000", "tables"]);
//! client::run(cli).await?; // prints the tables
//! # Ok(()) }
//! ```

pub mod cli;
pub mod commands;
pub mod context;
pub mod csvfile;
pub mod demo;
pub mod dynamic;
pub mod error;
pub mod output;
pub mod schema;

pub use error::ClientError;

use cli::{Cli, Command};
use context::Context;
use output::Printer;
use std::time::Duration;

/// Runs the command `cli` asks for and prints its output.
///
/// # Errors
/// What the command fails with (the output is then not printed).
pub async fn run(cli: Cli) -> Result<(), ClientError> {
    let printer = Printer::new(cli.json);
    let print = |out: &output::Output| {
        printer.print(out).map_err(|source| ClientError::Io {
            what: "writing to standard output",
            source,
        })
    };
    match cli.command {
        Command::Demo => return demo::run(&mut std::io::stdout()).await,
        Command::Pki(pki) => return print(&commands::pki::run(pki)?),
        _ => {}
    }
    let mut config = rpc_core::Config::default();
    cli.limits.apply(&mut config);
    if let Some(dir) = &cli.tls {
        let creds =
            rpc_core::TlsCredentials::from_dir(dir).map_err(|source| ClientError::File {
                path: dir.clone(),
                source,
            })?;
        config.tls = Some(std::sync::Arc::new(creds));
    }
    let ns = cli
        .nameserver
        .filter(|a| !a.trim().is_empty())
        .ok_or(ClientError::NoNameServer)?;
    let limit = Duration::from_secs(cli.timeout);
    let connect = Context::connect(&ns, &cli.db, printer, limit, config, cli.tls.clone());
    let ctx = context::bounded(limit, connect).await?;
    // Watch and the benchmark bound their setup themselves; they run longer.
    let result = match cli.command {
        c @ (Command::Watch(_) | Command::BenchCells(_)) => commands::run(c, &ctx).await,
        c => ctx.bounded(commands::run(c, &ctx)).await,
    };
    ctx.close().await;
    print(&result?)
}
