//! `get TABLE ROW COLUMN`: one cell's value.

use crate::ClientError;
use crate::cli::CellArgs;
use crate::context::Context;
use crate::output::Output;
use dbserver::DbError;
use dbserver::api::Table;

/// Reads the cell (through the row, so that a read never makes a cell object).
///
/// # Errors
/// Unknown table, row or column.
pub async fn run(args: CellArgs, ctx: &Context) -> Result<Output, ClientError> {
    let table = ctx.table(&args.table).await?;
    let info = table.info().await?;
    let idx = info
        .columns
        .iter()
        .position(|c| c.name == args.column)
        .ok_or_else(|| DbError::NoSuchColumn {
            table: args.table.clone(),
            column: args.column.clone(),
        })?;
    let mut values = table.get_row(args.row).await?;
    if idx >= values.len() {
        return Err(ClientError::Check(format!(
            "row {} has {} values, the table {} columns",
            args.row,
            values.len(),
            info.columns.len()
        )));
    }
    let value = values.swap_remove(idx);
    Ok(Output::Value {
        table: args.table,
        row: args.row,
        column: args.column,
        value,
    })
}
