//! `insert TABLE VALUE...`: appends a row, prints its id.

use crate::ClientError;
use crate::cli::InsertArgs;
use crate::context::Context;
use crate::output::Output;
use crate::schema::cli_value;
use dbserver::api::Table;
use dbserver::{Value, ValueType};

/// Inserts one row, each argument read for its column's type.
///
/// # Errors
/// Unknown table; wrong number of values or a type mismatch (refused by the
/// server, nothing written).
pub async fn run(args: InsertArgs, ctx: &Context) -> Result<Output, ClientError> {
    let table = ctx.table(&args.table).await?;
    let info = table.info().await?;
    let values: Vec<Value> = args
        .values
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            let ty = info.columns.get(i).map_or(ValueType::Any, |c| c.ty);
            cli_value(arg, ty)
        })
        .collect();
    let row = table.insert(values).await?;
    Ok(Output::Inserted {
        table: args.table,
        row,
    })
}
