//! `create-table NAME --columns a:int,b`: a new, empty table.

use crate::ClientError;
use crate::cli::CreateTableArgs;
use crate::context::Context;
use crate::output::Output;
use crate::schema::parse_columns;
use dbserver::api::{Database, Table};

/// Creates the table.
///
/// # Errors
/// [`ClientError::Input`] for bad column specs (nothing sent); the server's
/// refusal (table exists, invalid name).
pub async fn run(args: CreateTableArgs, ctx: &Context) -> Result<Output, ClientError> {
    let columns = parse_columns(args.columns.split(','))?;
    let table = ctx.db().await?.create_table(args.table, columns).await?;
    Ok(Output::Created(table.info().await?))
}
