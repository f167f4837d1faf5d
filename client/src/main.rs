//! `client`: command-line client of the demo database. Prints the command's
//! output on standard output and, on failure, one line on standard error;
//! exits with 0 on success, 1 when the command failed, 2 for a usage error.

use clap::Parser;
use client::cli::{Cli, Command};
use std::process::ExitCode;

/// Exit status of a usage error (as clap's own).
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: print as clap would.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("client: {}", first_line(&e.to_string()));
            return ExitCode::from(USAGE);
        }
    };
    // The demo narrates warnings too; other commands report their one error line.
    let default_filter = if matches!(cli.command, Command::Demo) {
        "warn"
    } else {
        "off"
    };
    tracing_subscriber::fmt()
        // A served call's span (target `rpc::call`, at debug) is printed as it
        // closes, with its trace id, parent span, outcome and time.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("client: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(client::run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(client::ClientError::NoNameServer) => {
            eprintln!("client: {}", client::ClientError::NoNameServer);
            ExitCode::from(USAGE)
        }
        Err(e) => {
            eprintln!("client: {}", first_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// The first non-empty line of a message (clap's errors add usage lines), without `error: `.
fn first_line(msg: &str) -> String {
    let line = msg
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("failed");
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}
