//! A client-side, in-memory [`Table`]: a client builds one, wraps it in a
//! [`TableRef`] and hands it to the server, which reads it through callbacks
//! (for example [`Table::import`] pages through its `scan`). It checks rows
//! against its columns like the server does, and calls its watchers back
//! with every change, as the server's tables do.

use crate::api::TableChange;
use crate::api::{
    Cell, CellListenerRef, CellRef, Column, DbError, Table, TableInfo, TableListenerRef, TableRef,
    Value, read_all,
};
use crate::watch::Hub;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// Rows per `scan` call when this table imports from another one.
const IMPORT_PAGE: u32 = crate::api::SCAN_PAGE;

/// An in-memory table. Clones share the same rows.
#[derive(Clone, Debug)]
pub struct MemTable {
    inner: Arc<Mutex<State>>,
}

struct State {
    name: String,
    columns: Vec<Column>,
    rows: BTreeMap<u64, Vec<Value>>,
    next_row: u64,
    /// The table's key among the watchers of `hub`.
    id: Uuid,
    hub: Hub,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("name", &self.name)
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl State {
    fn check_row(&self, values: &[Value]) -> Result<(), DbError> {
        if values.len() != self.columns.len() {
            return Err(DbError::WrongColumnCount {
                table: self.name.clone(),
                expected: self.columns.len(),
                found: values.len(),
            });
        }
        for (col, v) in self.columns.iter().zip(values) {
            self.check_value(col, v)?;
        }
        Ok(())
    }

    fn check_value(&self, col: &Column, v: &Value) -> Result<(), DbError> {
        match v.value_type() {
            Some(found) if !col.ty.accepts(v) => Err(DbError::TypeMismatch {
                table: self.name.clone(),
                column: col.name.clone(),
                expected: col.ty,
                found,
            }),
            _ => Ok(()),
        }
    }

    fn column(&self, column: &str) -> Result<usize, DbError> {
        self.columns
            .iter()
            .position(|c| c.name == column)
            .ok_or_else(|| DbError::NoSuchColumn {
                table: self.name.clone(),
                column: column.to_owned(),
            })
    }

    fn row_mut(&mut self, row: u64) -> Result<&mut Vec<Value>, DbError> {
        let table = self.name.clone();
        self.rows
            .get_mut(&row)
            .ok_or(DbError::NoSuchRow { table, row })
    }

    fn insert(&mut self, values: Vec<Value>) -> u64 {
        let id = self.next_row;
        self.next_row += 1;
        self.rows.insert(id, values.clone());
        self.changed(&TableChange::Inserted { row: id, values });
        id
    }

    /// Tells the watchers.
    fn changed(&mut self, change: &TableChange) {
        self.hub.apply(self.id, &self.columns, change);
    }
}

impl MemTable {
    /// An empty table.
    pub fn new(name: impl Into<String>, columns: Vec<Column>) -> MemTable {
        MemTable {
            inner: Arc::new(Mutex::new(State {
                name: name.into(),
                columns,
                rows: BTreeMap::new(),
                next_row: 1,
                id: Uuid::new_v4(),
                hub: Hub::default(),
            })),
        }
    }

    /// A table holding `rows` (ids 1, 2, ...).
    ///
    /// # Errors
    /// When a row does not fit the columns.
    pub fn with_rows(
        name: impl Into<String>,
        columns: Vec<Column>,
        rows: Vec<Vec<Value>>,
    ) -> Result<MemTable, DbError> {
        let t = MemTable::new(name, columns);
        {
            let mut s = t.inner.lock();
            for r in &rows {
                s.check_row(r)?;
            }
            for r in rows {
                s.insert(r);
            }
        }
        Ok(t)
    }

    /// All rows, in id order.
    pub fn rows(&self) -> Vec<(u64, Vec<Value>)> {
        let s = self.inner.lock();
        s.rows.iter().map(|(k, v)| (*k, v.clone())).collect()
    }
}

fn unsupported(what: &str) -> DbError {
    DbError::Unsupported {
        what: format!("{what} on an in-memory table"),
    }
}

impl Table for MemTable {
    async fn info(&self) -> Result<TableInfo, DbError> {
        let s = self.inner.lock();
        Ok(TableInfo {
            name: s.name.clone(),
            columns: s.columns.clone(),
        })
    }

    async fn insert(&self, values: Vec<Value>) -> Result<u64, DbError> {
        let mut s = self.inner.lock();
        s.check_row(&values)?;
        Ok(s.insert(values))
    }

    async fn get_row(&self, row: u64) -> Result<Vec<Value>, DbError> {
        self.inner.lock().row_mut(row).cloned()
    }

