//! `watch TABLE [ROW COLUMN] [--count N]`: registers a listener object living
//! in this process; the server calls it back with each change, which is
//! printed at once.

use crate::ClientError;
use crate::cli::WatchArgs;
use crate::context::Context;
use crate::output::{Output, WatchEvent};
use dbserver::DbError;
use dbserver::Value;
use dbserver::api::{
    Cell, CellListener, CellListenerRef, Table, TableChange, TableListener, TableListenerRef,
};
use nameserver::client::NameClient;
use tokio::sync::mpsc;

/// A table listener: forwards each change to the printing loop.
struct TableForward {
    /// Table name, for the events.
    table: String,
    /// The printing loop holds the other end; it stops reading once it has
    /// printed enough, after which sends fail and are ignored.
    events: mpsc::UnboundedSender<WatchEvent>,
}

impl TableListener for TableForward {
    async fn changed(&self, change: TableChange) -> Result<(), DbError> {
        let _ = self.events.send(WatchEvent {
            table: self.table.clone(),
            change,
        });
        Ok(())
    }
}

/// A cell listener: reports each new value as a [`TableChange::CellSet`].
struct CellForward {
    /// Table name.
    table: String,
    /// Row id.
    row: u64,
    /// Column name.
    column: String,
    /// As in [`TableForward`].
    events: mpsc::UnboundedSender<WatchEvent>,
}

impl CellListener for CellForward {
    async fn changed(&self, value: Value) -> Result<(), DbError> {
        let _ = self.events.send(WatchEvent {
            table: self.table.clone(),
            change: TableChange::CellSet {
                row: self.row,
                column: self.column.clone(),
                value,
            },
        });
        Ok(())
    }
}

/// Watches until `--count` changes were printed, the table is dropped, or Ctrl-C.
///
/// # Errors
/// Unknown table, row or column; registration not done within `--timeout`;
/// standard output closed.
pub async fn run(args: WatchArgs, ctx: &Context) -> Result<Output, ClientError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let own = ctx.bounded(ctx.own_context()).await?;
    let watched = watch(&args, ctx, &own, &mut rx, tx).await;
    // Removes the context and the listener's binding at once.
    let _ = own.close().await;
    watched
}

/// Registers the listener (bound in `own`), then prints until done.
async fn watch(
    args: &WatchArgs,
    ctx: &Context,
    own: &NameClient,
    rx: &mut mpsc::UnboundedReceiver<WatchEvent>,
    tx: mpsc::UnboundedSender<WatchEvent>,
) -> Result<Output, ClientError> {
    let table_name = args.table.clone();
    let listener_path = own.own_path("listener");
    let target = ctx
        .bounded(async {
            let table = ctx.table(&table_name).await?;
            let server = table.capability().map(|c| c.home.node);
            let target = match (args.row, args.column.clone()) {
                (Some(row), Some(column)) => {
                    let cell = table.cell(row, column.clone()).await?;
                    let target = format!("{table_name}[{row}].{column}");
                    let listener = CellListenerRef::new(CellForward {
                        table: table_name.clone(),
                        row,
                        column,
                        events: tx,
                    });
                    own.bind(&listener_path, &listener).await?;
                    cell.watch(listener).await?;
                    target
                }
                _ => {
                    let listener = TableListenerRef::new(TableForward {
                        table: table_name.clone(),
                        events: tx,
                    });
                    own.bind(&listener_path, &listener).await?;
                    table.watch(listener).await?;
                    table_name.clone()
                }
            };
            Ok::<_, ClientError>((target, server))
        })
        .await?;
    let (target, server) = target;
    // The server calls back over the connection this node opened: once it
    // closes, no change will come.
    let lost = async {
        match server {
            Some(node) => Some(ctx.node().disconnected(node).await),
            None => std::future::pending().await,
        }
    };
    tokio::pin!(lost);
    let printer = ctx.printer();
    let until = match args.count {
        Some(n) => format!("{n} change(s)"),
        None => "Ctrl-C".to_owned(),
    };
    printer.notice(&format!(
        "watching {target} until {until} (listener bound as {listener_path})"
    ));
    let mut seen = 0u64;
    loop {
        tokio::select! {
            event = rx.recv() => {
                // The listener, exported until the node shuts down, holds a sender.
                let Some(event) = event else { break };
                printer.event(&event).map_err(|source| ClientError::Io {
                    what: "writing to standard output",
                    source,
                })?;
                seen += 1;
                if args.count == Some(seen) || matches!(event.change, TableChange::Dropped) {
                    break;
                }
            }
            Some(e) = &mut lost => {
                return Err(ClientError::Rpc(e));
            }
            r = tokio::signal::ctrl_c() => {
                r.map_err(|source| ClientError::Io { what: "waiting for Ctrl-C", source })?;
                break;
            }
        }
    }
    Ok(Output::None)
}
