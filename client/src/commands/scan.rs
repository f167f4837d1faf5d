//! `scan TABLE`: every row, read page by page.

use crate::ClientError;
use crate::cli::TableArg;
use crate::context::Context;
use crate::output::Output;
use dbserver::api::{SCAN_PAGE, Table, read_all};

/// Reads all rows of the table.
///
/// # Errors
/// Unknown table; a failed page.
pub async fn run(args: TableArg, ctx: &Context) -> Result<Output, ClientError> {
    let table = ctx.table(&args.table).await?;
    let info = table.info().await?;
    let rows = read_all(&table, SCAN_PAGE).await?;
    Ok(Output::Rows { info, rows })
}
