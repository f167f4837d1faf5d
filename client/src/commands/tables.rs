//! `tables`: every table with its columns.

use crate::ClientError;
use crate::context::Context;
use crate::output::Output;
use dbserver::api::Database;

/// Lists the tables.
///
/// # Errors
/// Resolving the database, or the call.
pub async fn run((): (), ctx: &Context) -> Result<Output, ClientError> {
    Ok(Output::Tables(ctx.db().await?.list_tables().await?))
}
