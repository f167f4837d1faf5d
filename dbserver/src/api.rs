//! The remote interfaces of the database server, as clients see them:
//! [`Database`] -> [`Table`] -> [`Cell`], and the listener interfaces a client
//! implements to be called back ([`TableListener`], [`CellListener`]).
//!
//! Nothing here knows about the server's internals; a client depends on this
//! module (and on [`Value`], [`Column`], [`DbError`]) only. A client may also
//! implement [`Table`] itself (see [`crate::memtable::MemTable`]) and hand it to
//! the server, which then calls it back (for example [`Table::import`]).

use rpc_core::remote;
use serde::{Deserialize, Serialize};

pub use crate::error::DbError;
pub use crate::store::Column;
pub use crate::value::{Value, ValueType};

/// Rows [`read_all`] asks for per [`Table::scan`] call.
pub const SCAN_PAGE: u32 = 256;

/// Name and columns of a table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Columns in row order.
    pub columns: Vec<Column>,
}

/// One committed change of a table, as sent to a [`TableListener`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum TableChange {
    /// A row was inserted.
    Inserted {
        /// Id of the new row.
        row: u64,
        /// Its values, in column order.
        values: Vec<Value>,
    },
    /// A whole row was replaced.
    Updated {
        /// Row id.
        row: u64,
        /// The new values, in column order.
        values: Vec<Value>,
    },
    /// A row was deleted.
    Deleted {
        /// Row id.
        row: u64,
    },
    /// One cell was set (directly or by a successful compare-and-set).
    CellSet {
        /// Row id.
        row: u64,
        /// Column name.
        column: String,
        /// The new value.
        value: Value,
    },
    /// The table was dropped; no more changes follow.
    Dropped,
}

/// The database: a set of named tables.
#[remote(name = "db.Database")]
pub trait Database {
    /// Creates an empty table and returns a reference to it.
    async fn create_table(&self, name: String, columns: Vec<Column>) -> Result<TableRef, DbError>;
    /// A reference to an existing table; the same table always has the same
    /// capability, also across server restarts.
    async fn open_table(&self, name: String) -> Result<TableRef, DbError>;
    /// Deletes a table and its rows; references to it then fail with
    /// [`DbError::NoLongerExists`].
    async fn drop_table(&self, name: String) -> Result<(), DbError>;
    /// All tables, ordered by name.
    async fn list_tables(&self) -> Result<Vec<TableInfo>, DbError>;
    /// Binds this database, made by class-based creation, in the name
    /// server as `<server's context>/<name>` (kept across restarts of the
    /// server); returns that path. A database not bound within a minute of
    /// its creation is deleted.
    async fn bind_as(&self, name: String) -> Result<String, DbError>;
}

/// One table: rows of typed values, addressed by row id.
#[remote(name = "db.Table")]
pub trait Table {
    /// Name and columns.
    async fn info(&self) -> Result<TableInfo, DbError>;
    /// Appends a row; returns its id (ids grow and are never reused).
    async fn insert(&self, values: Vec<Value>) -> Result<u64, DbError>;
    /// All values of one row.
    async fn get_row(&self, row: u64) -> Result<Vec<Value>, DbError>;
    /// A reference to one cell (the row and column must exist).
    async fn cell(&self, row: u64, column: String) -> Result<CellRef, DbError>;
    /// Replaces every value of an existing row.
    async fn update(&self, row: u64, values: Vec<Value>) -> Result<(), DbError>;
    /// Sets the named cells of one row together (all or, if a column is
    /// unknown or a value does not fit, none); returns the row as it is now.
    async fn update_cells(
        &self,
        row: u64,
        changes: Vec<(String, Value)>,
    ) -> Result<Vec<Value>, DbError>;
    /// Deletes a row.
    async fn delete(&self, row: u64) -> Result<(), DbError>;
    /// Number of rows.
    async fn count(&self) -> Result<u64, DbError>;
    /// Up to `limit` rows with ids above `after` (from the start if `None`), in id order.
    async fn scan(&self, after: Option<u64>, limit: u32)
    -> Result<Vec<(u64, Vec<Value>)>, DbError>;
    /// Calls `listener` with every change committed from now on, in commit order.
    /// A listener that fails (or falls far behind) is dropped.
    async fn watch(&self, listener: TableListenerRef) -> Result<(), DbError>;
    /// Reads the rows of `source` (through its `scan`, so the source may live
    /// on the caller's node), at most as many as its `count` when the import
    /// begins, and inserts them here page by page; if a page fails, the
    /// rows already inserted are deleted again. Returns the number of rows
    /// imported. Readers may see the rows arrive while it runs.
    async fn import(&self, source: TableRef) -> Result<u64, DbError>;
}

