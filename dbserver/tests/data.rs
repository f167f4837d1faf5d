//! Cells that hold data ids: a large value stored once in a server's data
//! manager and referenced by many rows without being sent again, read back
//! through `get_blob` (also when another server keeps it, found through the
//! name server's location service), ids checked when written, and the data
//! kept across a restart.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use dbserver::api::Cell as _;
use dbserver::api::{Column, Database, DbError, Table, TableRef, Value, ValueType};
use dbserver::server::DbServer;
use nameserver::client::NameClient;
use nameserver::server::NameServer;
use rpc_core::data::Persistence;
use rpc_core::data::{BOOTSTRAP_NAME, DataManager, DataManagerRef};
use rpc_core::{Blob, Config, DataId, Node};

const MIB: usize = 1024 * 1024;

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i % 253) as u8 ^ seed).collect()
}

fn photo_columns() -> Vec<Column> {
    vec![
        Column::new("name", ValueType::Text),
        Column::new("image", ValueType::Data),
    ]
}

async fn photos(db: &dbserver::api::DatabaseRef) -> TableRef {
    within(db.create_table("photos".into(), photo_columns()))
        .await
        .unwrap()
}

async fn data_manager(client: &Node, addr: &str) -> DataManagerRef {
    within(client.lookup(addr, BOOTSTRAP_NAME)).await.unwrap()
}

#[tokio::test]
async fn a_value_stored_once_is_referenced_by_many_rows_without_being_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let addr = server.addr().to_string();
    let (client, db) = connect(&addr).await;
    let dm = data_manager(&client, &addr).await;
    let image = bytes(2 * MIB, 1);
    let r = within(dm.put(Blob::from_bytes(image.clone()), Persistence::Persistent))
        .await
        .unwrap();
    let table = photos(&db).await;

    let sent = client.stats().bytes_sent;
    for i in 0..50 {
        table
            .insert(vec![Value::Text(format!("p{i}")), Value::Data(r.id())])
            .await
            .unwrap();
    }
    let per_row = (client.stats().bytes_sent - sent) / 50;
    assert!(per_row < 1024, "{per_row} bytes sent per row");

    let cell = table.cell(17, "image".into()).await.unwrap();
    assert_eq!(cell.get().await.unwrap(), Value::Data(r.id()));
    let got = within(cell.get_blob()).await.unwrap();
    assert_eq!(got.into_bytes().await.unwrap(), image);
    // One item on disk, however many rows name it.
    assert_eq!(server.data().list(), vec![r.info().clone()]);
    assert!(
        dir.path()
            .join("data/items")
            .join(format!("{}.bin", r.id().0.simple()))
            .is_file()
    );
    // A data column holds references only.
    let e = table
        .insert(vec![Value::Text("x".into()), Value::Bytes(vec![1])])
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::TypeMismatch { .. }), "{e:?}");
}

#[tokio::test]
async fn unknown_volatile_and_deleted_ids_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let addr = server.addr().to_string();
    let (client, db) = connect(&addr).await;
    let dm = data_manager(&client, &addr).await;
    let table = photos(&db).await;

    let unknown = DataId::random();
    let e = table
        .insert(vec![Value::Text("x".into()), Value::Data(unknown)])
        .await
        .unwrap_err();
    assert_eq!(
        e,
        DbError::Data(rpc_core::data::DataError::NoSuchData { id: unknown })
    );
    assert_eq!(table.count().await.unwrap(), 0);

    let volatile = dm
        .put(Blob::from_bytes(vec![1; 100]), Persistence::Volatile)
        .await
        .unwrap();
    let e = table
        .insert(vec![Value::Text("x".into()), Value::Data(volatile.id())])
        .await
        .unwrap_err();
    assert!(matches!(e, DbError::Unsupported { .. }), "{e:?}");
    assert!(
        server.data().contains(volatile.id()),
        "checking it did not use it up"
    );

    let kept = dm
        .put(Blob::from_bytes(vec![2; 100]), Persistence::Sticky)
        .await
        .unwrap();
    let row = table
        .insert(vec![Value::Text("x".into()), Value::Data(kept.id())])
        .await
        .unwrap();
    let cell = table.cell(row, "image".into()).await.unwrap();
    let e = cell.set(Value::Data(unknown)).await.unwrap_err();
    assert_eq!(
        e,
        DbError::Data(rpc_core::data::DataError::NoSuchData { id: unknown })
    );
    assert_eq!(cell.get().await.unwrap(), Value::Data(kept.id()));

    // Deleting the data leaves the reference dangling: reading it says so.
    dm.remove(kept.id()).await.unwrap();
    let e = cell.get_blob().await.unwrap_err();
    assert_eq!(
        e,
        DbError::Data(rpc_core::data::DataError::NoSuchData { id: kept.id() })
    );
}

/// A name server and two database servers registered as `a` and `b`.
struct TwoServers {
    _ns: (Node, NameServer),
    ns_addr: String,
    servers: Vec<DbServer>,
    dirs: Vec<tempfile::TempDir>,
}

