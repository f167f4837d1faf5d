//! The embedded, crash-safe table store. All data lives in one redb file:
//! a catalog table maps each user table's name to its [`TableMeta`], and each
//! user table keeps its rows in a redb table of its own, named after the
//! table's id so that dropping and re-creating a name never sees old rows.
//! Writes go through a committer thread that shares one redb transaction and
//! one fsync among all writes queued at the time (group commit, see
//! `commit`); a write is answered only once its transaction is durably
//! committed, so an acknowledged write survives a crash and a failed one
//! changes nothing.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

mod commit;
mod large;

pub use large::{BlobWriter, ChunkReader, OUT_OF_LINE, PendingBlob};

use commit::Committer;
use parking_lot::RwLock;
use redb::{
    Database, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::TableChange;
use crate::error::DbError;
use crate::value::{Value, ValueType};

/// File name of the database inside the store directory.
pub const DB_FILE: &str = "store.redb";

/// Bumped whenever the on-disk encoding changes incompatibly. Version 2
/// added out-of-line values (`large`); a version 1 store is upgraded in place.
const FORMAT_VERSION: u64 = 2;

/// redb's page cache, in bytes (see [`Store::open`]).
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Longest accepted table or column name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Store-wide settings; only the format version for now.
const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("meta");
/// User table name -> CBOR-encoded [`TableMeta`].
const CATALOG: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("catalog");
/// Persistent identities of the server (node id, database object id): name -> uuid.
const IDENTITY: TableDefinition<'static, &'static str, u128> = TableDefinition::new("identity");
/// Dropped table id -> CBOR-encoded [`TableMeta`] it had, so that a reference
/// to it can say "no longer exists" after a restart instead of "unknown".
const DROPPED: TableDefinition<'static, u128, &'static [u8]> = TableDefinition::new("dropped");
/// Databases made by class-based creation (kept in the main store only):
/// object id -> the name it is bound under, empty until it is bound.
const DATABASES: TableDefinition<'static, u128, &'static str> = TableDefinition::new("databases");
/// Object id of a cell reference -> CBOR-encoded [`CellAddr`].
const OBJECTS: TableDefinition<'static, u128, &'static [u8]> = TableDefinition::new("objects");
/// `"{table id}/{row}/{column}"` -> object id: the reverse of [`OBJECTS`], so
/// one cell always gets the same object id.
const OBJECT_INDEX: TableDefinition<'static, &'static str, u128> =
    TableDefinition::new("object_index");

/// Where a cell lives: the persisted target of a cell's object id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CellAddr {
    /// Id of the table ([`TableMeta::id`]).
    pub table: Uuid,
    /// Row id.
    pub row: u64,
    /// Column name.
    pub column: String,
}

/// One column of a table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Column name: non-empty, `[A-Za-z0-9_]`, unique within its table.
    pub name: String,
    /// Type every non-null value in this column must have.
    pub ty: ValueType,
}

impl Column {
    /// Builds a column from a name and a type.
    pub fn new(name: impl Into<String>, ty: ValueType) -> Column {
        Column {
            name: name.into(),
            ty,
        }
    }
}

/// What the catalog records about one table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TableMeta {
    /// Identity that survives restarts and is never reused, even for a re-created name.
    pub id: Uuid,
    /// Table name.
    pub name: String,
    /// Columns in row order.
    pub columns: Vec<Column>,
    /// Id the next inserted row will get; only ever grows.
    pub next_row: u64,
}

impl TableMeta {
    /// Position of the named column in a row, if the table has it.
    pub fn column_index(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == column)
    }

    fn rows_table_name(&self) -> String {
        rows_table_name(self.id)
    }

    fn column_or_err(&self, column: &str) -> Result<usize, DbError> {
        self.column_index(column)
            .ok_or_else(|| DbError::NoSuchColumn {
                table: self.name.clone(),
                column: column.to_owned(),
            })
    }

    fn check_value(&self, idx: usize, value: &Value) -> Result<(), DbError> {
        let Some(col) = self.columns.get(idx) else {
            return Err(corrupt(&format!(
                "column index {idx} out of range for table `{}`",
                self.name
            )));
        };
        if let Value::Blob { .. } = value {
            return Err(DbError::Unsupported {
                what: format!(
                    "writing a blob placeholder to `{}` (store bytes with put_blob)",
                    col.name
                ),
            });
        }
        match value.value_type() {
            Some(found) if !col.ty.accepts(value) => Err(DbError::TypeMismatch {
                table: self.name.clone(),
                column: col.name.clone(),
                expected: col.ty,
                found,
            }),
            _ => Ok(()),
        }
    }

    fn wrong_count(&self, found: usize) -> DbError {
        DbError::WrongColumnCount {
            table: self.name.clone(),
            expected: self.columns.len(),
            found,
        }
    }

    fn check_row(&self, row: &[Value]) -> Result<(), DbError> {
        if row.len() != self.columns.len() {
            return Err(self.wrong_count(row.len()));
        }
        row.iter()
            .enumerate()
            .try_for_each(|(idx, value)| self.check_value(idx, value))
    }

    fn no_such_row(&self, row: u64) -> DbError {
        DbError::NoSuchRow {
            table: self.name.clone(),
            row,
        }
    }
}

