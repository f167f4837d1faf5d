//! The server-side remote objects over the [`Store`]: one [`DatabaseObj`], one
//! [`TableObj`] per table and one [`CellObj`] per cell handed out.
//!
//! Identity: a table's object id is its store id, a cell's object id is a
//! random id persisted in the store the first time the cell is handed out (see
//! [`Store::cell_object_id`]), so both survive a restart; [`Shared::resolve`]
//! re-exports them on demand after one.
//!
//! Concurrency: every store call runs on a blocking thread. An object of one
//! table addresses it by name and id ([`crate::store::TableKey`]), so the
//! store checks in the operation's own transaction that the table was not
//! dropped (and its name re-created) since. Writes share transactions and
//! fsyncs (group commit); the store tells the watcher hub about each
//! committed change in commit order, before the write is answered.
//! Notification only queues the change (it never waits for a listener);
//! each watcher has its own delivery task.

use crate::api::{
    CellListenerRef, CellRef, Database, DatabaseRef, Table, TableInfo, TableListenerRef, TableRef,
};
use crate::error::DbError;
use crate::store::{CellAddr, Column, Store, TableKey, TableMeta};
use crate::value::Value;
use crate::watch::Hub;
use parking_lot::Mutex;
use rpc_core::data::{DataStore, Persistence};
use rpc_core::{DataId, Node, ObjectId};
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use uuid::Uuid;

/// Rows requested per callback, and written per transaction, when importing a table.
const IMPORT_PAGE: u32 = 1024;

/// State shared by all objects of one server.
pub(crate) struct Shared {
    /// The storage.
    store: Store,
    /// The node exporting the objects.
    node: Node,
    /// Live table objects by table id; the exports keep them alive.
    tables: Mutex<HashMap<Uuid, Weak<TableObj>>>,
    /// Live cell objects by object id; the exports keep them alive.
    cells: Mutex<HashMap<Uuid, Weak<CellObj>>>,
    /// Registered watchers; the store's observer feeds them.
    hub: Arc<Mutex<Hub>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DbError::Storage {
            reason: format!("store task failed: {e}"),
        })?
}

impl Shared {
    /// State over `store` for objects exported by `node`.
    pub(crate) fn new(store: Store, node: Node) -> Arc<Shared> {
        let hub = Arc::new(Mutex::new(Hub::default()));
        let fed = Arc::clone(&hub);
        store.observe(Arc::new(move |meta, change| {
            fed.lock().apply(meta.id, &meta.columns, change);
        }));
        Arc::new(Shared {
            store,
            node,
            tables: Mutex::new(HashMap::new()),
            cells: Mutex::new(HashMap::new()),
            hub,
        })
    }

    /// The database object, exported under `id`; `binder` names it in the
    /// name server (`None`: the server's main database, named already).
    pub(crate) fn database(
        self: &Arc<Self>,
        id: ObjectId,
        binder: Option<Binder>,
    ) -> Result<DatabaseRef, DbError> {
        let db = DatabaseRef::new(DatabaseObj {
            shared: Arc::clone(self),
            binder,
        });
        self.node.export_as(&db, id)?;
        Ok(db)
    }

    /// The one table object of `meta`'s table, exported under the table's id.
    fn table_ref(self: &Arc<Self>, meta: TableMeta) -> Result<TableRef, DbError> {
        let id = meta.id;
        let obj = {
            let mut tables = self.tables.lock();
            match tables.get(&id).and_then(Weak::upgrade) {
                Some(obj) => obj,
                None => {
                    let obj = Arc::new(TableObj {
                        shared: Arc::clone(self),
                        meta: Arc::new(meta),
                    });
                    tables.retain(|_, w| w.strong_count() > 0);
                    tables.insert(id, Arc::downgrade(&obj));
                    obj
                }
            }
        };
        let r = TableRef::from_arc(obj);
        // Exported here (not when the reference is first sent) so that it gets its fixed id.
        self.node.export_as(&r, ObjectId(id))?;
        Ok(r)
    }

    /// The one cell object with object id `id`, exported under that id.
    fn cell_ref(
        self: &Arc<Self>,
        id: Uuid,
        table: Arc<TableMeta>,
        row: u64,
        column: String,
    ) -> Result<CellRef, DbError> {
        let obj = {
            let mut cells = self.cells.lock();
            match cells.get(&id).and_then(Weak::upgrade) {
                Some(obj) => obj,
                None => {
                    let obj = Arc::new(CellObj {
                        shared: Arc::clone(self),
                        table,
                        row,
                        column,
                    });
                    cells.retain(|_, w| w.strong_count() > 0);
                    cells.insert(id, Arc::downgrade(&obj));
                    obj
                }
            }
        };
        let r = CellRef::from_arc(obj);
        self.node.export_as(&r, ObjectId(id))?;
        Ok(r)
    }

