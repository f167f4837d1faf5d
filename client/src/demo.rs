//! The all-in-one demo: starts a name server and two database servers in
//! this process on 127.0.0.1 (ephemeral ports, a temporary data directory),
//! then acts as a client of them and narrates what it does: tables, cells,
//! callbacks, an import through callbacks, and data stored once under a data
//! id, referenced by many rows and moved between the servers.

use crate::ClientError;
use dbserver::api::{Cell, CellListener, CellListenerRef, Database, DatabaseRef, Table, TableRef};
use dbserver::memtable::MemTable;
use dbserver::server::DbServer;
use dbserver::{Column, DbError, Value, ValueType};
use nameserver::client::NameClient;
use nameserver::server::NameServer;
use rpc_core::data::Persistence;
use rpc_core::data::{DataManager, DataManagerRef};
use rpc_core::{Blob, Config, Node};
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

    // 0. A throwaway cluster CA: every connection runs mutual TLS.
    let data = tempfile::tempdir().map_err(io("creating a data directory"))?;
    let pki = data.path().join("pki");
    rpc_core::pki::init_ca(&pki.join("ca")).map_err(io("making the demo CA"))?;
    let tls = |name: &str| -> Result<Config, ClientError> {
        let dir = pki.join(name);
        rpc_core::pki::issue(&pki.join("ca"), name, &dir, false)
            .map_err(io("issuing a demo credential"))?;
        let creds =
            rpc_core::TlsCredentials::from_dir(&dir).map_err(io("reading a demo credential"))?;
        Ok(Config {
            tls: Some(std::sync::Arc::new(creds)),
            ..Config::default()
        })
    };
    say!(
        "made a throwaway CA in {}: every connection below runs mutual TLS with a credential it issued",
        pki.display()
    );

    // 1. Name server.
    let ns_node = Node::new(tls("nameserver")?);
    let ns_addr = ns_node
        .listen("127.0.0.1:0")
        .await
        .map_err(io("binding the name server"))?
        .to_string();
    let ns = NameServer::install(&ns_node, nameserver::server::DEFAULT_LEASE)?;
    say!("name server listening on {ns_addr}");

    // 2. Two database servers, registered as dbserver/{db,data} and
    //    archive/{db,data}; each keeps data under its data directory.
    let mut servers = Vec::new();
    for name in ["dbserver", "archive"] {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("binding a database server"))?;
        let dir = data.path().join(name);
        let server = DbServer::start_with(listener, &dir, tls(name)?).await?;
        let names = NameClient::connect_as(server.node(), &ns_addr, name).await?;
        server.register(names).await?;
        say!(
            "database server listening on {}, data in {}, bound as {name}/db and {name}/data",
            server.addr(),
            dir.display()
        );
        servers.push(server);
    }

    let result = client_session(&ns_addr, tls("demo-client")?, out).await;

    say!("shutting down");
    for server in servers {
        // Unbinds from the name server, then stops.
        server.shutdown().await;
    }
    drop(ns);
    ns_node.shutdown().await;
    result
}

async fn client_session(
    ns_addr: &str,
    config: Config,
    out: &mut (dyn Write + Send),
) -> Result<(), ClientError> {
    macro_rules! say {
        ($($t:tt)*) => {{ let _ = writeln!(out, $($t)*); }};
    }
    // This node does not listen: the server reaches it over its own connection.
    let node = Node::new(config);
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
    data_session(&node, &names, &db, out).await?;
    names.close().await?;
    node.shutdown().await;
    Ok(())
}

/// Size of the value the data walk-through stores once.
const DEMO_DATA: usize = 4 * 1024 * 1024;

/// Data ids: a large value stored once on `dbserver`, referenced by many
/// rows without being sent again, moved node to node to `archive`.
async fn data_session(
    node: &Node,
    names: &NameClient,
    db: &DatabaseRef,
    out: &mut (dyn Write + Send),
) -> Result<(), ClientError> {
    macro_rules! say {
        ($($t:tt)*) => {{ let _ = writeln!(out, $($t)*); }};
    }
    let check = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(ClientError::Check(what.to_owned()))
        }
    };
    let here: DataManagerRef = names.resolve("dbserver/data").await?;
    let archive: DataManagerRef = names.resolve("archive/data").await?;
    let bytes: Vec<u8> = (0..DEMO_DATA).map(|i| (i % 251) as u8).collect();
    let sent = node.stats().bytes_sent;
    let r = here
        .put(Blob::from_bytes(bytes.clone()), Persistence::Persistent)
        .await?;
    say!(
        "client: stored {} bytes on dbserver as data {} ({}); {} bytes went over the wire",
        r.size(),
        r.id(),
        r.mode(),
        node.stats().bytes_sent - sent
    );

    let photos = db
        .create_table(
            "photos".into(),
            vec![
                Column::new("name", ValueType::Text),
                Column::new("image", ValueType::Data),
            ],
        )
        .await?;
    let sent = node.stats().bytes_sent;
    for name in ["front", "back", "side"] {
        photos
            .insert(vec![Value::Text(name.into()), Value::Data(r.id())])
            .await?;
    }
    say!(
        "client: 3 rows of table photos reference it; inserting them sent {} bytes",
        node.stats().bytes_sent - sent
    );

    let moved = here.move_to(r.id(), archive.clone()).await?;
    let owner = names.locate(r.id()).await?;
    say!(
        "client: moved the data to archive, node to node; the location service now says {}",
        owner.context
    );
    check(
        owner.owner == *moved.owner(),
        "the location was not updated",
    )?;

    // dbserver reads a one-use copy from archive to answer.
    let cell = photos.cell(2, "image".into()).await?;
    let read = cell.get_blob().await?.into_bytes().await?;
    check(read == bytes, "the bytes read back differ")?;
    say!(
        "client: photos[2].image = {}, read back through dbserver: {} bytes, identical",
        cell.get().await?,
        read.len()
    );

    let sticky = archive
        .put(Blob::from_bytes(b"stays put".to_vec()), Persistence::Sticky)
        .await?;
    match archive.move_to(sticky.id(), here).await {
        Err(e @ rpc_core::data::DataError::NotMovable { .. }) => {
            say!("client: sticky data stays where it is: {e}");
            Ok(())
        }
        other => Err(ClientError::Check(format!(
            "expected sticky data not to move, got {other:?}"
        ))),
    }
}
