//! Watchers of tables and cells, shared by the server's tables and the
//! client-side [`crate::memtable::MemTable`]: each watcher has a queue
//! drained by its own delivery task, so that a change is only queued (never
//! waited for); a watcher that fails or falls [`WATCH_QUEUE`] changes
//! behind is dropped.

use crate::api::{
    CellListener, CellListenerRef, Column, TableChange, TableListener, TableListenerRef,
};
use crate::value::Value;
use std::collections::HashMap;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Changes a watcher may have queued before it counts as dead and is dropped.
pub(crate) const WATCH_QUEUE: usize = 1024;

/// Identifies one cell for watchers: table id, row, column.
pub(crate) type CellKey = (Uuid, u64, String);

/// Queues of the watchers; each queue is drained by its own delivery task.
#[derive(Default)]
pub(crate) struct Hub {
    tables: HashMap<Uuid, Vec<mpsc::Sender<TableChange>>>,
    cells: HashMap<CellKey, Vec<mpsc::Sender<Value>>>,
}

/// Queues `msg` for every watcher in `list`; drops those that are gone or hopelessly behind.
fn offer<M: Clone>(list: &mut Vec<mpsc::Sender<M>>, msg: &M) {
    list.retain(|tx| match tx.try_send(msg.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!("dropping a watcher that is {WATCH_QUEUE} changes behind");
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
}

impl Hub {
    /// One committed change of table `table` (whose columns are `columns`).
    pub(crate) fn apply(&mut self, table: Uuid, columns: &[Column], change: &TableChange) {
        match change {
            TableChange::Inserted { .. } => {}
            TableChange::Updated { row, values } => {
                for (col, v) in columns.iter().zip(values) {
                    self.cell_changed(&(table, *row, col.name.clone()), v);
                }
            }
            TableChange::Deleted { row } => self.row_deleted(table, *row),
            TableChange::CellSet { row, column, value } => {
                self.cell_changed(&(table, *row, column.clone()), value);
            }
            TableChange::Dropped => {
                self.table_dropped(table);
                return;
            }
        }
        self.table_changed(table, change);
    }

    /// Adds a watcher of table `table`: it is called with every change applied from now on.
    pub(crate) fn watch_table(&mut self, table: Uuid, listener: TableListenerRef) {
        self.tables
            .entry(table)
            .or_default()
            .push(table_watcher(listener));
    }

    /// Adds a watcher of one cell: it is called with each new value from now on.
    pub(crate) fn watch_cell(&mut self, cell: CellKey, listener: CellListenerRef) {
        self.cells
            .entry(cell)
            .or_default()
            .push(cell_watcher(listener));
    }

    fn table_changed(&mut self, table: Uuid, change: &TableChange) {
        if let Some(list) = self.tables.get_mut(&table) {
            offer(list, change);
            if list.is_empty() {
                self.tables.remove(&table);
            }
        }
    }

    fn cell_changed(&mut self, key: &CellKey, value: &Value) {
        if let Some(list) = self.cells.get_mut(key) {
            offer(list, value);
            if list.is_empty() {
                self.cells.remove(key);
            }
        }
    }

    /// After a row is deleted: its cells have no values to report any more.
    fn row_deleted(&mut self, table: Uuid, row: u64) {
        self.cells.retain(|k, _| !(k.0 == table && k.1 == row));
    }

    /// After a table is dropped: tell its watchers, then forget every watcher of it.
    fn table_dropped(&mut self, table: Uuid) {
        self.table_changed(table, &TableChange::Dropped);
        self.tables.remove(&table);
        self.cells.retain(|k, _| k.0 != table);
    }
}

/// Starts the delivery task of one table watcher.
fn table_watcher(listener: TableListenerRef) -> mpsc::Sender<TableChange> {
    let (tx, mut rx) = mpsc::channel::<TableChange>(WATCH_QUEUE);
    tokio::spawn(async move {
        while let Some(change) = rx.recv().await {
            if let Err(e) = listener.changed(change).await {
                tracing::debug!(error = %e, "table watcher failed; dropping it");
                break;
            }
        }
    });
    tx
}

/// Starts the delivery task of one cell watcher.
fn cell_watcher(listener: CellListenerRef) -> mpsc::Sender<Value> {
    let (tx, mut rx) = mpsc::channel::<Value>(WATCH_QUEUE);
    tokio::spawn(async move {
        while let Some(value) = rx.recv().await {
            if let Err(e) = listener.changed(value).await {
                tracing::debug!(error = %e, "cell watcher failed; dropping it");
                break;
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_or_closed_queue_drops_the_watcher() {
        let (tx_ok, mut rx_ok) = mpsc::channel::<u8>(4);
        let (tx_closed, rx_closed) = mpsc::channel::<u8>(4);
        drop(rx_closed);
        let (tx_full, _rx_full) = mpsc::channel::<u8>(1);
        tx_full.try_send(0).unwrap();
        let mut list = vec![tx_ok, tx_closed, tx_full];
        offer(&mut list, &7);
        assert_eq!(list.len(), 1);
        assert_eq!(rx_ok.try_recv().unwrap(), 7);
    }
}
