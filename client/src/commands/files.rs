//! `put-file TABLE ROW COLUMN PATH` and `get-file TABLE ROW COLUMN PATH`: a
//! file's bytes to and from a cell, through the large message proxy (read and
//! written chunk by chunk), with a progress bar when standard error is a terminal.

use crate::ClientError;
use crate::cli::FileArgs;
use crate::context::Context;
use crate::output::Output;
use dbserver::api::{Cell, Table};
use indicatif::{ProgressBar, ProgressStyle};
use rpc_core::Blob;
use std::io::IsTerminal;

/// A byte progress bar on a terminal, nothing otherwise.
pub(crate) fn progress_bar(total: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// Saves `blob` to `path` chunk by chunk, with a progress bar on a terminal;
/// returns the size. A partly written file is removed when it fails.
///
/// # Errors
/// As [`Blob::save_to`].
pub(crate) async fn save_with_progress(
    blob: Blob,
    path: &std::path::Path,
) -> Result<u64, rpc_core::RpcError> {
    let bar = progress_bar(blob.len());
    let b2 = bar.clone();
    let saved = blob
        .save_to_with_progress(path, move |done, _| {
            if let Some(b) = &b2 {
                b.set_position(done);
            }
        })
        .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    saved
}

/// Stores the file's bytes in the cell.
///
/// # Errors
/// The file cannot be read; unknown table, row or column; a column that
/// takes no bytes (nothing is written then).
pub async fn put(args: FileArgs, ctx: &Context) -> Result<Output, ClientError> {
    let FileArgs { cell: at, path } = args;
    let mut blob = Blob::from_file(&path)
        .map_err(|e| ClientError::Input(format!("cannot read {}: {e}", path.display())))?;
    let bar = progress_bar(blob.len());
    if let Some(b) = bar.clone() {
        blob = blob.with_progress(move |done, _| b.set_position(done));
    }
    let table = ctx.table(&at.table).await?;
    let cell = table
        .cell(at.row, at.column.clone())
        .await?
        .with_timeout(ctx.timeout());
    let bytes = cell.put_blob(blob).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(Output::File {
        table: at.table,
        row: at.row,
        column: at.column,
        path: path.display().to_string(),
        bytes: bytes?,
        put: true,
    })
}

/// Writes the cell's bytes to the file; a partly written file is removed.
///
/// # Errors
/// Unknown table, row or column; a cell that holds no bytes; the file
/// cannot be written.
pub async fn get(args: FileArgs, ctx: &Context) -> Result<Output, ClientError> {
    let FileArgs { cell: at, path } = args;
    let table = ctx.table(&at.table).await?;
    let cell = table
        .cell(at.row, at.column.clone())
        .await?
        .with_timeout(ctx.timeout());
    let saved = save_with_progress(cell.get_blob().await?, &path).await;
    Ok(Output::File {
        table: at.table,
        row: at.row,
        column: at.column,
        path: path.display().to_string(),
        bytes: saved?,
        put: false,
    })
}