/// Which table an operation addresses: by name, and, when the caller holds
/// a reference to one particular table, by its id too, so that a table
/// dropped (and its name perhaps re-created) since is `NoLongerExists`
/// rather than silently another table. The check runs in the operation's
/// own transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableKey {
    name: String,
    id: Option<Uuid>,
}

impl From<&str> for TableKey {
    fn from(name: &str) -> TableKey {
        TableKey {
            name: name.to_owned(),
            id: None,
        }
    }
}

impl From<&TableMeta> for TableKey {
    fn from(meta: &TableMeta) -> TableKey {
        TableKey {
            name: meta.name.clone(),
            id: Some(meta.id),
        }
    }
}

/// Called with each committed change of a table, on the committer thread,
/// in commit order, before the write is answered. It must not block.
pub type Observer = Arc<dyn Fn(&TableMeta, &TableChange) + Send + Sync>;

/// Changes a write reports to the [`Observer`] once it is committed.
type Events = Vec<(TableMeta, TableChange)>;

/// Handle to an open store; clones share the same database and are cheap.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    /// Runs every write (group commit); dropped last, which closes the file.
    committer: Committer,
    observer: RwLock<Option<Observer>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir`, creating the directory and database file if missing.
    pub fn open(dir: &Path) -> Result<Store, DbError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Storage {
            reason: format!("cannot create {}: {e}", dir.display()),
        })?;
        // `create` opens an existing file too, and repairs it if the last
        // process died without closing it. The cache is kept small: large
        // values stream through the store chunk by chunk, and a cache the
        // size of redb's default (1 GiB) would keep them all resident.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join(DB_FILE))
            .storage()?;
        let db = Arc::new(db);
        let committer = Committer::start(Arc::clone(&db))?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                committer,
                observer: RwLock::new(None),
            }),
        };
        store.write(|txn, _| {
            // Creating the fixed tables up front lets read transactions
            // assume they exist.
            txn.open_table(CATALOG).storage()?;
            txn.open_table(IDENTITY).storage()?;
            txn.open_table(DROPPED).storage()?;
            txn.open_table(OBJECTS).storage()?;
            txn.open_table(OBJECT_INDEX).storage()?;
            txn.open_table(DATABASES).storage()?;
            txn.open_table(large::LARGE).storage()?;
            txn.open_table(large::CHUNKS).storage()?;
            let left = large::remove_pending(txn)?;
            if left > 0 {
                tracing::info!(uploads = left, "removed what interrupted uploads left");
            }
            let mut meta = txn.open_table(META).storage()?;
            let version = meta.get("format_version").storage()?.map(|v| v.value());
            match version {
                None | Some(1) => {
                    meta.insert("format_version", FORMAT_VERSION).storage()?;
                    Ok(())
                }
                Some(FORMAT_VERSION) => Ok(()),
                Some(other) => Err(DbError::Storage {
                    reason: format!(
                        "store format version {other} is not supported (expected {FORMAT_VERSION})"
                    ),
                }),
            }
        })?;
        Ok(store)
    }

    /// Installs the observer told about every committed change from now on
    /// (replacing any earlier one).
    pub fn observe(&self, observer: Observer) {
        *self.inner.observer.write() = Some(observer);
    }

    /// Write transactions committed since the store was opened: with many
    /// concurrent writers, fewer than the writes (they share commits).
    pub fn commits(&self) -> u64 {
        self.inner.committer.commits()
    }

    /// Creates an empty table and returns its catalog entry.
    pub fn create_table(&self, name: &str, columns: Vec<Column>) -> Result<TableMeta, DbError> {
        check_name(name)?;
        for (i, col) in columns.iter().enumerate() {
            check_name(&col.name)?;
            if columns[..i].iter().any(|c| c.name == col.name) {
                return Err(DbError::InvalidName {
                    name: col.name.clone(),
                    reason: "duplicate column name".to_owned(),
                });
            }
        }
        let name = name.to_owned();
        self.write(move |txn, _| {
            let mut catalog = txn.open_table(CATALOG).storage()?;
            if catalog.get(name.as_str()).storage()?.is_some() {
                return Err(DbError::TableExists { table: name });
            }
            let meta = TableMeta {
                id: Uuid::new_v4(),
                name,
                columns,
                next_row: 1,
            };
            catalog
                .insert(meta.name.as_str(), encode(&meta)?.as_slice())
                .storage()?;
            // Created now so reads of an empty table find it.
            let rows_name = meta.rows_table_name();
            txn.open_table(rows_def(&rows_name)).storage()?;
            Ok(meta)
        })
    }

    /// Deletes a table and all its rows.
    pub fn drop_table(&self, table: impl Into<TableKey>) -> Result<(), DbError> {
        let key = table.into();
        self.write(move |txn, events| {
            let mut catalog = txn.open_table(CATALOG).storage()?;
            let meta = lookup(&catalog, &key)?;
            catalog.remove(meta.name.as_str()).storage()?;
            let rows_name = meta.rows_table_name();
            txn.delete_table(rows_def(&rows_name)).storage()?;
            large::free_table(txn, meta.id)?;
            txn.open_table(DROPPED)
                .storage()?
                .insert(meta.id.as_u128(), encode(&meta)?.as_slice())
                .storage()?;
            events.push((meta, TableChange::Dropped));
            Ok(())
        })
    }

    /// All tables, ordered by name.
    pub fn list_tables(&self) -> Result<Vec<TableMeta>, DbError> {
        self.read(|txn| {
            let catalog = txn.open_table(CATALOG).storage()?;
            let mut out = Vec::new();
            for entry in catalog.iter().storage()? {
                let (_, bytes) = entry.storage()?;
                out.push(decode(bytes.value())?);
            }
            Ok(out)
        })
    }

    /// The catalog entry of the table (failing if a table known by id is gone).
    pub fn table(&self, table: impl Into<TableKey>) -> Result<TableMeta, DbError> {
        let key = table.into();
        self.read(|txn| lookup(&txn.open_table(CATALOG).storage()?, &key))
    }

    /// The catalog entry of the table with this id, if it still exists.
    pub fn table_by_id(&self, id: Uuid) -> Result<Option<TableMeta>, DbError> {
        // A linear scan: catalogs are small, and a second index would be one
        // more structure to keep consistent.
        Ok(self.list_tables()?.into_iter().find(|m| m.id == id))
    }

    /// Appends a row and returns its id; ids increase and are never reused.
    pub fn insert(
        &self,
        table: impl Into<TableKey>,
        row: impl Into<Vec<Value>>,
    ) -> Result<u64, DbError> {
        let row = row.into();
        Ok(self
            .insert_many(table, vec![row])?
            .first()
            .copied()
            .unwrap_or(0))
    }

    /// All values of one row, in column order.
    pub fn get_row(&self, table: impl Into<TableKey>, row: u64) -> Result<Vec<Value>, DbError> {
        let key = table.into();
        self.read(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let rows_name = meta.rows_table_name();
            let rows = txn.open_table(rows_def(&rows_name)).storage()?;
            read_row(&rows, &meta, row)
        })
    }

    /// The value of one cell.
    pub fn get_cell(
        &self,
        table: impl Into<TableKey>,
        row: u64,
        column: &str,
    ) -> Result<Value, DbError> {
        let key = table.into();
        self.read(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let idx = meta.column_or_err(column)?;
            let rows_name = meta.rows_table_name();
            let rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let values = read_row(&rows, &meta, row)?;
            take_cell(values, idx)
        })
    }

    /// Overwrites one cell.
    pub fn set_cell(
        &self,
        table: impl Into<TableKey>,
        row: u64,
        column: &str,
        value: Value,
    ) -> Result<(), DbError> {
        self.modify_cell(table, row, column, |_| Ok(value))
    }

    /// Sets a cell to `new` only if it currently holds `expected`; otherwise fails with the current value.
    pub fn compare_and_set(
        &self,
        table: impl Into<TableKey>,
        row: u64,
        column: &str,
        expected: &Value,
        new: Value,
    ) -> Result<(), DbError> {
        if let Value::Blob { .. } = expected {
            return Err(DbError::Unsupported {
                what: "comparing out-of-line bytes (a blob placeholder as the expected value)"
                    .into(),
            });
        }
        let expected = expected.clone();
        self.modify_cell(table, row, column, move |current| {
            if current.identical(&expected) {
                Ok(new)
            } else {
                Err(DbError::CasFailed {
                    current: current.clone(),
                })
            }
        })
    }

    /// Replaces every value of an existing row. A [`Value::Blob`] the cell
    /// already holds (as read) leaves its out-of-line bytes as they are.
    pub fn update_row(
        &self,
        table: impl Into<TableKey>,
        row: u64,
        values: impl Into<Vec<Value>>,
    ) -> Result<(), DbError> {
        let key = table.into();
        let values = values.into();
        self.write(move |txn, events| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let old = read_row(&rows, &meta, row)?;
            if values.len() != meta.columns.len() {
                return Err(meta.wrong_count(values.len()));
            }
            let kept = |idx: usize, v: &Value| {
                matches!(v, Value::Blob { .. }) && old.get(idx).is_some_and(|o| o == v)
            };
            for (idx, v) in values.iter().enumerate() {
                if !kept(idx, v) {
                    meta.check_value(idx, v)?;
                }
            }
            let mut stored = Vec::with_capacity(values.len());
            for (idx, v) in values.into_iter().enumerate() {
                stored.push(if kept(idx, &v) {
                    v
                } else {
                    large::put_cell(txn, meta.id, row, idx, old.get(idx), v)?
                });
            }
            rows.insert(row, encode(&stored)?.as_slice()).storage()?;
            drop(rows);
            events.push((
                meta,
                TableChange::Updated {
                    row,
                    values: stored,
                },
            ));
            Ok(())
        })
    }

    /// Sets several cells of one row at once: all of them or, if any column
    /// is unknown or any value does not fit, none.
    pub fn update_cells(
        &self,
        table: impl Into<TableKey>,
        row: u64,
        changes: Vec<(String, Value)>,
    ) -> Result<Vec<Value>, DbError> {
        let key = table.into();
        self.write(move |txn, events| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let mut values = read_row(&rows, &meta, row)?;
            let mut checked = Vec::with_capacity(changes.len());
            for (column, value) in changes {
                let idx = meta.column_or_err(&column)?;
                meta.check_value(idx, &value)?;
                checked.push((idx, value));
            }
            for (idx, value) in checked {
                let slot = values
                    .get_mut(idx)
                    .ok_or_else(|| corrupt(&format!("row {row} is too short")))?;
                *slot = large::put_cell(txn, meta.id, row, idx, Some(slot), value)?;
            }
            rows.insert(row, encode(&values)?.as_slice()).storage()?;
            drop(rows);
            events.push((
                meta,
                TableChange::Updated {
                    row,
                    values: values.clone(),
                },
            ));
            Ok(values)
        })
    }

    /// Deletes one row; its id is not reused.
    pub fn delete_row(&self, table: impl Into<TableKey>, row: u64) -> Result<(), DbError> {
        let key = table.into();
        self.write(move |txn, events| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let old = read_row(&rows, &meta, row)?;
            rows.remove(row).storage()?;
            drop(rows);
            large::free_row(txn, meta.id, row, &old)?;
            events.push((meta, TableChange::Deleted { row }));
            Ok(())
        })
    }

    /// Deletes every row with an id in `ranges` that still exists (an
    /// import taking back what it inserted); returns how many went.
    pub fn delete_rows(
        &self,
        table: impl Into<TableKey>,
        ranges: Vec<std::ops::RangeInclusive<u64>>,
    ) -> Result<u64, DbError> {
        let key = table.into();
        self.write(move |txn, events| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let mut gone = Vec::new();
            for range in ranges {
                let mut doomed = Vec::new();
                for entry in rows.range(range).storage()? {
                    let (id, bytes) = entry.storage()?;
                    doomed.push((id.value(), decode_row(&meta, bytes.value())?));
                }
                for (id, values) in doomed {
                    rows.remove(id).storage()?;
                    gone.push((id, values));
                }
            }
            drop(rows);
            let n = gone.len() as u64;
            for (row, values) in gone {
                large::free_row(txn, meta.id, row, &values)?;
                events.push((meta.clone(), TableChange::Deleted { row }));
            }
            Ok(n)
        })
    }

    /// Number of rows in the table.
    pub fn count(&self, table: impl Into<TableKey>) -> Result<u64, DbError> {
        let key = table.into();
        self.read(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let rows_name = meta.rows_table_name();
            txn.open_table(rows_def(&rows_name))
                .storage()?
                .len()
                .storage()
        })
    }

    /// Up to `limit` rows with ids greater than `after` (from the start if `None`), in id order.
    pub fn scan(
        &self,
        table: impl Into<TableKey>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<Value>)>, DbError> {
        let key = table.into();
        self.read(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let rows_name = meta.rows_table_name();
            let rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut out = Vec::new();
            for entry in rows
                .range::<u64>((start, Bound::Unbounded))
                .storage()?
                .take(limit)
            {
                let (id, bytes) = entry.storage()?;
                out.push((id.value(), decode_row(&meta, bytes.value())?));
            }
            Ok(out)
        })
    }

    /// Appends several rows in one transaction: either all of them are
    /// inserted (ids returned in order) or, if any row is rejected, none.
    pub fn insert_many(
        &self,
        table: impl Into<TableKey>,
        rows: Vec<Vec<Value>>,
    ) -> Result<Vec<u64>, DbError> {
        let key = table.into();
        self.write(move |txn, events| {
            let mut catalog = txn.open_table(CATALOG).storage()?;
            let mut meta = lookup(&catalog, &key)?;
            // Every row is checked before any is written (see `commit`).
            for row in &rows {
                meta.check_row(row)?;
            }
            let first = meta.next_row;
            meta.next_row =
                first
                    .checked_add(rows.len() as u64)
                    .ok_or_else(|| DbError::Storage {
                        reason: format!("row ids of table `{}` are exhausted", meta.name),
                    })?;
            catalog
                .insert(meta.name.as_str(), encode(&meta)?.as_slice())
                .storage()?;
            let rows_name = meta.rows_table_name();
            let mut stored = txn.open_table(rows_def(&rows_name)).storage()?;
            let ids: Vec<u64> = (first..meta.next_row).collect();
            for (id, values) in ids.iter().zip(rows) {
                let mut kept = Vec::with_capacity(values.len());
                for (idx, v) in values.into_iter().enumerate() {
                    kept.push(large::put_cell(txn, meta.id, *id, idx, None, v)?);
                }
                stored.insert(*id, encode(&kept)?.as_slice()).storage()?;
                events.push((
                    meta.clone(),
                    TableChange::Inserted {
                        row: *id,
                        values: kept,
                    },
                ));
            }
            drop(stored);
            Ok(ids)
        })
    }

    /// A writer that streams a large value into the store (see
    /// [`rpc_core::Blob::save_into`]); once it finished, [`Store::link_blob`]
    /// puts the value into a cell. Dropped unfinished, it deletes what it wrote.
    pub fn blob_writer(&self) -> BlobWriter {
        BlobWriter::new(self.clone())
    }

    /// Puts the complete `blob` of `size` bytes into a cell (a bytes or
    /// untyped column), freeing what the cell held.
    ///
    /// # Errors
    /// Unknown table, row or column; a column that takes no bytes; a blob
    /// that is not pending (never written, or linked already). The blob is
    /// left pending then: see [`Store::discard_blob`].
    pub fn link_blob(
        &self,
        table: impl Into<TableKey>,
        row: u64,
        column: &str,
        blob: PendingBlob,
        size: u64,
    ) -> Result<(), DbError> {
        let key = table.into();
        let column = column.to_owned();
        self.write(move |txn, events| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let idx = meta.column_or_err(&column)?;
            meta.check_value(idx, &Value::Bytes(Vec::new()))?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let mut values = read_row(&rows, &meta, row)?;
            let pending = txn
                .open_table(large::PENDING)
                .storage()?
                .get(blob.0)
                .storage()?
                .is_some();
            if !pending && size > 0 {
                return Err(DbError::Storage {
                    reason: "the uploaded value is gone (never written or already used)".into(),
                });
            }
            large::adopt(txn, blob.0)?;
            let slot = values
                .get_mut(idx)
                .ok_or_else(|| corrupt(&format!("row {row} of `{}` is too short", meta.name)))?;
            if matches!(slot, Value::Blob { .. }) {
                large::free_cell(txn, meta.id, row, idx)?;
            }
            let value = large::link(txn, meta.id, row, idx, large::BlobId { id: blob.0, size })?;
            *slot = value.clone();
            rows.insert(row, encode(&values)?.as_slice()).storage()?;
            drop(rows);
            events.push((meta, TableChange::CellSet { row, column, value }));
            Ok(())
        })
    }

    /// Deletes a pending blob that will not be linked.
    pub fn discard_blob(&self, blob: PendingBlob) -> Result<(), DbError> {
        self.write_job(false, move |txn, _| large::discard(txn, blob.0))
    }

    /// The value of one cell and, if its bytes are kept out of line, a
    /// reader of them from the same snapshot.
    pub fn cell_bytes(
        &self,
        table: impl Into<TableKey>,
        row: u64,
        column: &str,
    ) -> Result<(Value, Option<ChunkReader>), DbError> {
        let key = table.into();
        self.read(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let idx = meta.column_or_err(column)?;
            let rows_name = meta.rows_table_name();
            let rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let value = take_cell(read_row(&rows, &meta, row)?, idx)?;
            let reader = match &value {
                Value::Blob { .. } => {
                    let blob = large::locate(txn, meta.id, row, idx)?
                        .ok_or_else(|| corrupt("an out-of-line value has no chunks"))?;
                    Some(ChunkReader::open(txn, blob)?)
                }
                _ => None,
            };
            Ok((value, reader))
        })
    }

    /// Records a new database made by class-based creation, not named yet.
    pub fn add_database(&self, id: Uuid) -> Result<(), DbError> {
        self.write(move |txn, _| {
            txn.open_table(DATABASES)
                .storage()?
                .insert(id.as_u128(), "")
                .storage()?;
            Ok(())
        })
    }

    /// Names a database recorded by [`Store::add_database`].
    ///
    /// # Errors
    /// [`DbError::Unsupported`] when it has a name already or another
    /// database has this one.
    pub fn name_database(&self, id: Uuid, name: &str) -> Result<(), DbError> {
        let name = name.to_owned();
        self.write(move |txn, _| {
            let mut t = txn.open_table(DATABASES).storage()?;
            for entry in t.iter().storage()? {
                let (other, n) = entry.storage()?;
                if n.value() == name && other.value() != id.as_u128() {
                    return Err(DbError::Unsupported {
                        what: format!("naming a second database `{name}`"),
                    });
                }
            }
            let current = t.get(id.as_u128()).storage()?.map(|v| v.value().to_owned());
            match current.as_deref() {
                Some("") => {}
                Some(n) if n == name => return Ok(()),
                Some(n) => {
                    return Err(DbError::Unsupported {
                        what: format!("renaming database `{n}`"),
                    });
                }
                None => {
                    return Err(DbError::Storage {
                        reason: format!("database {id} is not recorded"),
                    });
                }
            }
            t.insert(id.as_u128(), name.as_str()).storage()?;
            Ok(())
        })
    }

    /// Forgets a database recorded by [`Store::add_database`].
    pub fn remove_database(&self, id: Uuid) -> Result<(), DbError> {
        self.write(move |txn, _| {
            txn.open_table(DATABASES)
                .storage()?
                .remove(id.as_u128())
                .storage()?;
            Ok(())
        })
    }

    /// The databases recorded, with their names (empty: never named).
    pub fn databases(&self) -> Result<Vec<(Uuid, String)>, DbError> {
        self.read(|txn| {
            let t = txn.open_table(DATABASES).storage()?;
            let mut out = Vec::new();
            for entry in t.iter().storage()? {
                let (id, name) = entry.storage()?;
                out.push((Uuid::from_u128(id.value()), name.value().to_owned()));
            }
            Ok(out)
        })
    }

    /// The persistent identity called `key`, made up (random) and stored the
    /// first time it is asked for.
    pub fn identity(&self, key: &str) -> Result<Uuid, DbError> {
        let found = self.read(|txn| {
            let t = txn.open_table(IDENTITY).storage()?;
            Ok(t.get(key).storage()?.map(|v| v.value()))
        })?;
        if let Some(id) = found {
            return Ok(Uuid::from_u128(id));
        }
        let key = key.to_owned();
        self.write(move |txn, _| {
            let mut t = txn.open_table(IDENTITY).storage()?;
            let existing = t.get(key.as_str()).storage()?.map(|v| v.value());
            let id = match existing {
                Some(id) => id,
                None => {
                    let id = Uuid::new_v4().as_u128();
                    t.insert(key.as_str(), id).storage()?;
                    id
                }
            };
            Ok(Uuid::from_u128(id))
        })
    }

    /// The catalog entry a dropped table had, if `id` names a dropped table.
    pub fn dropped_table(&self, id: Uuid) -> Result<Option<TableMeta>, DbError> {
        self.read(|txn| {
            let t = txn.open_table(DROPPED).storage()?;
            t.get(id.as_u128())
                .storage()?
                .map(|v| decode(v.value()))
                .transpose()
        })
    }

    /// The object id of the cell at `addr`: random, made and stored the first
    /// time it is asked for, the same ever after.
    pub fn cell_object_id(&self, addr: &CellAddr) -> Result<Uuid, DbError> {
        let key = format!("{}/{}/{}", addr.table.simple(), addr.row, addr.column);
        let found = self.read(|txn| {
            let t = txn.open_table(OBJECT_INDEX).storage()?;
            Ok(t.get(key.as_str()).storage()?.map(|v| v.value()))
        })?;
        if let Some(id) = found {
            return Ok(Uuid::from_u128(id));
        }
        let addr = encode(addr)?;
        self.write(move |txn, _| {
            let mut index = txn.open_table(OBJECT_INDEX).storage()?;
            let existing = index.get(key.as_str()).storage()?.map(|v| v.value());
            if let Some(id) = existing {
                return Ok(Uuid::from_u128(id));
            }
            let id = Uuid::new_v4().as_u128();
            index.insert(key.as_str(), id).storage()?;
            txn.open_table(OBJECTS)
                .storage()?
                .insert(id, addr.as_slice())
                .storage()?;
            Ok(Uuid::from_u128(id))
        })
    }

    /// The cell an object id made by [`Store::cell_object_id`] names.
    pub fn cell_object(&self, id: Uuid) -> Result<Option<CellAddr>, DbError> {
        self.read(|txn| {
            let t = txn.open_table(OBJECTS).storage()?;
            t.get(id.as_u128())
                .storage()?
                .map(|v| decode(v.value()))
                .transpose()
        })
    }

    /// Read-modify-write of one cell in a single transaction, so the
    /// closure sees exactly the value it replaces.
    fn modify_cell(
        &self,
        table: impl Into<TableKey>,
        row: u64,
        column: &str,
        f: impl FnOnce(&Value) -> Result<Value, DbError> + Send + 'static,
    ) -> Result<(), DbError> {
        let key = table.into();
        let column = column.to_owned();
        self.write(move |txn, events| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, &key)?;
            let idx = meta.column_or_err(&column)?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let mut values = read_row(&rows, &meta, row)?;
            let slot = values
                .get_mut(idx)
                .ok_or_else(|| corrupt(&format!("row {row} of `{}` is too short", meta.name)))?;
            let new = f(slot)?;
            meta.check_value(idx, &new)?;
            let new = large::put_cell(txn, meta.id, row, idx, Some(slot), new)?;
            *slot = new.clone();
            rows.insert(row, encode(&values)?.as_slice()).storage()?;
            drop(rows);
            events.push((
                meta,
                TableChange::CellSet {
                    row,
                    column,
                    value: new,
                },
            ));
            Ok(())
        })
    }

    /// Runs `f` as one job of the committer (see [`commit`]) and waits until
    /// its batch is durably committed; the changes `f` reports go to the
    /// observer then, in commit order. If `f` fails, nothing it did is
    /// committed: it must check everything before it writes anything.
    fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction, &mut Events) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        self.write_job(true, f)
    }

    /// [`Store::write`], durable or not: a write that is not durable is on
    /// disk only once a later durable write of the store is answered.
    fn write_job<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&WriteTransaction, &mut Events) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T, DbError>>(1);
        let observer = self.inner.observer.read().clone();
        let run = move |txn: Result<&WriteTransaction, DbError>| {
            let mut events = Events::new();
            let r = txn.and_then(|txn| f(txn, &mut events));
            let poisoned = matches!(r, Err(DbError::Storage { .. }));
            let done: commit::Done = Box::new(move |committed| {
                let answer = match (r, committed) {
                    (Ok(v), Ok(())) => {
                        if let Some(o) = &observer {
                            for (meta, change) in &events {
                                o(meta, change);
                            }
                        }
                        Ok(v)
                    }
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                };
                let _ = tx.send(answer);
            });
            commit::Ran { done, poisoned }
        };
        self.inner.committer.submit(commit::Job {
            run: Box::new(run),
            durable,
        })?;
        rx.recv().map_err(|_| DbError::Storage {
            reason: "the store's committer stopped".into(),
        })?
    }

    /// Queues `f` as a write nobody waits for (clean-up that may run in a
    /// destructor); a failure is logged.
    fn forget_job(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(), DbError> + Send + 'static,
    ) {
        let run = move |txn: Result<&WriteTransaction, DbError>| {
            let r = txn.and_then(f);
            let poisoned = matches!(r, Err(DbError::Storage { .. }));
            let done: commit::Done = Box::new(move |committed| {
                if let Err(e) = r.and(committed) {
                    tracing::warn!(error = %e, "a clean-up write failed");
                }
            });
            commit::Ran { done, poisoned }
        };
        let _ = self.inner.committer.submit(commit::Job {
            run: Box::new(run),
            durable: false,
        });
    }

    /// Chunk rows and pending uploads in the store (tests check that nothing leaks).
    #[cfg(test)]
    #[allow(clippy::expect_used)] // test code
    fn large_rows(&self) -> (u64, u64) {
        self.read(|txn| {
            let chunks = txn.open_table(large::CHUNKS).storage()?.len().storage()?;
            let pending = match txn.open_table(large::PENDING) {
                Ok(t) => t.len().storage()?,
                Err(redb::TableError::TableDoesNotExist(_)) => 0,
                Err(e) => return Err(e).storage(),
            };
            Ok((chunks, pending))
        })
        .expect("the store can be read")
    }

    /// Runs `f` against one consistent snapshot.
    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let txn = self.inner.db.begin_read().storage()?;
        f(&txn)
    }
}

/// Maps any redb error into [`DbError::Storage`].
trait StorageExt<T> {
    fn storage(self) -> Result<T, DbError>;
}

impl<T, E: Into<redb::Error>> StorageExt<T> for Result<T, E> {
    fn storage(self) -> Result<T, DbError> {
        self.map_err(|e| DbError::Storage {
            reason: e.into().to_string(),
        })
    }
}

fn corrupt(reason: &str) -> DbError {
    DbError::Storage {
        reason: format!("corrupt store: {reason}"),
    }
}

fn rows_table_name(id: Uuid) -> String {
    format!("rows_{}", id.simple())
}

fn rows_def(name: &str) -> TableDefinition<'_, u64, &'static [u8]> {
    TableDefinition::new(name)
}

fn check_name(name: &str) -> Result<(), DbError> {
    let reason = if name.is_empty() {
        "must not be empty".to_owned()
    } else if name.len() > MAX_NAME_LEN {
        format!("longer than {MAX_NAME_LEN} bytes")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        "may only contain ASCII letters, digits and `_`".to_owned()
    } else {
        return Ok(());
    };
    Err(DbError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

fn lookup(
    catalog: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &TableKey,
) -> Result<TableMeta, DbError> {
    let gone = || DbError::NoLongerExists {
        table: key.name.clone(),
    };
    match catalog.get(key.name.as_str()).storage()? {
        Some(bytes) => {
            let meta: TableMeta = decode(bytes.value())?;
            match key.id {
                Some(id) if id != meta.id => Err(gone()),
                _ => Ok(meta),
            }
        }
        None if key.id.is_some() => Err(gone()),
        None => Err(DbError::NoSuchTable {
            table: key.name.clone(),
        }),
    }
}

fn read_row(
    rows: &impl ReadableTable<u64, &'static [u8]>,
    meta: &TableMeta,
    row: u64,
) -> Result<Vec<Value>, DbError> {
    match rows.get(row).storage()? {
        Some(bytes) => decode_row(meta, bytes.value()),
        None => Err(meta.no_such_row(row)),
    }
}

fn decode_row(meta: &TableMeta, bytes: &[u8]) -> Result<Vec<Value>, DbError> {
    let values: Vec<Value> = decode(bytes)?;
    if values.len() != meta.columns.len() {
        return Err(corrupt(&format!(
            "a row of `{}` has {} values for {} columns",
            meta.name,
            values.len(),
            meta.columns.len()
        )));
    }
    Ok(values)
}

fn take_cell(values: Vec<Value>, idx: usize) -> Result<Value, DbError> {
    values
        .into_iter()
        .nth(idx)
        .ok_or_else(|| corrupt(&format!("row has no column {idx}")))
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, DbError> {
    let mut buf = Vec::new();
    ciborium::into_writer(value, &mut buf).map_err(|e| DbError::Storage {
        reason: format!("cannot encode: {e}"),
    })?;
    Ok(buf)
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DbError> {
    ciborium::from_reader(bytes).map_err(|e| corrupt(&format!("cannot decode: {e}")))
}

#[cfg(test)]
mod tests;
