//! A client node against an in-process server: a whole session, typed errors
//! that change nothing, watchers called back on the client, import of a
//! client-side table, and references to a dropped table.

mod common;

use common::*;
use dbserver::api::Cell as _;
use dbserver::api::{
    CellListenerRef, Column, Database, DbError, Table, TableChange, TableInfo, TableListenerRef,
    TableRef, Value, ValueType,
};
use dbserver::memtable::MemTable;
use tokio::sync::mpsc;

#[tokio::test]
async fn create_insert_get_set_scan() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (_client, db) = connect(&server.addr().to_string()).await;

    let people = within(db.create_table("people".into(), people_columns()))
        .await
        .unwrap();
    assert!(!people.is_local());
    let ann = people.insert(person("ann", 30)).await.unwrap();
    let bob = people.insert(person("bob", 40)).await.unwrap();
    assert!(bob > ann);
    assert_eq!(people.get_row(ann).await.unwrap(), person("ann", 30));
    assert_eq!(people.count().await.unwrap(), 2);
    assert_eq!(
        people.info().await.unwrap(),
        TableInfo {
            name: "people".into(),
            columns: people_columns()
        }
    );

    let age = people.cell(ann, "age".into()).await.unwrap();
    assert_eq!(age.get().await.unwrap(), Value::Int(30));
    age.set(Value::Int(31)).await.unwrap();
    assert_eq!(age.get().await.unwrap(), Value::Int(31));
    age.compare_and_set(Value::Int(31), Value::Int(32))
        .await
        .unwrap();
    assert_eq!(
        age.compare_and_set(Value::Int(31), Value::Int(33)).await,
        Err(DbError::CasFailed {
            current: Value::Int(32)
        })
    );
    // The same cell twice is the same capability.
    let again = people.cell(ann, "age".into()).await.unwrap();
    assert_eq!(again.capability(), age.capability());

    people.update(bob, person("bobby", 41)).await.unwrap();
    for i in 0..10 {
        people.insert(person(&format!("p{i}"), i)).await.unwrap();
    }
    people.delete(ann).await.unwrap();
    assert_eq!(people.count().await.unwrap(), 11);
    // Paging: 4 at a time, in id order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = people.scan(after, 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(id, _)| *id);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 11);
    assert_eq!(seen[0], (bob, person("bobby", 41)));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));

    // Opening by name gives the same capability as the creation did.
    let opened = db.open_table("people".into()).await.unwrap();
    assert_eq!(opened.capability(), people.capability());
    let names: Vec<_> = db
        .list_tables()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["people".to_owned()]);
    server.shutdown().await;
}

#[tokio::test]
async fn typed_errors_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (_client, db) = connect(&server.addr().to_string()).await;
    let people = db
        .create_table("people".into(), people_columns())
        .await
        .unwrap();
    let ann = people.insert(person("ann", 30)).await.unwrap();

    assert!(matches!(
        db.open_table("nope".into()).await,
        Err(DbError::NoSuchTable { table }) if table == "nope"
    ));
    assert!(matches!(
        db.create_table("people".into(), vec![]).await,
        Err(DbError::TableExists { .. })
    ));
    assert!(matches!(
        db.create_table("bad name!".into(), vec![]).await,
        Err(DbError::InvalidName { .. })
    ));
    assert!(matches!(
        db.drop_table("nope".into()).await,
        Err(DbError::NoSuchTable { .. })
    ));
    assert!(matches!(
        people.cell(ann, "height".into()).await,
        Err(DbError::NoSuchColumn { column, .. }) if column == "height"
    ));
    assert!(matches!(
        people.cell(999, "age".into()).await,
        Err(DbError::NoSuchRow { row: 999, .. })
    ));
    assert!(matches!(
        people.get_row(999).await,
        Err(DbError::NoSuchRow { row: 999, .. })
    ));
    assert!(matches!(
        people.delete(999).await,
        Err(DbError::NoSuchRow { .. })
    ));
    assert!(matches!(
        people
            .insert(vec![Value::Int(1), Value::Int(2)])
            .await,
        Err(DbError::TypeMismatch { column, expected: ValueType::Text, found: ValueType::Int, .. }) if column == "name"
    ));
    assert!(matches!(
        people.insert(vec![Value::Null]).await,
        Err(DbError::WrongColumnCount {
            expected: 2,
            found: 1,
            ..
        })
    ));
    assert!(matches!(
        people
            .update(ann, vec![Value::Text("x".into()), Value::Float(1.5)])
            .await,
        Err(DbError::TypeMismatch { .. })
    ));
    let age = people.cell(ann, "age".into()).await.unwrap();
    assert!(matches!(
        age.set(Value::Text("old".into())).await,
        Err(DbError::TypeMismatch { .. })
    ));
    assert!(matches!(
        age.compare_and_set(Value::Int(1), Value::Int(2)).await,
        Err(DbError::CasFailed {
            current: Value::Int(30)
        })
    ));

    // Nothing changed: one row, as inserted; the next row id was not burnt.
    assert_eq!(people.count().await.unwrap(), 1);
    assert_eq!(people.get_row(ann).await.unwrap(), person("ann", 30));
    assert_eq!(people.insert(person("bob", 1)).await.unwrap(), ann + 1);
    server.shutdown().await;
}