    /// Withdraws every table and cell object handed out, so that nothing
    /// holds the store any more (its database is being deleted).
    pub(crate) fn unexport_all(&self) {
        let tables: Vec<Uuid> = self.tables.lock().drain().map(|(id, _)| id).collect();
        let cells: Vec<Uuid> = self.cells.lock().drain().map(|(id, _)| id).collect();
        for id in tables.into_iter().chain(cells) {
            self.node.unexport(&ObjectId(id));
        }
    }

    /// The catalog entry of a live or dropped table.
    fn any_table(&self, id: Uuid) -> Result<Option<TableMeta>, DbError> {
        match self.store.table_by_id(id)? {
            Some(meta) => Ok(Some(meta)),
            None => self.store.dropped_table(id),
        }
    }

    /// The resolver hook: re-exports the table or cell object `id` names, if
    /// the store knows it (after a restart, or after its export was dropped).
    /// A dropped table's objects are exported too and answer `NoLongerExists`.
    ///
    /// Runs on the connection's task: the store reads it makes are short
    /// read transactions.
    pub(crate) fn resolve(self: &Arc<Self>, id: ObjectId) -> bool {
        let r = (|| -> Result<bool, DbError> {
            if let Some(meta) = self.any_table(id.0)? {
                self.table_ref(meta)?;
                return Ok(true);
            }
            let Some(addr) = self.store.cell_object(id.0)? else {
                return Ok(false);
            };
            let Some(meta) = self.any_table(addr.table)? else {
                return Ok(false);
            };
            self.cell_ref(id.0, Arc::new(meta), addr.row, addr.column)?;
            Ok(true)
        })();
        match r {
            Ok(found) => {
                tracing::debug!(object = %id, found, "resolved an object on demand");
                found
            }
            Err(e) => {
                tracing::warn!(object = %id, error = %e, "could not resolve an object");
                false
            }
        }
    }

