//! `drop-table NAME`: deletes a table and its rows.

use crate::ClientError;
use crate::cli::TableArg;
use crate::context::Context;
use crate::output::Output;
use dbserver::api::Database;

/// Drops the table.
///
/// # Errors
/// [`dbserver::DbError::NoSuchTable`]; resolving the database.
pub async fn run(args: TableArg, ctx: &Context) -> Result<Output, ClientError> {
    ctx.db().await?.drop_table(args.table.clone()).await?;
    Ok(Output::Dropped { table: args.table })
}
