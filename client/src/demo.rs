//! The all-in-one demo: starts a name server and a database server in this
//! process on 127.0.0.1 (ephemeral ports, a temporary data directory), then
//! acts as a client of both and narrates what it does.

use crate::ClientError;
use dbserver::api::{Cell, CellListener, CellListenerRef, Database, DatabaseRef, Table, TableRef};
use dbserver::memtable::MemTable;
use dbserver::server::DbServer;
use dbserver::{Column, DbError, Value, ValueType};
use nameserver::client::NameClient;
use nameserver::server::NameServer;
use rpc_core::{Config, Node};
use std::io::Write;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Time the demo waits for a callback before calling it a failure.
const CALLBACK_WAIT: Duration = Duration::from_secs(5);

/// A cell watcher living in the client: the server calls it back.
struct PrintingWatcher {
    /// Receives each value the server reports; the demo awaits the other end.
    seen: mpsc::UnboundedSender<Value>,
}

impl CellListener for PrintingWatcher {
    async fn changed(&self, value: Value) -> Result<(), DbError> {
        let _ = self.seen.send(value);
        Ok(())
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ClientError {
    move |source| ClientError::Io { what, source }
}

/// Runs the demo, narrating to `out`.
///
/// # Errors
/// The first step that fails; the servers are shut down either way.
pub async fn run(out: &mut (dyn Write + Send)) -> Result<(), ClientError> {
    macro_rules! say {
        ($($t:tt)*) => {{ let _ = writeln!(out, $($t)*); }};
    }

    // 1. Name server.
    let ns_node = Node::new(Config::default());
    let ns_addr = ns_node
        .listen("127.0.0.1:0")
        .await
        .map_err(io("binding the name server"))?
        .to_string();
    let ns = NameServer::install(&ns_node, nameserver::server::DEFAULT_LEASE)?;
    say!("name server listening on {ns_addr}");

    // 2. Database server, registered as dbserver/db.
    let data = tempfile::tempdir().map_err(io("creating a data directory"))?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io("binding the database server"))?;
    let db_server = DbServer::start(listener, data.path()).await?;
    let db_names = NameClient::connect_as(db_server.node(), &ns_addr, "dbserver").await?;
    db_names.bind("dbserver/db", db_server.database()).await?;
    say!(
        "database server listening on {}, data in {}, bound as dbserver/db",
        db_server.addr(),
        data.path().display()
    );

    let result = client_session(&ns_addr, out).await;

    say!("shutting down");
    let _ = db_names.close().await;
    db_server.shutdown().await;
    drop(ns);
    ns_node.shutdown().await;
    result
}

async fn client_session(ns_addr: &str, out: &mut (dyn Write + Send)) -> Result<(), ClientError> {
    macro_rules! say {
        ($($t:tt)*) => {{ let _ = writeln!(out, $($t)*); }};
    }
    // This node does not listen: the server reaches it over its own connection.
    let node = Node::new(Config::default());
    let names = NameClient::connect(&node, ns_addr).await?;
    let entries = names.list("").await?;
    let listed: Vec<String> = entries
        .iter()
        .map(|e| format!("{} ({:?})", e.name, e.kind))
        .collect();
    say!("client: the name server's root holds {}", listed.join(", "));

    let db: DatabaseRef = names.resolve("dbserver/db").await?;
    say!("client: resolved dbserver/db to {db:?}");

    let people: TableRef = db
        .create_table(
            "people".into(),
            vec![
                Column::new("name", ValueType::Text),
                Column::new("born", ValueType::Int),
            ],
        )
        .await?;
    let ada = people
        .insert(vec![Value::Text("Ada Lovelace".into()), Value::Int(1815)])
        .await?;
    let alan = people
        .insert(vec![Value::Text("Alan Turing".into()), Value::Int(1912)])
        .await?;
    say!("client: created table people, inserted rows {ada} and {alan}");

    // A cell is a remote object of its own.
    let born = people.cell(alan, "born".into()).await?;
    say!("client: people[{alan}].born = {}", born.get().await?);

    // Watch it: the server calls back into this process.
    let (tx, mut rx) = mpsc::unbounded_channel();
    born.watch(CellListenerRef::new(PrintingWatcher { seen: tx }))
        .await?;
    born.set(Value::Int(1913)).await?;
    let seen = tokio::time::timeout(CALLBACK_WAIT, rx.recv())
        .await
        .map_err(|_| ClientError::Check("no callback from the cell watcher".into()))?
        .ok_or_else(|| ClientError::Check("watcher channel closed".into()))?;
    say!("client: set people[{alan}].born = 1913; the server called our watcher with {seen}");

    // A typed error travels as itself.
    match people
        .insert(vec![Value::Int(7), Value::Text("oops".into())])
        .await
    {
        Err(e @ DbError::TypeMismatch { .. }) => say!("client: a bad insert is refused: {e}"),
        other => {
            return Err(ClientError::Check(format!(
                "expected a type mismatch, got {other:?}"
            )));
        }
    }

    // Import a table that lives here: the server pulls its rows through callbacks.
    let local = MemTable::with_rows(
        "local",
        vec![
            Column::new("name", ValueType::Text),
            Column::new("born", ValueType::Int),
        ],
        vec![
            vec![Value::Text("Grace Hopper".into()), Value::Int(1906)],
            vec![Value::Text("Edsger Dijkstra".into()), Value::Int(1930)],
            vec![Value::Text("Barbara Liskov".into()), Value::Int(1939)],
        ],
    )?;
    let imported = people.import(TableRef::new(local)).await?;
    say!("client: imported {imported} rows from a client-side table through callbacks");

    say!("client: scan of people:");
    for (row, values) in people.scan(None, 100).await? {
        let cells: Vec<String> = values.iter().map(ToString::to_string).collect();
        say!("  {row:>3}  {}", cells.join("  "));
    }
    let count = people.count().await?;
    if count != 5 {
        return Err(ClientError::Check(format!(
            "expected 5 rows, found {count}"
        )));
    }
    names.close().await?;
    node.shutdown().await;
    Ok(())
}