    /// Fails unless every data reference among `values` names stored data
    /// that some node keeps (here, or wherever the location service says):
    /// a cell never holds a dangling id when it is written, nor a volatile
    /// one, which its first read would use up.
    async fn check_data<'v>(
        &self,
        values: impl IntoIterator<Item = &'v Value>,
    ) -> Result<(), DbError> {
        let mut ids: Vec<DataId> = values.into_iter().filter_map(Value::data_id).collect();
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort();
        ids.dedup();
        let data = DataStore::of(&self.node)?;
        for id in ids {
            let (info, _) = data.describe(id).await?;
            if !info.mode.is_stored() {
                return Err(DbError::Unsupported {
                    what: format!(
                        "a reference to volatile data {id} in a cell (its first read would use it up)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Runs `f` on a blocking thread with `meta`'s table (whose store
    /// operations, given `TableKey::from(meta)`, fail with `NoLongerExists`
    /// once the table is dropped).
    async fn on_table<T: Send + 'static>(
        self: &Arc<Self>,
        meta: &Arc<TableMeta>,
        f: impl FnOnce(&Shared, &TableMeta) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let shared = Arc::clone(self);
        let meta = Arc::clone(meta);
        blocking(move || f(&shared, &meta)).await
    }
}

/// Binds a database in the name server under the name given; returns the path.
pub(crate) type Binder = Arc<
    dyn Fn(
            String,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, DbError>> + Send>>
        + Send
        + Sync,
>;

/// The database object.
pub(crate) struct DatabaseObj {
    shared: Arc<Shared>,
    binder: Option<Binder>,
}

impl Database for DatabaseObj {
    async fn create_table(&self, name: String, columns: Vec<Column>) -> Result<TableRef, DbError> {
        let shared = Arc::clone(&self.shared);
        let meta = blocking(move || shared.store.create_table(&name, columns)).await?;
        self.shared.table_ref(meta)
    }

    async fn open_table(&self, name: String) -> Result<TableRef, DbError> {
        let shared = Arc::clone(&self.shared);
        let meta = blocking(move || shared.store.table(name.as_str())).await?;
        self.shared.table_ref(meta)
    }

    async fn drop_table(&self, name: String) -> Result<(), DbError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            shared.store.drop_table(name.as_str())?;
            tracing::info!(table = %name, "table dropped");
            Ok(())
        })
        .await
    }

    async fn list_tables(&self) -> Result<Vec<TableInfo>, DbError> {
        let shared = Arc::clone(&self.shared);
        let metas = blocking(move || shared.store.list_tables()).await?;
        Ok(metas
            .into_iter()
            .map(|m| TableInfo {
                name: m.name,
                columns: m.columns,
            })
            .collect())
    }

    async fn bind_as(&self, name: String) -> Result<String, DbError> {
        match &self.binder {
            Some(bind) => bind(name).await,
            None => Err(DbError::Unsupported {
                what: "naming the server's main database (it is bound as `db`)".into(),
            }),
        }
    }
}

/// One table of the store.
pub(crate) struct TableObj {
    shared: Arc<Shared>,
    /// The table's catalog entry (name, id and columns never change).
    meta: Arc<TableMeta>,
}

impl TableObj {
    /// Runs `f` on a blocking thread with the store and this table's key.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store, TableKey) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        self.shared
            .on_table(&self.meta, move |s, m| f(&s.store, TableKey::from(m)))
            .await
    }
}

impl Table for TableObj {
    async fn info(&self) -> Result<TableInfo, DbError> {
        let m = self.with_store(|s, key| s.table(key)).await?;
        Ok(TableInfo {
            name: m.name,
            columns: m.columns,
        })
    }

    async fn insert(&self, values: Vec<Value>) -> Result<u64, DbError> {
        self.shared.check_data(&values).await?;
        self.with_store(move |s, key| s.insert(key, values)).await
    }

    async fn get_row(&self, row: u64) -> Result<Vec<Value>, DbError> {
        self.with_store(move |s, key| s.get_row(key, row)).await
    }

    async fn cell(&self, row: u64, column: String) -> Result<CellRef, DbError> {
        let (id, column) = self
            .shared
            .on_table(&self.meta, move |s, m| {
                // Checks that the row and the column exist.
                s.store.get_cell(m, row, &column)?;
                let id = s.store.cell_object_id(&CellAddr {
                    table: m.id,
                    row,
                    column: column.clone(),
                })?;
                Ok((id, column))
            })
            .await?;
        self.shared
            .cell_ref(id, Arc::clone(&self.meta), row, column)
    }

    async fn update(&self, row: u64, values: Vec<Value>) -> Result<(), DbError> {
        self.shared.check_data(&values).await?;
        self.with_store(move |s, key| s.update_row(key, row, values))
            .await
    }

    async fn update_cells(
        &self,
        row: u64,
        changes: Vec<(String, Value)>,
    ) -> Result<Vec<Value>, DbError> {
        self.shared
            .check_data(changes.iter().map(|(_, v)| v))
            .await?;
        self.with_store(move |s, key| s.update_cells(key, row, changes))
            .await
    }

    async fn delete(&self, row: u64) -> Result<(), DbError> {
        self.with_store(move |s, key| s.delete_row(key, row)).await
    }

    async fn count(&self) -> Result<u64, DbError> {
        self.with_store(|s, key| s.count(key)).await
    }

    async fn scan(
        &self,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, Vec<Value>)>, DbError> {
        // A page is one message: the frame limit bounds it anyway.
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        self.with_store(move |s, key| s.scan(key, after, limit))
            .await
    }

    async fn watch(&self, listener: TableListenerRef) -> Result<(), DbError> {
        self.shared
            .on_table(&self.meta, move |s, m| {
                s.store.table(m)?;
                s.hub.lock().watch_table(m.id, listener);
                Ok(())
            })
            .await
    }

    async fn import(&self, source: TableRef) -> Result<u64, DbError> {
        // Page by page, each page one write: memory stays at one page
        // whatever the source's size. At most as many rows as the source
        // had when the import began, so that importing a table into itself
        // ends. If a page fails, the rows already imported are deleted again.
        let total = source.count().await?;
        let mut pages = crate::api::Pages::new(&source, IMPORT_PAGE, Some(total));
        let mut done: Vec<std::ops::RangeInclusive<u64>> = Vec::new();
        let mut imported = 0u64;
        let result = async {
            while let Some(page) = pages.next().await? {
                let rows: Vec<Vec<Value>> = page.into_iter().map(|(_, v)| v).collect();
                self.shared.check_data(rows.iter().flatten()).await?;
                let ids = self
                    .with_store(move |s, key| s.insert_many(key, rows))
                    .await?;
                if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
                    done.push(*first..=*last);
                }
                imported += ids.len() as u64;
            }
            Ok::<_, DbError>(())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::debug!(table = %self.meta.name, rows = imported, "imported");
                Ok(imported)
            }
            Err(e) => {
                if !done.is_empty() {
                    let undo = self
                        .with_store(move |s, key| s.delete_rows(key, done))
                        .await;
                    if let Err(u) = undo {
                        tracing::warn!(error = %u, "could not take back a failed import");
                    }
                }
                Err(e)
            }
        }
    }
}

