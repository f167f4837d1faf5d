//! `update TABLE ROW COL=VALUE...`: sets several cells of one row in one
//! atomic write, prints the row as it is now.

use crate::ClientError;
use crate::cli::UpdateArgs;
use crate::context::Context;
use crate::output::Output;
use crate::schema::{cli_value, column_type};
use dbserver::api::Table;

/// Updates the row, each value read for its column's type.
///
/// # Errors
/// An argument without `=`; unknown table, row or column; a type mismatch
/// (nothing written).
pub async fn run(args: UpdateArgs, ctx: &Context) -> Result<Output, ClientError> {
    let table = ctx.table(&args.at.table).await?;
    let info = table.info().await?;
    let mut changes = Vec::with_capacity(args.changes.len());
    for arg in &args.changes {
        let Some((column, value)) = arg.split_once('=') else {
            return Err(ClientError::Input(format!("`{arg}` is not COLUMN=VALUE")));
        };
        let ty = column_type(&info.columns, column);
        changes.push((column.to_owned(), cli_value(value, ty)));
    }
    let values = table.update_cells(args.at.row, changes).await?;
    Ok(Output::Rows {
        info,
        rows: vec![(args.at.row, values)],
    })
}
