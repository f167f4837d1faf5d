//! `delete TABLE ROW`: deletes one row.

use crate::ClientError;
use crate::cli::RowArgs;
use crate::context::Context;
use crate::output::Output;
use dbserver::api::Table;

/// Deletes the row.
///
/// # Errors
/// Unknown table or row.
pub async fn run(args: RowArgs, ctx: &Context) -> Result<Output, ClientError> {
    ctx.table(&args.table).await?.delete(args.row).await?;
    Ok(Output::Deleted {
        table: args.table,
        row: args.row,
    })
}