/// One cell of a table.
#[remote(name = "db.Cell")]
pub trait Cell {
    /// The current value.
    async fn get(&self) -> Result<Value, DbError>;
    /// Overwrites the value.
    async fn set(&self, v: Value) -> Result<(), DbError>;
    /// Sets `new` only if the cell holds `expected`; otherwise fails with
    /// [`DbError::CasFailed`] carrying the current value.
    async fn compare_and_set(&self, expected: Value, new: Value) -> Result<(), DbError>;
    /// Calls `listener` with every new value of this cell from now on.
    async fn watch(&self, listener: CellListenerRef) -> Result<(), DbError>;
    /// Stores the bytes of `data` in this cell (a bytes or untyped column) and
    /// returns their size. The bytes are pulled from the caller in chunks
    /// (large message proxy), so a file-backed blob is read as it goes. In a
    /// `data` column they go into the server's data manager (persistent, on
    /// disk chunk by chunk) and the cell holds their data id.
    async fn put_blob(&self, data: rpc_core::Blob) -> Result<u64, DbError>;
    /// The bytes of this cell, as a blob the caller pulls in chunks (and can
    /// save straight to a file); for a data id, the bytes of that data,
    /// wherever it is kept. A cell holding something else is a type mismatch.
    async fn get_blob(&self) -> Result<rpc_core::Blob, DbError>;
}

/// Called back with the changes of a watched table.
#[remote(name = "db.TableListener")]
pub trait TableListener {
    /// One committed change.
    async fn changed(&self, change: TableChange) -> Result<(), DbError>;
}

/// Called back with the new values of a watched cell.
#[remote(name = "db.CellListener")]
pub trait CellListener {
    /// The cell's new value.
    async fn changed(&self, value: Value) -> Result<(), DbError>;
}

/// Reads a table page by page through [`Table::scan`], checking the paging
/// contract as it goes, so that a faulty or hostile table cannot keep the
/// reader looping: row ids must increase, and a page may not hold more rows
/// than asked for.
#[derive(Debug)]
pub struct Pages<'t> {
    table: &'t TableRef,
    page: u32,
    after: Option<u64>,
    /// Rows still wanted.
    left: u64,
    done: bool,
}

impl<'t> Pages<'t> {
    /// Pages of up to `page` rows of `table`, at most `limit` rows in all.
    pub fn new(table: &'t TableRef, page: u32, limit: Option<u64>) -> Pages<'t> {
        Pages {
            table,
            page: page.max(1),
            after: None,
            left: limit.unwrap_or(u64::MAX),
            done: false,
        }
    }

    /// The next page, or `None` after the last.
    ///
    /// # Errors
    /// What `scan` fails with; [`DbError::ImportFailed`] when the table
    /// breaks the paging contract.
    pub async fn next(&mut self) -> Result<Option<Vec<(u64, Vec<Value>)>>, DbError> {
        if self.done || self.left == 0 {
            return Ok(None);
        }
        let want = u32::try_from(self.left.min(u64::from(self.page))).unwrap_or(self.page);
        let rows = self.table.scan(self.after, want).await?;
        if rows.len() > want as usize {
            return Err(DbError::ImportFailed {
                reason: format!("asked for {want} rows, got {}", rows.len()),
            });
        }
        self.done = rows.len() < want as usize;
        for (id, _) in &rows {
            if self.after.is_some_and(|a| *id <= a) {
                return Err(DbError::ImportFailed {
                    reason: format!("row ids do not increase ({id} after {:?})", self.after),
                });
            }
            self.after = Some(*id);
        }
        self.left -= rows.len() as u64;
        Ok(Some(rows))
    }
}

/// Reads every row of `table` through [`Table::scan`], `page` rows per call.
///
/// # Errors
/// As [`Pages::next`].
pub async fn read_all(table: &TableRef, page: u32) -> Result<Vec<(u64, Vec<Value>)>, DbError> {
    let mut pages = Pages::new(table, page, None);
    let mut out = Vec::new();
    while let Some(rows) = pages.next().await? {
        out.extend(rows);
    }
    Ok(out)
}