/// One cell of a table.
pub(crate) struct CellObj {
    shared: Arc<Shared>,
    table: Arc<TableMeta>,
    row: u64,
    column: String,
}

impl CellObj {
    /// Runs `f` on a blocking thread with the store, the table's key, the row and column.
    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store, TableKey, u64, &str) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let (row, column) = (self.row, self.column.clone());
        self.shared
            .on_table(&self.table, move |s, m| {
                f(&s.store, TableKey::from(m), row, &column)
            })
            .await
    }
}

impl crate::api::Cell for CellObj {
    async fn get(&self) -> Result<Value, DbError> {
        self.with_store(|s, key, row, column| s.get_cell(key, row, column))
            .await
    }

    async fn set(&self, v: Value) -> Result<(), DbError> {
        self.shared.check_data([&v]).await?;
        self.with_store(move |s, key, row, column| s.set_cell(key, row, column, v))
            .await
    }

    async fn compare_and_set(&self, expected: Value, new: Value) -> Result<(), DbError> {
        self.shared.check_data([&new]).await?;
        self.with_store(move |s, key, row, column| {
            s.compare_and_set(key, row, column, &expected, new)
        })
        .await
    }

    async fn put_blob(&self, data: rpc_core::Blob) -> Result<u64, DbError> {
        let is_data = self
            .table
            .columns
            .iter()
            .any(|c| c.name == self.column && c.ty == crate::ValueType::Data);
        if is_data {
            // Into the data manager, chunk by chunk to its disk; the cell
            // holds the id (the row stays small, the bytes are never in memory).
            let r = DataStore::of(&self.shared.node)?
                .put_blob(data, Persistence::Persistent)
                .await?;
            self.set(Value::Data(r.id())).await?;
            return Ok(r.size());
        }
        // Checked before anything is pulled: the row and column exist and
        // take bytes.
        let (key, row, column) = (TableKey::from(&*self.table), self.row, self.column.clone());
        self.with_store(|s, key, row, column| {
            s.get_cell(key.clone(), row, column)?;
            let meta = s.table(key)?;
            match meta.columns.iter().find(|c| c.name == column) {
                Some(c) if !c.ty.accepts(&Value::Bytes(Vec::new())) => Err(DbError::TypeMismatch {
                    table: meta.name.clone(),
                    column: c.name.clone(),
                    expected: c.ty,
                    found: crate::ValueType::Bytes,
                }),
                _ => Ok(()),
            }
        })
        .await?;
        if data.len() <= crate::store::OUT_OF_LINE as u64 {
            let bytes = data.into_bytes().await?;
            let n = bytes.len() as u64;
            self.set(Value::Bytes(bytes)).await?;
            return Ok(n);
        }
        // Streamed into the store chunk by chunk, then put into the cell in
        // one durable write; memory stays at a few chunks.
        let store = self.shared.store.clone();
        let writer = store.blob_writer();
        let pending = writer.pending();
        let size = data.save_into(writer).await?;
        let linked = blocking(move || {
            let r = store.link_blob(key, row, &column, pending, size);
            if r.is_err() {
                let _ = store.discard_blob(pending);
            }
            r
        })
        .await;
        linked.map(|()| size)
    }

    async fn get_blob(&self) -> Result<rpc_core::Blob, DbError> {
        let (value, reader) = self
            .with_store(|s, key, row, column| s.cell_bytes(key, row, column))
            .await?;
        match (value, reader) {
            (Value::Bytes(b), _) => Ok(rpc_core::Blob::from_bytes(b)),
            (Value::Blob { size }, Some(reader)) => {
                Ok(rpc_core::Blob::from_reader(Arc::new(reader), size))
            }
            // Stored once in a data manager: read from its file here, or
            // from a one-use copy of the owner's.
            (Value::Data(id), _) => Ok(DataStore::of(&self.shared.node)?
                .fetch_id(id)
                .await?
                .blob()?),
            (other, _) => Err(DbError::TypeMismatch {
                table: self.table.name.clone(),
                column: self.column.clone(),
                expected: crate::ValueType::Bytes,
                found: other.value_type().unwrap_or(crate::ValueType::Any),
            }),
        }
    }

    async fn watch(&self, listener: CellListenerRef) -> Result<(), DbError> {
        let shared = Arc::clone(&self.shared);
        self.with_store(move |s, key, row, column| {
            // The row must still exist.
            s.get_cell(key.clone(), row, column)?;
            let id = s.table(key)?.id;
            shared
                .hub
                .lock()
                .watch_cell((id, row, column.to_owned()), listener);
            Ok(())
        })
        .await
    }
}