#[tokio::test]
async fn watchers_are_called_back_on_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (client, db) = connect(&server.addr().to_string()).await;
    let people = db
        .create_table("people".into(), people_columns())
        .await
        .unwrap();
    let ann = people.insert(person("ann", 30)).await.unwrap();

    let (ttx, mut table_rx) = mpsc::unbounded_channel();
    people
        .watch(TableListenerRef::new(TableProbe(ttx)))
        .await
        .unwrap();
    let age = people.cell(ann, "age".into()).await.unwrap();
    let (ctx, mut cell_rx) = mpsc::unbounded_channel();
    age.watch(CellListenerRef::new(CellProbe(ctx)))
        .await
        .unwrap();
    // A failing watcher is dropped without holding up the others.
    age.watch(CellListenerRef::new(FailingProbe)).await.unwrap();
    // The listeners are objects exported by the client, which does not listen.
    assert!(client.com_handle().addr.is_none());
    assert!(client.stats().exports >= 3);

    let bob = people.insert(person("bob", 40)).await.unwrap();
    age.set(Value::Int(31)).await.unwrap();
    people.update(ann, person("ann", 32)).await.unwrap();
    // Through another reference to the same cell.
    let same = people.cell(ann, "age".into()).await.unwrap();
    same.compare_and_set(Value::Int(32), Value::Int(33))
        .await
        .unwrap();
    // Another cell: not seen by the cell watcher.
    people
        .cell(bob, "age".into())
        .await
        .unwrap()
        .set(Value::Int(41))
        .await
        .unwrap();
    people.delete(bob).await.unwrap();

    assert_eq!(
        next(&mut table_rx).await,
        TableChange::Inserted {
            row: bob,
            values: person("bob", 40)
        }
    );
    assert_eq!(
        next(&mut table_rx).await,
        TableChange::CellSet {
            row: ann,
            column: "age".into(),
            value: Value::Int(31)
        }
    );
    assert_eq!(
        next(&mut table_rx).await,
        TableChange::Updated {
            row: ann,
            values: person("ann", 32)
        }
    );
    assert_eq!(
        next(&mut table_rx).await,
        TableChange::CellSet {
            row: ann,
            column: "age".into(),
            value: Value::Int(33)
        }
    );
    assert!(matches!(
        next(&mut table_rx).await,
        TableChange::CellSet { row, .. } if row == bob
    ));
    assert_eq!(next(&mut table_rx).await, TableChange::Deleted { row: bob });

    assert_eq!(next(&mut cell_rx).await, Value::Int(31));
    assert_eq!(next(&mut cell_rx).await, Value::Int(32));
    assert_eq!(next(&mut cell_rx).await, Value::Int(33));
    assert!(cell_rx.try_recv().is_err());

    db.drop_table("people".into()).await.unwrap();
    assert_eq!(next(&mut table_rx).await, TableChange::Dropped);
    server.shutdown().await;
}

