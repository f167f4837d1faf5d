//! `set TABLE ROW COLUMN VALUE`: overwrites one cell.

use crate::ClientError;
use crate::cli::SetArgs;
use crate::context::Context;
use crate::output::Output;
use crate::schema::{cli_value, column_type};
use dbserver::api::{Cell, Table};

/// Sets the cell, the argument read for the column's type.
///
/// # Errors
/// Unknown table, row or column; a type mismatch (nothing written).
pub async fn run(args: SetArgs, ctx: &Context) -> Result<Output, ClientError> {
    let SetArgs { cell: at, value } = args;
    let table = ctx.table(&at.table).await?;
    let info = table.info().await?;
    let ty = column_type(&info.columns, &at.column);
    let value = cli_value(&value, ty);
    let cell = table.cell(at.row, at.column.clone()).await?;
    cell.set(value.clone()).await?;
    Ok(Output::Set {
        table: at.table,
        row: at.row,
        column: at.column,
        value,
    })
}