    async fn cell(&self, row: u64, column: String) -> Result<CellRef, DbError> {
        let idx = {
            let mut s = self.inner.lock();
            let idx = s.column(&column)?;
            s.row_mut(row)?;
            idx
        };
        Ok(CellRef::new(MemCell {
            table: Arc::clone(&self.inner),
            row,
            idx,
        }))
    }

    async fn update(&self, row: u64, values: Vec<Value>) -> Result<(), DbError> {
        let mut s = self.inner.lock();
        s.check_row(&values)?;
        *s.row_mut(row)? = values.clone();
        s.changed(&TableChange::Updated { row, values });
        Ok(())
    }

    async fn update_cells(
        &self,
        row: u64,
        changes: Vec<(String, Value)>,
    ) -> Result<Vec<Value>, DbError> {
        let mut s = self.inner.lock();
        let mut values = s.row_mut(row)?.clone();
        for (column, value) in changes {
            let idx = s.column(&column)?;
            s.check_value(&s.columns[idx], &value)?;
            values[idx] = value;
        }
        *s.row_mut(row)? = values.clone();
        s.changed(&TableChange::Updated {
            row,
            values: values.clone(),
        });
        Ok(values)
    }

    async fn delete(&self, row: u64) -> Result<(), DbError> {
        let mut s = self.inner.lock();
        s.row_mut(row)?;
        s.rows.remove(&row);
        s.changed(&TableChange::Deleted { row });
        Ok(())
    }

    async fn count(&self) -> Result<u64, DbError> {
        Ok(self.inner.lock().rows.len() as u64)
    }

    async fn scan(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, Vec<Value>)>, DbError> {
        let s = self.inner.lock();
        let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(s.rows
            .range((start, std::ops::Bound::Unbounded))
            .take(limit as usize)
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    async fn watch(&self, listener: TableListenerRef) -> Result<(), DbError> {
        let mut s = self.inner.lock();
        let id = s.id;
        s.hub.watch_table(id, listener);
        Ok(())
    }

    async fn import(&self, source: TableRef) -> Result<u64, DbError> {
        let rows = read_all(&source, IMPORT_PAGE).await?;
        let mut s = self.inner.lock();
        for (_, r) in &rows {
            s.check_row(r)?;
        }
        let n = rows.len() as u64;
        for (_, r) in rows {
            s.insert(r);
        }
        Ok(n)
    }
}

/// One cell of a [`MemTable`].
struct MemCell {
    table: Arc<Mutex<State>>,
    row: u64,
    idx: usize,
}

impl MemCell {
    fn modify(&self, f: impl FnOnce(&Value) -> Result<Value, DbError>) -> Result<(), DbError> {
        let mut s = self.table.lock();
        let col = s
            .columns
            .get(self.idx)
            .cloned()
            .ok_or_else(|| DbError::Storage {
                reason: format!("column index {} out of range", self.idx),
            })?;
        let current = s
            .row_mut(self.row)?
            .get(self.idx)
            .cloned()
            .unwrap_or(Value::Null);
        let new = f(&current)?;
        s.check_value(&col, &new)?;
        if let Some(slot) = s.row_mut(self.row)?.get_mut(self.idx) {
            *slot = new.clone();
        }
        s.changed(&TableChange::CellSet {
            row: self.row,
            column: col.name,
            value: new,
        });
        Ok(())
    }
}

impl Cell for MemCell {
    async fn get(&self) -> Result<Value, DbError> {
        let mut s = self.table.lock();
        Ok(s.row_mut(self.row)?
            .get(self.idx)
            .cloned()
            .unwrap_or(Value::Null))
    }

    async fn set(&self, v: Value) -> Result<(), DbError> {
        self.modify(|_| Ok(v))
    }

    async fn compare_and_set(&self, expected: Value, new: Value) -> Result<(), DbError> {
        self.modify(|current| {
            if current.identical(&expected) {
                Ok(new)
            } else {
                Err(DbError::CasFailed {
                    current: current.clone(),
                })
            }
        })
    }

    async fn watch(&self, listener: CellListenerRef) -> Result<(), DbError> {
        let mut s = self.table.lock();
        s.row_mut(self.row)?;
        let column = s
            .columns
            .get(self.idx)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let id = s.id;
        s.hub.watch_cell((id, self.row, column), listener);
        Ok(())
    }

    async fn put_blob(&self, data: rpc_core::Blob) -> Result<u64, DbError> {
        let bytes = data.into_bytes().await?;
        let n = bytes.len() as u64;
        self.modify(|_| Ok(Value::Bytes(bytes)))?;
        Ok(n)
    }

    async fn get_blob(&self) -> Result<rpc_core::Blob, DbError> {
        match self.get().await? {
            Value::Bytes(b) => Ok(rpc_core::Blob::from_bytes(b)),
            _ => Err(unsupported("get_blob of a cell that holds no bytes")),
        }
    }
}
