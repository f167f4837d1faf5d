//! `import-csv TABLE FILE`: reads a CSV file into a client-side
//! [`MemTable`], then asks the server to import it; the server pulls the rows
//! from this process through callbacks ([`Table::import`]). The table is
//! created from the header line (`name` or `name:type` per column) when it
//! does not exist.
//!
//! Everything is checked here before the store is touched; a table created
//! for an import that then fails is dropped again.

use crate::ClientError;
use crate::cli::ImportCsvArgs;
use crate::context::Context;
use crate::csv;
use crate::output::Output;
use crate::schema::{cli_value, describe_columns, parse_columns};
use dbserver::api::{Database, Table, TableRef};
use dbserver::memtable::MemTable;
use dbserver::{Column, DbError, Value, ValueType};

/// Imports the file.
///
/// # Errors
/// The file cannot be read or is not CSV; the header does not match an
/// existing table; a field does not fit its column (all: nothing changed);
/// the server's refusal.
pub async fn run(args: ImportCsvArgs, ctx: &Context) -> Result<Output, ClientError> {
    let text = tokio::fs::read_to_string(&args.file)
        .await
        .map_err(|source| ClientError::File {
            path: args.file.clone(),
            source,
        })?;
    let records = csv::parse(&text)?;
    let Some((header, records)) = records.split_first() else {
        return Err(ClientError::Input(format!(
            "{}: empty file, expected a header line",
            args.file.display()
        )));
    };
    let from_header = parse_columns(header.fields.iter().map(|f| f.text.as_str()))?;

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
    let rows = read_rows(&columns, records)?;
    let source = MemTable::with_rows(args.table.clone(), columns.clone(), rows)?;

    let (table, created) = match existing {
        Some(t) => (t, false),
        None => (db.create_table(args.table.clone(), columns).await?, true),
    };
    match table.import(TableRef::new(source)).await {
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
            Err(e.into())
        }
    }
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

/// The records as rows of values, each checked against its column.
fn read_rows(columns: &[Column], records: &[csv::Record]) -> Result<Vec<Vec<Value>>, ClientError> {
    let mut rows = Vec::with_capacity(records.len());
    for r in records {
        if r.fields.len() != columns.len() {
            return Err(ClientError::Input(format!(
                "csv line {}: {} fields, expected {}",
                r.line,
                r.fields.len(),
                columns.len()
            )));
        }
        let mut row = Vec::with_capacity(columns.len());
        for (f, c) in r.fields.iter().zip(columns) {
            let v = if f.text.is_empty() && !f.quoted {
                Value::Null
            } else {
                cli_value(&f.text, c.ty)
            };
            if let Some(found) = v.value_type().filter(|_| !c.ty.accepts(&v)) {
                return Err(ClientError::Input(format!(
                    "csv line {}: column `{}` holds {}, got {found} `{}`",
                    r.line, c.name, c.ty, f.text
                )));
            }
            row.push(v);
        }
        rows.push(row);
    }
    Ok(rows)
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
    fn fields_become_values_of_their_columns() {
        let recs = csv::parse("007,1815\n\"\",\n").unwrap();
        let rows = read_rows(&cols(), &recs).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Value::Text("007".into()), Value::Int(1815)],
                vec![Value::Text(String::new()), Value::Null],
            ]
        );
    }

    #[test]
    fn misfits_name_the_line() {
        let recs = csv::parse("a,1\nb,x\n").unwrap();
        let e = read_rows(&cols(), &recs).unwrap_err().to_string();
        assert!(e.starts_with("csv line 2: column `born`"), "{e}");
        let recs = csv::parse("a\n").unwrap();
        assert!(read_rows(&cols(), &recs).is_err());
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
