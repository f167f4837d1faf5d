//! `import-csv TABLE FILE`: streams a CSV file into a table. The file is
//! read twice, a record at a time: first every line is checked against the
//! columns (nothing is changed if one does not fit), then the server pulls
//! the rows page by page from a source table this process exports
//! ([`Table::import`] calling its `scan` back), bound meanwhile
//! in the name server as `client-<id>/import`. Memory stays at one page on
//! both sides whatever the file's size. The table is created from the
//! header line (`name` or `name:type` per column) when it does not exist,
//! and dropped again if the import fails.

use crate::ClientError;
use crate::cli::ImportCsvArgs;
use crate::commands::files::progress_bar;
use crate::context::Context;
use crate::csvfile::CsvFile;
use crate::output::Output;
use crate::schema::{describe_columns, parse_columns};
use dbserver::api::{CellRef, Database, Table, TableInfo, TableListenerRef, TableRef};
use dbserver::{Column, DbError, Value, ValueType};
use indicatif::ProgressBar;
use parking_lot::Mutex;
use std::path::Path;

/// Imports the file.
///
/// # Errors
/// The file cannot be read or is not CSV; the header does not match an
/// existing table; a field does not fit its column (all: nothing changed);
/// the server's refusal.
pub async fn run(args: ImportCsvArgs, ctx: &Context) -> Result<Output, ClientError> {
    let (_, header) = CsvFile::open(&args.file)?;
    let from_header = parse_columns(header.iter().map(String::as_str))?;
    let db = ctx.db().await?;
    let existing = match db.open_table(args.table.clone()).await {
        Ok(t) => Some(t),
        Err(DbError::NoSuchTable { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let columns = match &existing {
        Some(t) => {
            let columns = t.info().await?.columns;
            check_header(&args.table, &from_header, &columns)?;
            columns
        }
        None => from_header,
    };
    let rows = check_file(&args.file, &columns)?;
    let (table, created) = match existing {
        Some(t) => (t, false),
        None => (
            db.create_table(args.table.clone(), columns.clone()).await?,
            true,
        ),
    };
    let result = import(ctx, &table, &args, columns, rows).await;
    match result {
        Ok(rows) => Ok(Output::Imported {
            table: args.table,
            rows,
            created,
        }),
        Err(e) => {
            if created {
                // Best effort: leave the store as it was.
                let _ = db.drop_table(args.table).await;
            }
            Err(e)
        }
    }
}

/// The first pass: every record fits `columns`. Returns the number of rows.
fn check_file(path: &Path, columns: &[Column]) -> Result<u64, ClientError> {
    let (mut file, _) = CsvFile::open(path)?;
    let bar = progress_bar(file.size()).inspect(|b| b.set_message("checking"));
    let mut rows = 0u64;
    while file.next_row(columns)?.is_some() {
        rows += 1;
        if rows.is_multiple_of(4096)
            && let Some(b) = &bar
        {
            b.set_position(file.position());
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(rows)
}

/// The second pass: the server pulls the rows from a source bound in this
/// client's own context.
async fn import(
    ctx: &Context,
    table: &TableRef,
    args: &ImportCsvArgs,
    columns: Vec<Column>,
    rows: u64,
) -> Result<u64, ClientError> {
    let (file, _) = CsvFile::open(&args.file)?;
    let bar = progress_bar(file.size()).inspect(|b| b.set_message("importing"));
    let source = TableRef::new(CsvSource {
        name: args.table.clone(),
        columns,
        rows,
        state: Mutex::new(SourceState {
            file,
            last: None,
            bar: bar.clone(),
        }),
    });
    let own = ctx.own_context().await?;
    let bound = own.bind(&own.own_path("import"), &source).await;
    let result = match bound {
        Ok(_) => table.import(source).await.map_err(ClientError::from),
        Err(e) => Err(e.into()),
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    // Removes the context and the binding at once.
    let _ = own.close().await;
    result
}

/// The header must name the table's columns in order; a type, if given, must match.
fn check_header(table: &str, header: &[Column], columns: &[Column]) -> Result<(), ClientError> {
    let fits = header.len() == columns.len()
        && header
            .iter()
            .zip(columns)
            .all(|(h, c)| h.name == c.name && (h.ty == ValueType::Any || h.ty == c.ty));
    if fits {
        Ok(())
    } else {
        Err(ClientError::Input(format!(
            "csv header {} does not match table `{table}` ({})",
            describe_columns(header),
            describe_columns(columns)
        )))
    }
}

/// A CSV file as a table the server can read once, in order, through
/// `scan`: row ids are 1, 2, ... in file order.
struct CsvSource {
    name: String,
    columns: Vec<Column>,
    /// Rows found by the first pass.
    rows: u64,
    state: Mutex<SourceState>,
}

struct SourceState {
    file: CsvFile,
    /// Id of the last row handed out.
    last: Option<u64>,
    bar: Option<ProgressBar>,
}

fn read_only(what: &str) -> DbError {
    DbError::Unsupported {
        what: format!("{what} on a CSV file being imported"),
    }
}

impl Table for CsvSource {
    async fn info(&self) -> Result<TableInfo, DbError> {
        Ok(TableInfo {
            name: self.name.clone(),
            columns: self.columns.clone(),
        })
    }

    async fn count(&self) -> Result<u64, DbError> {
        Ok(self.rows)
    }

    async fn scan(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, Vec<Value>)>, DbError> {
        let mut s = self.state.lock();
        if after != s.last {
            return Err(read_only("reading out of order"));
        }
        let mut page = Vec::new();
        let mut id = s.last.unwrap_or(0);
        while page.len() < limit as usize {
            // Checked by the first pass; a file changed since fails here.
            let row = s
                .file
                .next_row(&self.columns)
                .map_err(|e| DbError::ImportFailed {
                    reason: e.to_string(),
                })?;
            let Some(row) = row else { break };
            id += 1;
            page.push((id, row));
        }
        s.last = Some(id);
        if let Some(b) = &s.bar {
            b.set_position(s.file.position());
        }
        Ok(page)
    }

    async fn insert(&self, _values: Vec<Value>) -> Result<u64, DbError> {
        Err(read_only("insert"))
    }

    async fn get_row(&self, _row: u64) -> Result<Vec<Value>, DbError> {
        Err(read_only("get_row"))
    }

    async fn cell(&self, _row: u64, _column: String) -> Result<CellRef, DbError> {
        Err(read_only("cell"))
    }

    async fn update(&self, _row: u64, _values: Vec<Value>) -> Result<(), DbError> {
        Err(read_only("update"))
    }

    async fn update_cells(
        &self,
        _row: u64,
        _changes: Vec<(String, Value)>,
    ) -> Result<Vec<Value>, DbError> {
        Err(read_only("update_cells"))
    }

    async fn delete(&self, _row: u64) -> Result<(), DbError> {
        Err(read_only("delete"))
    }

    async fn watch(&self, _listener: TableListenerRef) -> Result<(), DbError> {
        Err(read_only("watch"))
    }

    async fn import(&self, _source: TableRef) -> Result<u64, DbError> {
        Err(read_only("import"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<Column> {
        vec![
            Column::new("name", ValueType::Text),
            Column::new("born", ValueType::Int),
        ]
    }

    #[test]
    fn header_must_match_an_existing_table() {
        let plain = parse_columns(["name", "born"]).unwrap();
        assert!(check_header("t", &plain, &cols()).is_ok());
        let typed = parse_columns(["name:text", "born:float"]).unwrap();
        assert!(check_header("t", &typed, &cols()).is_err());
        let other = parse_columns(["born", "name"]).unwrap();
        assert!(check_header("t", &other, &cols()).is_err());
    }
}
