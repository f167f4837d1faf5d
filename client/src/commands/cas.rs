//! `cas TABLE ROW COLUMN EXPECTED NEW`: compare-and-set of one cell.

use crate::ClientError;
use crate::cli::CasArgs;
use crate::context::Context;
use crate::output::Output;
use crate::schema::{cli_value, column_type};
use dbserver::api::{Cell, Table};

/// Sets the cell to NEW if it holds EXPECTED (both read for the column's type).
///
/// # Errors
/// Unknown table, row or column; a type mismatch; [`dbserver::DbError::CasFailed`]
/// with the value the cell holds (nothing written).
pub async fn run(args: CasArgs, ctx: &Context) -> Result<Output, ClientError> {
    let CasArgs {
        cell: at,
        expected,
        new,
    } = args;
    let table = ctx.table(&at.table).await?;
    let info = table.info().await?;
    let ty = column_type(&info.columns, &at.column);
    let (expected, new) = (cli_value(&expected, ty), cli_value(&new, ty));
    let cell = table.cell(at.row, at.column.clone()).await?;
    cell.compare_and_set(expected, new.clone()).await?;
    Ok(Output::Set {
        table: at.table,
        row: at.row,
        column: at.column,
        value: new,
    })
}
