//! References held by a client across a restart of the server (same data
//! directory, same port): tables and cells keep their capabilities, a dropped
//! table's references keep saying so, guessed ids get nothing.

mod common;

use common::*;
use dbserver::api::{Cell, Database, DbError, Table, TableRef, Value};
use rpc_core::{Config, Node, ObjectId, RpcError};
use std::time::Duration;

#[tokio::test]
async fn table_and_cell_references_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let addr = server.addr().to_string();
    let node_id = server.node().id();
    let (client, db) = connect(&addr).await;
    let people = db
        .create_table("people".into(), people_columns())
        .await
        .unwrap();
    let ann = people.insert(person("ann", 30)).await.unwrap();
    let age = people.cell(ann, "age".into()).await.unwrap();
    let gone = db
        .create_table("gone".into(), people_columns())
        .await
        .unwrap();
    let gone_row = gone.insert(person("x", 1)).await.unwrap();
    let gone_cell = gone.cell(gone_row, "age".into()).await.unwrap();
    db.drop_table("gone".into()).await.unwrap();
    let people_cap = people.capability().unwrap().clone();
    let age_cap = age.capability().unwrap().clone();

    within(server.shutdown()).await;
    // While it is down, calls are tried again until their deadline, then
    // fail as not sent.
    let down = within(people.with_timeout(Duration::from_millis(500)).count()).await;
    assert!(
        matches!(&down, Err(DbError::Rpc(e)) if e.is_not_sent()),
        "{down:?}"
    );
    let server = start_server_at(dir.path(), &addr).await;
    assert_eq!(server.node().id(), node_id, "the node id is persisted");

    // The first call finds the old connection dead or gone: it is sent
    // again, and the caller sees no error.
    assert_eq!(within(people.count()).await.unwrap(), 1);
    assert_eq!(age.get().await.unwrap(), Value::Int(30));
    age.set(Value::Int(31)).await.unwrap();
    assert_eq!(people.get_row(ann).await.unwrap(), person("ann", 31));
    // The database reference itself, and reopening: the same capabilities.
    let reopened = db.open_table("people".into()).await.unwrap();
    assert_eq!(reopened.capability(), Some(&people_cap));
    assert_eq!(
        people.cell(ann, "age".into()).await.unwrap().capability(),
        Some(&age_cap)
    );
    // A dropped table's references still say so after the restart.
    assert!(matches!(
        gone.count().await,
        Err(DbError::NoLongerExists { table }) if table == "gone"
    ));
    assert!(matches!(
        gone_cell.get().await,
        Err(DbError::NoLongerExists { .. })
    ));
    // A fresh client holding only the capability gets the table too.
    let other = Node::new(Config::default());
    let t: TableRef = other.resolve(people_cap.clone()).unwrap();
    assert_eq!(within(t.count()).await.unwrap(), 1);
    // A guessed id on the same node is no such object.
    let mut guessed = people_cap;
    guessed.object = ObjectId::random();
    let g: TableRef = client.resolve(guessed).unwrap();
    assert!(matches!(
        g.count().await,
        Err(DbError::Rpc(RpcError::NoSuchObject { .. }))
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn restarting_twice_keeps_data_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut addr: Option<String> = None;
    let mut caps = None;
    for round in 0..3i64 {
        let server = match &addr {
            None => start_server(dir.path()).await,
            Some(a) => start_server_at(dir.path(), a).await,
        };
        addr = Some(server.addr().to_string());
        let (_client, db) = connect(&server.addr().to_string()).await;
        let t = match db.open_table("t".into()).await {
            Ok(t) => t,
            Err(DbError::NoSuchTable { .. }) => {
                db.create_table("t".into(), people_columns()).await.unwrap()
            }
            Err(e) => panic!("{e}"),
        };
        t.insert(person("r", round)).await.unwrap();
        assert_eq!(t.count().await.unwrap(), (round + 1) as u64);
        let cap = (db.capability().cloned(), t.capability().cloned());
        if let Some(prev) = &caps {
            assert_eq!(prev, &cap);
        }
        caps = Some(cap);
        server.shutdown().await;
    }
}
