//! The embedded, crash-safe table store. All data lives in one redb file:
//! a catalog table maps each user table's name to its [`TableMeta`], and each
//! user table keeps its rows in a redb table of its own, named after the
//! table's id so that dropping and re-creating a name never sees old rows.
//! Every write is a single redb write transaction committed with immediate
//! durability, so an acknowledged write survives a crash and a failed one
//! changes nothing.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use redb::{
    Database, Durability, ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DbError;
use crate::value::{Value, ValueType};

/// File name of the database inside the store directory.
pub const DB_FILE: &str = "store.redb";

/// Bumped whenever the on-disk encoding changes incompatibly.
const FORMAT_VERSION: u64 = 1;

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

    fn check_row(&self, row: &[Value]) -> Result<(), DbError> {
        if row.len() != self.columns.len() {
            return Err(DbError::WrongColumnCount {
                table: self.name.clone(),
                expected: self.columns.len(),
                found: row.len(),
            });
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

/// Handle to an open store; clones share the same database and are cheap.
#[derive(Clone, Debug)]
pub struct Store {
    db: Arc<Database>,
}

impl Store {
    /// Opens the store in `dir`, creating the directory and database file if missing.
    pub fn open(dir: &Path) -> Result<Store, DbError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Storage {
            reason: format!("cannot create {}: {e}", dir.display()),
        })?;
        // `create` opens an existing file too, and repairs it if the last
        // process died without closing it.
        let db = Database::create(dir.join(DB_FILE)).storage()?;
        let store = Store { db: Arc::new(db) };
        store.write(|txn| {
            // Creating the fixed tables up front lets read transactions
            // assume they exist.
            txn.open_table(CATALOG).storage()?;
            txn.open_table(IDENTITY).storage()?;
            txn.open_table(DROPPED).storage()?;
            txn.open_table(OBJECTS).storage()?;
            txn.open_table(OBJECT_INDEX).storage()?;
            let mut meta = txn.open_table(META).storage()?;
            let version = meta.get("format_version").storage()?.map(|v| v.value());
            match version {
                None => {
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
        self.write(|txn| {
            let mut catalog = txn.open_table(CATALOG).storage()?;
            if catalog.get(name).storage()?.is_some() {
                return Err(DbError::TableExists {
                    table: name.to_owned(),
                });
            }
            let meta = TableMeta {
                id: Uuid::new_v4(),
                name: name.to_owned(),
                columns,
                next_row: 1,
            };
            catalog.insert(name, encode(&meta)?.as_slice()).storage()?;
            // Created now so reads of an empty table find it.
            let rows_name = meta.rows_table_name();
            txn.open_table(rows_def(&rows_name)).storage()?;
            Ok(meta)
        })
    }

    /// Deletes a table and all its rows.
    pub fn drop_table(&self, name: &str) -> Result<(), DbError> {
        self.write(|txn| {
            let mut catalog = txn.open_table(CATALOG).storage()?;
            let meta = lookup(&catalog, name)?;
            catalog.remove(name).storage()?;
            let rows_name = meta.rows_table_name();
            txn.delete_table(rows_def(&rows_name)).storage()?;
            txn.open_table(DROPPED)
                .storage()?
                .insert(meta.id.as_u128(), encode(&meta)?.as_slice())
                .storage()?;
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

    /// The catalog entry of the named table.
    pub fn table(&self, name: &str) -> Result<TableMeta, DbError> {
        self.read(|txn| lookup(&txn.open_table(CATALOG).storage()?, name))
    }

    /// The catalog entry of the table with this id, if it still exists.
    pub fn table_by_id(&self, id: Uuid) -> Result<Option<TableMeta>, DbError> {
        // A linear scan: catalogs are small, and a second index would be one
        // more structure to keep consistent.
        Ok(self.list_tables()?.into_iter().find(|m| m.id == id))
    }

    /// Appends a row and returns its id; ids increase and are never reused.
    pub fn insert(&self, table: &str, row: &[Value]) -> Result<u64, DbError> {
        self.write(|txn| {
            let mut catalog = txn.open_table(CATALOG).storage()?;
            let mut meta = lookup(&catalog, table)?;
            meta.check_row(row)?;
            let id = meta.next_row;
            meta.next_row = id.checked_add(1).ok_or_else(|| DbError::Storage {
                reason: format!("row ids of table `{table}` are exhausted"),
            })?;
            catalog.insert(table, encode(&meta)?.as_slice()).storage()?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            rows.insert(id, encode(row)?.as_slice()).storage()?;
            Ok(id)
        })
    }

    /// All values of one row, in column order.
    pub fn get_row(&self, table: &str, row: u64) -> Result<Vec<Value>, DbError> {
        self.read(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, table)?;
            let rows_name = meta.rows_table_name();
            let rows = txn.open_table(rows_def(&rows_name)).storage()?;
            read_row(&rows, &meta, row)
        })
    }

    /// The value of one cell.
    pub fn get_cell(&self, table: &str, row: u64, column: &str) -> Result<Value, DbError> {
        self.read(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, table)?;
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
        table: &str,
        row: u64,
        column: &str,
        value: Value,
    ) -> Result<(), DbError> {
        self.modify_cell(table, row, column, |_| Ok(value))
    }

    /// Sets a cell to `new` only if it currently holds `expected`; otherwise fails with the current value.
    pub fn compare_and_set(
        &self,
        table: &str,
        row: u64,
        column: &str,
        expected: &Value,
        new: Value,
    ) -> Result<(), DbError> {
        self.modify_cell(table, row, column, |current| {
            if current.identical(expected) {
                Ok(new)
            } else {
                Err(DbError::CasFailed {
                    current: current.clone(),
                })
            }
        })
    }

    /// Replaces every value of an existing row.
    pub fn update_row(&self, table: &str, row: u64, values: &[Value]) -> Result<(), DbError> {
        self.write(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, table)?;
            meta.check_row(values)?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            if rows.get(row).storage()?.is_none() {
                return Err(meta.no_such_row(row));
            }
            rows.insert(row, encode(values)?.as_slice()).storage()?;
            Ok(())
        })
    }

    /// Deletes one row; its id is not reused.
    pub fn delete_row(&self, table: &str, row: u64) -> Result<(), DbError> {
        self.write(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, table)?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            if rows.remove(row).storage()?.is_none() {
                return Err(meta.no_such_row(row));
            }
            Ok(())
        })
    }

    /// Number of rows in the table.
    pub fn count(&self, table: &str) -> Result<u64, DbError> {
        self.read(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, table)?;
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
        table: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<Value>)>, DbError> {
        self.read(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, table)?;
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
    pub fn insert_many(&self, table: &str, rows: &[Vec<Value>]) -> Result<Vec<u64>, DbError> {
        self.write(|txn| {
            let mut catalog = txn.open_table(CATALOG).storage()?;
            let mut meta = lookup(&catalog, table)?;
            let rows_name = meta.rows_table_name();
            let mut stored = txn.open_table(rows_def(&rows_name)).storage()?;
            let mut ids = Vec::with_capacity(rows.len());
            for row in rows {
                meta.check_row(row)?;
                let id = meta.next_row;
                meta.next_row = id.checked_add(1).ok_or_else(|| DbError::Storage {
                    reason: format!("row ids of table `{table}` are exhausted"),
                })?;
                stored.insert(id, encode(row)?.as_slice()).storage()?;
                ids.push(id);
            }
            catalog.insert(table, encode(&meta)?.as_slice()).storage()?;
            Ok(ids)
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
        self.write(|txn| {
            let mut t = txn.open_table(IDENTITY).storage()?;
            let existing = t.get(key).storage()?.map(|v| v.value());
            let id = match existing {
                Some(id) => id,
                None => {
                    let id = Uuid::new_v4().as_u128();
                    t.insert(key, id).storage()?;
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
        self.write(|txn| {
            let mut index = txn.open_table(OBJECT_INDEX).storage()?;
            let existing = index.get(key.as_str()).storage()?.map(|v| v.value());
            if let Some(id) = existing {
                return Ok(Uuid::from_u128(id));
            }
            let id = Uuid::new_v4().as_u128();
            index.insert(key.as_str(), id).storage()?;
            txn.open_table(OBJECTS)
                .storage()?
                .insert(id, encode(addr)?.as_slice())
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
        table: &str,
        row: u64,
        column: &str,
        f: impl FnOnce(&Value) -> Result<Value, DbError>,
    ) -> Result<(), DbError> {
        self.write(|txn| {
            let meta = lookup(&txn.open_table(CATALOG).storage()?, table)?;
            let idx = meta.column_or_err(column)?;
            let rows_name = meta.rows_table_name();
            let mut rows = txn.open_table(rows_def(&rows_name)).storage()?;
            let mut values = read_row(&rows, &meta, row)?;
            let slot = values
                .get_mut(idx)
                .ok_or_else(|| corrupt(&format!("row {row} of `{table}` is too short")))?;
            let new = f(slot)?;
            meta.check_value(idx, &new)?;
            *slot = new;
            rows.insert(row, encode(&values)?.as_slice()).storage()?;
            Ok(())
        })
    }

    /// Runs `f` in one write transaction and commits it durably; if `f`
    /// fails, the transaction is dropped uncommitted, which aborts it, so a
    /// rejected write leaves nothing behind.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut txn = self.db.begin_write().storage()?;
        // Immediate is redb 2's default, but the crash-safety promise rests
        // on it, so it is not left to a default that could change.
        txn.set_durability(Durability::Immediate);
        let out = f(&txn)?;
        txn.commit().storage()?;
        Ok(out)
    }

    /// Runs `f` against one consistent snapshot.
    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let txn = self.db.begin_read().storage()?;
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
    name: &str,
) -> Result<TableMeta, DbError> {
    match catalog.get(name).storage()? {
        Some(bytes) => decode(bytes.value()),
        None => Err(DbError::NoSuchTable {
            table: name.to_owned(),
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
mod tests {
    use super::*;

    fn people_columns() -> Vec<Column> {
        vec![
            Column::new("name", ValueType::Text),
            Column::new("age", ValueType::Int),
            Column::new("score", ValueType::Float),
            Column::new("extra", ValueType::Any),
        ]
    }

    fn person(name: &str, age: i64) -> Vec<Value> {
        vec![
            Value::Text(name.into()),
            Value::Int(age),
            Value::Float(0.5),
            Value::Null,
        ]
    }

    fn open_people() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_table("people", people_columns()).unwrap();
        (dir, store)
    }

    #[test]
    fn store_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Store>();
    }

    #[test]
    fn open_creates_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a").join("b");
        Store::open(&nested).unwrap();
        assert!(nested.join(DB_FILE).is_file());
    }

    #[test]
    fn create_list_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.list_tables().unwrap().is_empty());

        let b = store.create_table("b", people_columns()).unwrap();
        let a = store
            .create_table("a", vec![Column::new("x", ValueType::Int)])
            .unwrap();
        assert_eq!(b.name, "b");
        assert_eq!(b.columns, people_columns());
        assert_eq!(b.next_row, 1);
        assert_ne!(a.id, b.id);

        let listed = store.list_tables().unwrap();
        assert_eq!(listed, vec![a.clone(), b.clone()], "sorted by name");
        assert_eq!(store.table("b").unwrap(), b);
        assert_eq!(store.table_by_id(a.id).unwrap(), Some(a.clone()));

        store.drop_table("a").unwrap();
        assert_eq!(store.list_tables().unwrap(), vec![b]);
        assert_eq!(store.table_by_id(a.id).unwrap(), None);
        assert!(matches!(store.table("a"), Err(DbError::NoSuchTable { .. })));
    }

    #[test]
    fn recreated_table_is_empty_with_a_new_id() {
        let (_dir, store) = open_people();
        let old = store.table("people").unwrap();
        store.insert("people", &person("ann", 30)).unwrap();
        store.drop_table("people").unwrap();

        let new = store.create_table("people", people_columns()).unwrap();
        assert_ne!(new.id, old.id);
        assert_eq!(store.count("people").unwrap(), 0);
        assert_eq!(store.insert("people", &person("bob", 1)).unwrap(), 1);
    }

    #[test]
    fn zero_column_table_holds_empty_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_table("empty", vec![]).unwrap();
        let id = store.insert("empty", &[]).unwrap();
        assert_eq!(store.get_row("empty", id).unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn insert_get_set_delete_count() {
        let (_dir, store) = open_people();
        let ann = store.insert("people", &person("ann", 30)).unwrap();
        let bob = store.insert("people", &person("bob", 40)).unwrap();
        assert!(bob > ann);
        assert_eq!(store.count("people").unwrap(), 2);
        assert_eq!(store.get_row("people", ann).unwrap(), person("ann", 30));
        assert_eq!(
            store.get_cell("people", bob, "name").unwrap(),
            Value::Text("bob".into())
        );

        store
            .set_cell("people", ann, "age", Value::Int(31))
            .unwrap();
        store
            .set_cell("people", ann, "extra", Value::Bytes(vec![1, 2, 3]))
            .unwrap();
        store.set_cell("people", ann, "name", Value::Null).unwrap();
        assert_eq!(
            store.get_row("people", ann).unwrap(),
            vec![
                Value::Null,
                Value::Int(31),
                Value::Float(0.5),
                Value::Bytes(vec![1, 2, 3])
            ]
        );

        store
            .update_row("people", bob, &person("robert", 41))
            .unwrap();
        assert_eq!(store.get_row("people", bob).unwrap(), person("robert", 41));

        store.delete_row("people", ann).unwrap();
        assert_eq!(store.count("people").unwrap(), 1);
        assert!(matches!(
            store.get_row("people", ann),
            Err(DbError::NoSuchRow { row, .. }) if row == ann
        ));

        // A deleted id, even the highest one, is never handed out again.
        store.delete_row("people", bob).unwrap();
        let carl = store.insert("people", &person("carl", 5)).unwrap();
        assert!(carl > bob);
        assert_eq!(store.table("people").unwrap().next_row, carl + 1);
    }

    #[test]
    fn scan_pages_by_row_id() {
        let (_dir, store) = open_people();
        let ids: Vec<u64> = (0..10)
            .map(|i| {
                store
                    .insert("people", &person(&format!("p{i}"), i))
                    .unwrap()
            })
            .collect();
        store.delete_row("people", ids[4]).unwrap();

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.scan("people", after, 3).unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 3);
            after = page.last().map(|(id, _)| *id);
            seen.extend(page);
        }
        let expected: Vec<(u64, Vec<Value>)> = ids
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != 4)
            .map(|(i, &id)| (id, person(&format!("p{i}"), i as i64)))
            .collect();
        assert_eq!(seen, expected);

        assert!(store.scan("people", None, 0).unwrap().is_empty());
        assert!(store.scan("people", Some(u64::MAX), 5).unwrap().is_empty());
        assert_eq!(store.scan("people", Some(ids[2]), 1).unwrap()[0].0, ids[3]);
    }

    #[test]
    fn compare_and_set_success_and_failure() {
        let (_dir, store) = open_people();
        let row = store.insert("people", &person("ann", 30)).unwrap();

        store
            .compare_and_set("people", row, "age", &Value::Int(30), Value::Int(31))
            .unwrap();
        assert_eq!(
            store.get_cell("people", row, "age").unwrap(),
            Value::Int(31)
        );

        let err = store
            .compare_and_set("people", row, "age", &Value::Int(30), Value::Int(99))
            .unwrap_err();
        assert_eq!(
            err,
            DbError::CasFailed {
                current: Value::Int(31)
            }
        );
        assert_eq!(
            store.get_cell("people", row, "age").unwrap(),
            Value::Int(31)
        );

        // Null is a value like any other for the comparison.
        store.set_cell("people", row, "age", Value::Null).unwrap();
        store
            .compare_and_set("people", row, "age", &Value::Null, Value::Int(1))
            .unwrap();

        // A NaN read back can be used as the expected value.
        store
            .set_cell("people", row, "score", Value::Float(f64::NAN))
            .unwrap();
        let current = store.get_cell("people", row, "score").unwrap();
        store
            .compare_and_set("people", row, "score", &current, Value::Float(1.0))
            .unwrap();
        assert_eq!(
            store.get_cell("people", row, "score").unwrap(),
            Value::Float(1.0)
        );
    }

    #[test]
    fn every_error_variant_from_real_input() {
        let (dir, store) = open_people();
        let row = store.insert("people", &person("ann", 30)).unwrap();

        assert_eq!(
            store.table("ghosts").unwrap_err(),
            DbError::NoSuchTable {
                table: "ghosts".into()
            }
        );
        assert!(matches!(
            store.insert("ghosts", &[]),
            Err(DbError::NoSuchTable { .. })
        ));
        assert!(matches!(
            store.drop_table("ghosts"),
            Err(DbError::NoSuchTable { .. })
        ));

        assert_eq!(
            store.create_table("people", vec![]).unwrap_err(),
            DbError::TableExists {
                table: "people".into()
            }
        );

        assert_eq!(
            store.get_cell("people", row, "height").unwrap_err(),
            DbError::NoSuchColumn {
                table: "people".into(),
                column: "height".into()
            }
        );
        assert!(matches!(
            store.set_cell("people", row, "height", Value::Int(1)),
            Err(DbError::NoSuchColumn { .. })
        ));

        assert_eq!(
            store.get_row("people", 999).unwrap_err(),
            DbError::NoSuchRow {
                table: "people".into(),
                row: 999
            }
        );
        for err in [
            store.get_cell("people", 999, "age").unwrap_err(),
            store
                .set_cell("people", 999, "age", Value::Int(1))
                .unwrap_err(),
            store
                .update_row("people", 999, &person("x", 1))
                .unwrap_err(),
            store.delete_row("people", 999).unwrap_err(),
            store
                .compare_and_set("people", 999, "age", &Value::Null, Value::Int(1))
                .unwrap_err(),
        ] {
            assert!(
                matches!(err, DbError::NoSuchRow { row: 999, .. }),
                "{err:?}"
            );
        }

        assert_eq!(
            store
                .set_cell("people", row, "age", Value::Text("old".into()))
                .unwrap_err(),
            DbError::TypeMismatch {
                table: "people".into(),
                column: "age".into(),
                expected: ValueType::Int,
                found: ValueType::Text
            }
        );

        assert_eq!(
            store
                .insert("people", &[Value::Text("ann".into())])
                .unwrap_err(),
            DbError::WrongColumnCount {
                table: "people".into(),
                expected: 4,
                found: 1
            }
        );

        for bad in [
            "",
            "has space",
            "dash-ed",
            "ünï",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(
                matches!(
                    store.create_table(bad, vec![]),
                    Err(DbError::InvalidName { ref name, .. }) if name == bad
                ),
                "table name {bad:?}"
            );
            assert!(
                matches!(
                    store.create_table("t", vec![Column::new(bad, ValueType::Int)]),
                    Err(DbError::InvalidName { ref name, .. }) if name == bad
                ),
                "column name {bad:?}"
            );
        }
        assert!(matches!(
            store.create_table(
                "t",
                vec![Column::new("a", ValueType::Int), Column::new("a", ValueType::Text)]
            ),
            Err(DbError::InvalidName { ref reason, .. }) if reason.contains("duplicate")
        ));
        assert!(store.table("t").is_err(), "rejected tables are not created");
        store
            .create_table("Ok_name_9", vec![Column::new("_c1", ValueType::Any)])
            .unwrap();

        assert!(matches!(
            store.compare_and_set("people", row, "age", &Value::Int(1), Value::Int(2)),
            Err(DbError::CasFailed {
                current: Value::Int(30)
            })
        ));

        // The database file is locked by `store`, so a second open fails.
        assert!(matches!(
            Store::open(dir.path()),
            Err(DbError::Storage { .. })
        ));
        // A regular file where the directory should be.
        let file = dir.path().join("not_a_dir");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(Store::open(&file), Err(DbError::Storage { .. })));
        // Garbage where the database file should be.
        let junk = dir.path().join("junk");
        std::fs::create_dir(&junk).unwrap();
        std::fs::write(junk.join(DB_FILE), vec![0xAB; 8192]).unwrap();
        assert!(matches!(Store::open(&junk), Err(DbError::Storage { .. })));
    }

    #[test]
    fn error_messages_are_lowercase_without_period() {
        let errors = [
            DbError::NoSuchTable { table: "t".into() },
            DbError::TypeMismatch {
                table: "t".into(),
                column: "c".into(),
                expected: ValueType::Int,
                found: ValueType::Text,
            },
            DbError::CasFailed {
                current: Value::Int(3),
            },
            DbError::Storage {
                reason: "disk on fire".into(),
            },
        ];
        for err in errors {
            let msg = err.to_string();
            assert!(msg.starts_with(|c: char| c.is_ascii_lowercase()), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
        assert_eq!(
            errors_round_trip(&DbError::CasFailed {
                current: Value::Bytes(vec![1])
            }),
            DbError::CasFailed {
                current: Value::Bytes(vec![1])
            }
        );
    }

    fn errors_round_trip(err: &DbError) -> DbError {
        decode(&encode(err).unwrap()).unwrap()
    }

    #[test]
    fn rejected_writes_change_nothing() {
        let (_dir, store) = open_people();
        let row = store.insert("people", &person("ann", 30)).unwrap();
        let before_meta = store.table("people").unwrap();

        assert!(matches!(
            store.set_cell("people", row, "age", Value::Float(30.0)),
            Err(DbError::TypeMismatch { .. })
        ));
        // The whole row is checked before anything is written, including
        // when only a later column is wrong.
        let mut bad = person("bob", 40);
        bad[2] = Value::Text("high".into());
        assert!(matches!(
            store.update_row("people", row, &bad),
            Err(DbError::TypeMismatch { ref column, .. }) if column == "score"
        ));
        assert!(matches!(
            store.insert("people", &bad),
            Err(DbError::TypeMismatch { .. })
        ));
        assert!(matches!(
            store.compare_and_set("people", row, "age", &Value::Int(30), Value::Bytes(vec![])),
            Err(DbError::TypeMismatch { .. })
        ));
        assert!(matches!(
            store.update_row("people", row, &[]),
            Err(DbError::WrongColumnCount { .. })
        ));

        assert_eq!(store.get_row("people", row).unwrap(), person("ann", 30));
        assert_eq!(store.count("people").unwrap(), 1);
        // Failed inserts do not burn row ids.
        assert_eq!(store.table("people").unwrap(), before_meta);
        assert_eq!(store.insert("people", &person("bob", 1)).unwrap(), row + 1);
    }

    #[test]
    fn reopen_finds_tables_ids_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (meta, kept, deleted) = {
            let store = Store::open(dir.path()).unwrap();
            let created = store.create_table("people", people_columns()).unwrap();
            store
                .create_table("gone", vec![Column::new("x", ValueType::Int)])
                .unwrap();
            store.drop_table("gone").unwrap();
            let kept = store.insert("people", &person("ann", 30)).unwrap();
            let deleted = store.insert("people", &person("bob", 40)).unwrap();
            store
                .set_cell("people", kept, "extra", Value::Text("note".into()))
                .unwrap();
            store.delete_row("people", deleted).unwrap();
            let meta = store.table("people").unwrap();
            assert_eq!(meta.id, created.id);
            (meta, kept, deleted)
        };
        assert_eq!(meta.next_row, deleted + 1);

        let store = Store::open(dir.path()).unwrap();
        let tables = store.list_tables().unwrap();
        assert_eq!(tables, vec![meta.clone()]);
        assert_eq!(store.table_by_id(meta.id).unwrap(), Some(meta));
        let mut expected = person("ann", 30);
        expected[3] = Value::Text("note".into());
        assert_eq!(
            store.scan("people", None, 100).unwrap(),
            vec![(kept, expected)]
        );
        assert!(store.insert("people", &person("carl", 1)).unwrap() > deleted);
    }

    #[test]
    fn dropped_without_close_keeps_acknowledged_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let clone = store.clone();
        store.create_table("people", people_columns()).unwrap();
        let ids: Vec<u64> = (0..20)
            .map(|i| clone.insert("people", &person("p", i)).unwrap())
            .collect();
        // A failed write right before the "crash" must not leave anything.
        assert!(store.insert("people", &[Value::Int(1)]).is_err());
        drop(store);
        drop(clone);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.count("people").unwrap(), 20);
        for (i, id) in ids.into_iter().enumerate() {
            assert_eq!(store.get_row("people", id).unwrap(), person("p", i as i64));
        }
    }

    #[test]
    fn concurrent_inserts_get_distinct_ids() {
        let (_dir, store) = open_people();
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| store.insert("people", &person("p", t * 100 + i)).unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut ids: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 100);
        assert_eq!(store.count("people").unwrap(), 100);
    }

    #[test]
    fn identities_and_cell_object_ids_are_persistent() {
        let dir = tempfile::tempdir().unwrap();
        let (node, cell_id, addr, gone) = {
            let store = Store::open(dir.path()).unwrap();
            let meta = store.create_table("people", people_columns()).unwrap();
            let node = store.identity("node").unwrap();
            assert_eq!(store.identity("node").unwrap(), node);
            assert_ne!(store.identity("other").unwrap(), node);
            let addr = CellAddr {
                table: meta.id,
                row: 1,
                column: "age".into(),
            };
            let cell_id = store.cell_object_id(&addr).unwrap();
            assert_eq!(store.cell_object_id(&addr).unwrap(), cell_id);
            let other = CellAddr {
                column: "name".into(),
                ..addr
            };
            assert_ne!(store.cell_object_id(&other).unwrap(), cell_id);
            let gone = store.create_table("gone", vec![]).unwrap();
            store.drop_table("gone").unwrap();
            (node, cell_id, addr, gone)
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.identity("node").unwrap(), node);
        assert_eq!(store.cell_object(cell_id).unwrap(), Some(addr.clone()));
        assert_eq!(store.cell_object_id(&addr).unwrap(), cell_id);
        assert_eq!(store.cell_object(Uuid::new_v4()).unwrap(), None);
        assert_eq!(store.dropped_table(gone.id).unwrap(), Some(gone));
        assert_eq!(store.dropped_table(addr.table).unwrap(), None);
    }

    #[test]
    fn insert_many_is_all_or_nothing() {
        let (_dir, store) = open_people();
        let ids = store
            .insert_many("people", &[person("a", 1), person("b", 2)])
            .unwrap();
        assert_eq!(ids, vec![1, 2]);
        let mut bad = person("c", 3);
        bad[1] = Value::Text("x".into());
        assert!(matches!(
            store.insert_many("people", &[person("d", 4), bad]),
            Err(DbError::TypeMismatch { .. })
        ));
        assert_eq!(store.count("people").unwrap(), 2);
        assert_eq!(store.insert("people", &person("e", 5)).unwrap(), 3);
    }
}