#[tokio::test]
async fn import_pulls_a_client_table_through_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (_client, db) = connect(&server.addr().to_string()).await;
    let people = db
        .create_table("people".into(), people_columns())
        .await
        .unwrap();
    people.insert(person("first", 1)).await.unwrap();

    // More rows than one page, so the server pages through several callbacks.
    let rows: Vec<_> = (0..600).map(|i| person(&format!("m{i}"), i)).collect();
    let mem = MemTable::with_rows("local", people_columns(), rows.clone()).unwrap();
    let local = TableRef::new(mem.clone());
    assert!(local.is_local());
    assert_eq!(within(people.import(local.clone())).await.unwrap(), 600);
    assert_eq!(people.count().await.unwrap(), 601);
    let all = people.scan(None, 1000).await.unwrap();
    let imported: Vec<_> = all.into_iter().skip(1).map(|(_, v)| v).collect();
    assert_eq!(imported, rows);

    // A table whose rows do not fit: nothing is imported.
    let other = MemTable::with_rows(
        "other",
        vec![Column::new("x", ValueType::Int)],
        vec![vec![Value::Int(1)]],
    )
    .unwrap();
    assert!(matches!(
        people.import(TableRef::new(other)).await,
        Err(DbError::WrongColumnCount { .. })
    ));
    assert_eq!(people.count().await.unwrap(), 601);

    // A source whose second page does not fit: the first page, already
    // written, is taken back, and watchers are told.
    let mut rows: Vec<_> = (0..1500).map(|i| person(&format!("b{i}"), i)).collect();
    rows[1200][1] = Value::Text("not an age".into());
    let loose: Vec<Column> = people_columns()
        .into_iter()
        .map(|c| Column::new(c.name, ValueType::Any))
        .collect();
    let bad = MemTable::with_rows("bad", loose, rows).unwrap();
    assert!(matches!(
        within(people.import(TableRef::new(bad))).await,
        Err(DbError::TypeMismatch { .. })
    ));
    assert_eq!(people.count().await.unwrap(), 601);
    // Importing a table into itself copies what it had when it began.
    assert_eq!(within(people.import(people.clone())).await.unwrap(), 601);
    assert_eq!(people.count().await.unwrap(), 1202);

    // The other way round: the client table imports the server's.
    let copy = MemTable::new("copy", people_columns());
    assert_eq!(copy.import(people.clone()).await.unwrap(), 1202);
    assert_eq!(copy.rows().len(), 1202);
    server.shutdown().await;
}

#[tokio::test]
async fn references_to_a_dropped_table_give_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (_client, db) = connect(&server.addr().to_string()).await;
    let t = db.create_table("t".into(), people_columns()).await.unwrap();
    let row = t.insert(person("ann", 1)).await.unwrap();
    let cell = t.cell(row, "name".into()).await.unwrap();
    db.drop_table("t".into()).await.unwrap();

    let gone =
        |r: Result<_, DbError>| matches!(r, Err(DbError::NoLongerExists { table }) if table == "t");
    assert!(gone(t.count().await.map(|_| ())));
    assert!(gone(t.insert(person("bob", 2)).await.map(|_| ())));
    assert!(gone(cell.get().await.map(|_| ())));
    assert!(gone(cell.set(Value::Text("x".into())).await));

    // A new table of the same name is another table: the old references stay dead.
    let t2 = db.create_table("t".into(), people_columns()).await.unwrap();
    t2.insert(person("carl", 3)).await.unwrap();
    assert_ne!(t2.capability(), t.capability());
    assert!(gone(t.count().await.map(|_| ())));
    assert!(gone(cell.get().await.map(|_| ())));
    assert_eq!(t2.count().await.unwrap(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_side_table_calls_its_watchers_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let (_client, db) = connect(&server.addr().to_string()).await;
    let mem = MemTable::with_rows("mem", people_columns(), vec![person("ann", 30)]).unwrap();
    let local = TableRef::new(mem.clone());
    let (ttx, mut table_rx) = mpsc::unbounded_channel();
    local
        .watch(TableListenerRef::new(TableProbe(ttx)))
        .await
        .unwrap();
    let age = local.cell(1, "age".into()).await.unwrap();
    let (ctx, mut cell_rx) = mpsc::unbounded_channel();
    age.watch(CellListenerRef::new(CellProbe(ctx)))
        .await
        .unwrap();

    // The server imports from it while it is watched: the server's reads
    // change nothing, its own writes go elsewhere.
    let people = db
        .create_table("people".into(), people_columns())
        .await
        .unwrap();
    assert_eq!(within(people.import(local.clone())).await.unwrap(), 1);
    let bob = local.insert(person("bob", 40)).await.unwrap();
    age.set(Value::Int(31)).await.unwrap();
    local
        .update_cells(1, vec![("age".into(), Value::Int(32))])
        .await
        .unwrap();
    local.delete(bob).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(within(table_rx.recv()).await.unwrap());
    }
    assert_eq!(
        seen,
        vec![
            TableChange::Inserted {
                row: bob,
                values: person("bob", 40)
            },
            TableChange::CellSet {
                row: 1,
                column: "age".into(),
                value: Value::Int(31)
            },
            TableChange::Updated {
                row: 1,
                values: person("ann", 32)
            },
            TableChange::Deleted { row: bob },
        ]
    );
    assert_eq!(within(cell_rx.recv()).await.unwrap(), Value::Int(31));
    assert_eq!(within(cell_rx.recv()).await.unwrap(), Value::Int(32));
    server.shutdown().await;
}
