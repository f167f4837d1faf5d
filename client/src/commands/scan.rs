//! `scan TABLE [--limit N]`: the rows of a table, printed page by page as
//! they are read, so that neither side holds more than one page.

use crate::ClientError;
use crate::cli::ScanArgs;
use crate::context::Context;
use crate::output::{Output, RowStream};
use dbserver::api::{Pages, SCAN_PAGE, Table};

/// Prints the rows of the table.
///
/// # Errors
/// Unknown table; a failed page (the rows before it are printed);
/// standard output closed.
pub async fn run(args: ScanArgs, ctx: &Context) -> Result<Output, ClientError> {
    let table = ctx.table(&args.table).await?;
    let info = table.info().await?;
    let io = |source| ClientError::Io {
        what: "writing to standard output",
        source,
    };
    let mut out = RowStream::start(ctx.printer(), info).map_err(io)?;
    let mut pages = Pages::new(&table, SCAN_PAGE, args.limit);
    while let Some(rows) = pages.next().await? {
        out.page(&rows).map_err(io)?;
    }
    out.finish().map_err(io)?;
    Ok(Output::None)
}