async fn two_servers() -> TwoServers {
    let ns_node = Node::new(Config::default());
    let ns_addr = ns_node.listen("127.0.0.1:0").await.unwrap().to_string();
    let ns = NameServer::install(&ns_node, nameserver::server::DEFAULT_LEASE).unwrap();
    let mut servers = Vec::new();
    let mut dirs = Vec::new();
    for name in ["a", "b"] {
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(dir.path()).await;
        let names = NameClient::connect_as(server.node(), &ns_addr, name)
            .await
            .unwrap();
        server.register(names).await.unwrap();
        servers.push(server);
        dirs.push(dir);
    }
    TwoServers {
        _ns: (ns_node, ns),
        ns_addr,
        servers,
        dirs,
    }
}

#[tokio::test]
async fn data_kept_by_another_server_is_found_through_the_location_service() {
    let env = two_servers().await;
    let client = Node::new(Config::default());
    let names = NameClient::connect(&client, &env.ns_addr).await.unwrap();
    let db_a: dbserver::api::DatabaseRef = names.resolve("a/db").await.unwrap();
    let dm_a: DataManagerRef = names.resolve("a/data").await.unwrap();
    let dm_b: DataManagerRef = names.resolve("b/data").await.unwrap();
    let image = bytes(MIB, 2);
    let r = within(dm_b.put(Blob::from_bytes(image.clone()), Persistence::Persistent))
        .await
        .unwrap();
    assert_eq!(names.locate(r.id()).await.unwrap().context, "b");

    // Server a checks the id with the location service and reads a one-use
    // copy from b; it keeps nothing.
    let table = photos(&db_a).await;
    let row = table
        .insert(vec![Value::Text("x".into()), Value::Data(r.id())])
        .await
        .unwrap();
    let cell = table.cell(row, "image".into()).await.unwrap();
    let got = within(cell.get_blob()).await.unwrap();
    assert_eq!(got.into_bytes().await.unwrap(), image);
    let (a, b) = (&env.servers[0], &env.servers[1]);
    assert!(a.data().list().is_empty());
    let tmp_a = env.dirs[0].path().join("data/tmp");
    // The copy's file is unlinked on the blocking pool once it is used.
    within(async {
        while std::fs::read_dir(&tmp_a).unwrap().count() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;

    // Moved to a, node to node: the location follows, the cell reads locally.
    let moved = within(dm_b.move_to(r.id(), dm_a)).await.unwrap();
    assert_eq!(moved.owner().node, a.node().id());
    assert_eq!(names.locate(r.id()).await.unwrap().context, "a");
    assert!(b.data().list().is_empty());
    let got = within(cell.get_blob()).await.unwrap();
    assert_eq!(got.into_bytes().await.unwrap(), image);
}

#[tokio::test]
async fn stored_data_and_the_rows_naming_it_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let image = bytes(300_000, 3);
    let (addr, id) = {
        let server = start_server(dir.path()).await;
        let addr = server.addr().to_string();
        let (client, db) = connect(&addr).await;
        let dm = data_manager(&client, &addr).await;
        let r = dm
            .put(Blob::from_bytes(image.clone()), Persistence::StickyReturn)
            .await
            .unwrap();
        assert_eq!(r.take_copy().unwrap().into_bytes().await.unwrap(), image);
        let table = photos(&db).await;
        table
            .insert(vec![Value::Text("x".into()), Value::Data(r.id())])
            .await
            .unwrap();
        client.shutdown().await;
        server.shutdown().await;
        (addr, r.id())
    };
    let server = start_server_at(dir.path(), &addr).await;
    assert_eq!(
        server.data().info(id).unwrap().mode,
        Persistence::StickyReturn
    );
    let (_client, db) = connect(&addr).await;
    let table = db.open_table("photos".into()).await.unwrap();
    let cell = table.cell(1, "image".into()).await.unwrap();
    let got = within(cell.get_blob()).await.unwrap();
    assert_eq!(got.into_bytes().await.unwrap(), image);
}

#[tokio::test]
async fn put_blob_into_a_data_column_stores_the_bytes_in_the_data_manager() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (_client, db) = connect(&server.addr().to_string()).await;
    let table = photos(&db).await;
    let row = table
        .insert(vec![Value::Text("x".into()), Value::Null])
        .await
        .unwrap();
    let cell = table.cell(row, "image".into()).await.unwrap();
    let image = bytes(3 * MIB, 4);
    let n = within(cell.put_blob(Blob::from_bytes(image.clone())))
        .await
        .unwrap();
    assert_eq!(n, image.len() as u64);
    let Value::Data(id) = cell.get().await.unwrap() else {
        panic!("the cell should hold a data id");
    };
    let info = server.data().info(id).unwrap();
    assert_eq!(info.mode, Persistence::Persistent);
    assert_eq!(info.checksum, crc32fast::hash(&image));
    let got = within(cell.get_blob()).await.unwrap();
    assert_eq!(got.into_bytes().await.unwrap(), image);
}
