//! Unit tests of the store, against real redb files in temporary directories.
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
    store.insert("people", person("ann", 30)).unwrap();
    store.drop_table("people").unwrap();

    let new = store.create_table("people", people_columns()).unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!(store.count("people").unwrap(), 0);
    assert_eq!(store.insert("people", person("bob", 1)).unwrap(), 1);
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
    let ann = store.insert("people", person("ann", 30)).unwrap();
    let bob = store.insert("people", person("bob", 40)).unwrap();
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
        .update_row("people", bob, person("robert", 41))
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
    let carl = store.insert("people", person("carl", 5)).unwrap();
    assert!(carl > bob);
    assert_eq!(store.table("people").unwrap().next_row, carl + 1);
}

#[test]
fn scan_pages_by_row_id() {
    let (_dir, store) = open_people();
    let ids: Vec<u64> = (0..10)
        .map(|i| store.insert("people", person(&format!("p{i}"), i)).unwrap())
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
    let row = store.insert("people", person("ann", 30)).unwrap();

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
    let row = store.insert("people", person("ann", 30)).unwrap();

    assert_eq!(
        store.table("ghosts").unwrap_err(),
        DbError::NoSuchTable {
            table: "ghosts".into()
        }
    );
    assert!(matches!(
        store.insert("ghosts", vec![]),
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
        store.update_row("people", 999, person("x", 1)).unwrap_err(),
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
            .insert("people", vec![Value::Text("ann".into())])
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
    let row = store.insert("people", person("ann", 30)).unwrap();
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
        store.update_row("people", row, bad.clone()),
        Err(DbError::TypeMismatch { ref column, .. }) if column == "score"
    ));
    assert!(matches!(
        store.insert("people", bad.clone()),
        Err(DbError::TypeMismatch { .. })
    ));
    assert!(matches!(
        store.compare_and_set("people", row, "age", &Value::Int(30), Value::Bytes(vec![])),
        Err(DbError::TypeMismatch { .. })
    ));
    assert!(matches!(
        store.update_row("people", row, vec![]),
        Err(DbError::WrongColumnCount { .. })
    ));

    assert_eq!(store.get_row("people", row).unwrap(), person("ann", 30));
    assert_eq!(store.count("people").unwrap(), 1);
    // Failed inserts do not burn row ids.
    assert_eq!(store.table("people").unwrap(), before_meta);
    assert_eq!(store.insert("people", person("bob", 1)).unwrap(), row + 1);
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
        let kept = store.insert("people", person("ann", 30)).unwrap();
        let deleted = store.insert("people", person("bob", 40)).unwrap();
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
    assert!(store.insert("people", person("carl", 1)).unwrap() > deleted);
}

#[test]
fn dropped_without_close_keeps_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clone = store.clone();
    store.create_table("people", people_columns()).unwrap();
    let ids: Vec<u64> = (0..20)
        .map(|i| clone.insert("people", person("p", i)).unwrap())
        .collect();
    // A failed write right before the "crash" must not leave anything.
    assert!(store.insert("people", vec![Value::Int(1)]).is_err());
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
                    .map(|i| store.insert("people", person("p", t * 100 + i)).unwrap())
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
        .insert_many("people", vec![person("a", 1), person("b", 2)])
        .unwrap();
    assert_eq!(ids, vec![1, 2]);
    let mut bad = person("c", 3);
    bad[1] = Value::Text("x".into());
    assert!(matches!(
        store.insert_many("people", vec![person("d", 4), bad]),
        Err(DbError::TypeMismatch { .. })
    ));
    assert_eq!(store.count("people").unwrap(), 2);
    assert_eq!(store.insert("people", person("e", 5)).unwrap(), 3);
}

#[test]
fn concurrent_writers_share_commits_and_a_rejected_write_spoils_none() {
    let (_dir, store) = open_people();
    let row = store.insert("people", person("ann", 30)).unwrap();
    let before = store.commits();
    let threads = 32;
    let per_thread = 10;
    let start = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (store, start) = (store.clone(), std::sync::Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut ids = Vec::new();
                for i in 0..per_thread {
                    if t % 4 == 0 && i % 2 == 0 {
                        // Rejected in the same batches as the good writes.
                        let bad = store.set_cell("people", row, "age", Value::Text("x".into()));
                        assert!(matches!(bad, Err(DbError::TypeMismatch { .. })), "{bad:?}");
                    } else {
                        ids.push(store.insert("people", person("p", t as i64)).unwrap());
                    }
                }
                ids
            })
        })
        .collect();
    let ids: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let writes = threads * per_thread;
    let commits = store.commits() - before;
    assert!(
        commits < ids.len() as u64,
        "{commits} commits for {} acknowledged writes of {writes}",
        ids.len()
    );
    assert_eq!(store.count("people").unwrap(), ids.len() as u64 + 1);
    for id in ids {
        store.get_row("people", id).unwrap();
    }
    assert_eq!(
        store.get_cell("people", row, "age").unwrap(),
        Value::Int(30)
    );
}

#[test]
fn a_key_with_an_id_does_not_follow_a_recreated_name() {
    let (_dir, store) = open_people();
    let old = store.table("people").unwrap();
    let row = store.insert(&old, person("ann", 30)).unwrap();
    store.drop_table(&old).unwrap();
    let gone = |e: DbError| matches!(e, DbError::NoLongerExists { ref table } if table == "people");
    assert!(gone(store.get_row(&old, row).unwrap_err()));
    store.create_table("people", people_columns()).unwrap();
    assert!(gone(store.insert(&old, person("bob", 1)).unwrap_err()));
    assert!(gone(
        store.set_cell(&old, row, "age", Value::Int(1)).unwrap_err()
    ));
    assert!(gone(store.table(&old).unwrap_err()));
    assert_eq!(store.count("people").unwrap(), 0);
    assert!(matches!(
        store.update_cells("people", 1, vec![]),
        Err(DbError::NoSuchRow { .. })
    ));
}

#[test]
fn update_cells_is_all_or_nothing() {
    let (_dir, store) = open_people();
    let row = store.insert("people", person("ann", 30)).unwrap();
    let now = store
        .update_cells(
            "people",
            row,
            vec![
                ("age".into(), Value::Int(31)),
                ("extra".into(), Value::Int(7)),
            ],
        )
        .unwrap();
    assert_eq!(now[1], Value::Int(31));
    assert_eq!(store.get_row("people", row).unwrap(), now);
    for bad in [
        vec![
            ("age".into(), Value::Int(40)),
            ("nope".into(), Value::Int(1)),
        ],
        vec![
            ("age".into(), Value::Int(40)),
            ("name".into(), Value::Int(1)),
        ],
    ] {
        assert!(store.update_cells("people", row, bad).is_err());
    }
    assert_eq!(store.get_row("people", row).unwrap(), now);
}

fn big(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ seed).collect()
}

fn read_out(reader: &ChunkReader) -> Vec<u8> {
    use rpc_core::ReadAt;
    let mut out = vec![0u8; reader.size() as usize];
    // In uneven steps, across chunk boundaries.
    let mut at = 0usize;
    while at < out.len() {
        let n = (out.len() - at).min(300_001);
        reader
            .read_exact_at(&mut out[at..at + n], at as u64)
            .unwrap();
        at += n;
    }
    out
}

#[test]
fn large_bytes_live_out_of_line_and_are_freed_with_their_cell() {
    let (_dir, store) = open_people();
    let data = big(3 * (1 << 20) + 7, 1);
    let row = store.insert("people", person("ann", 30)).unwrap();
    store
        .set_cell("people", row, "extra", Value::Bytes(data.clone()))
        .unwrap();
    let placeholder = Value::Blob {
        size: data.len() as u64,
    };
    // Rows, cells and scans show the size; the other cells read as before.
    assert_eq!(store.get_cell("people", row, "extra").unwrap(), placeholder);
    assert_eq!(store.get_row("people", row).unwrap()[3], placeholder);
    assert_eq!(
        store.get_cell("people", row, "age").unwrap(),
        Value::Int(30)
    );
    let (value, reader) = store.cell_bytes("people", row, "extra").unwrap();
    assert_eq!(value, placeholder);
    let reader = reader.unwrap();
    // The reader keeps its snapshot when the cell changes under it.
    store
        .set_cell("people", row, "extra", Value::Bytes(vec![1, 2]))
        .unwrap();
    assert!(read_out(&reader) == data);
    drop(reader);
    assert_eq!(store.large_rows(), (0, 0), "overwriting freed the chunks");
    assert_eq!(
        store.get_cell("people", row, "extra").unwrap(),
        Value::Bytes(vec![1, 2])
    );

    // Inserted, kept by an update that leaves the placeholder, freed by a delete.
    let mut row2 = person("bob", 40);
    row2[3] = Value::Bytes(big(100_000, 2));
    let id = store.insert("people", row2).unwrap();
    let mut now = store.get_row("people", id).unwrap();
    assert_eq!(now[3], Value::Blob { size: 100_000 });
    now[1] = Value::Int(41);
    store.update_row("people", id, now.clone()).unwrap();
    let (_, reader) = store.cell_bytes("people", id, "extra").unwrap();
    assert!(read_out(&reader.unwrap()) == big(100_000, 2));
    assert!(store.large_rows().0 > 0);
    store.delete_row("people", id).unwrap();
    assert_eq!(store.large_rows(), (0, 0));

    // Dropping the table frees its values.
    store
        .set_cell("people", row, "extra", Value::Bytes(big(70_000, 3)))
        .unwrap();
    store.drop_table("people").unwrap();
    assert_eq!(store.large_rows(), (0, 0));
}

#[test]
fn placeholders_cannot_be_written_or_compared() {
    let (_dir, store) = open_people();
    let row = store.insert("people", person("ann", 30)).unwrap();
    let ph = Value::Blob { size: 1 };
    let unsupported = |r: Result<(), DbError>| matches!(r, Err(DbError::Unsupported { .. }));
    assert!(unsupported(store.set_cell(
        "people",
        row,
        "extra",
        ph.clone()
    )));
    let mut r = person("x", 1);
    r[3] = ph.clone();
    assert!(matches!(
        store.insert("people", r.clone()),
        Err(DbError::Unsupported { .. })
    ));
    assert!(unsupported(store.update_row("people", row, r)));
    assert!(unsupported(store.compare_and_set(
        "people",
        row,
        "extra",
        &ph,
        Value::Null
    )));
    assert_eq!(store.get_row("people", row).unwrap(), person("ann", 30));
}

#[test]
fn streamed_values_are_linked_or_leave_nothing() {
    use rpc_core::ChunkSink;
    let dir = tempfile::tempdir().unwrap();
    let data = big(20 * (1 << 20) + 11, 4);
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_table("people", people_columns()).unwrap();
        let row = store.insert("people", person("ann", 30)).unwrap();
        // Linked: the cell shows the value.
        let mut w = store.blob_writer();
        let pending = w.pending();
        for part in data.chunks(777_777) {
            w.write(part).unwrap();
        }
        w.finish().unwrap();
        drop(w);
        store
            .link_blob("people", row, "extra", pending, data.len() as u64)
            .unwrap();
        let (_, reader) = store.cell_bytes("people", row, "extra").unwrap();
        assert!(read_out(&reader.unwrap()) == data);
        assert_eq!(store.large_rows().1, 0, "linked: no longer pending");
        let chunks = store.large_rows().0;
        // A column that takes no bytes, or a used blob, is refused.
        assert!(matches!(
            store.link_blob("people", row, "age", pending, 1),
            Err(DbError::TypeMismatch { .. })
        ));
        assert!(store.link_blob("people", row, "extra", pending, 1).is_err());
        // Dropped unfinished: what it wrote goes.
        let mut w = store.blob_writer();
        w.write(&data).unwrap();
        drop(w);
        // Finished but never linked: left pending until the store reopens.
        let mut w = store.blob_writer();
        w.write(&data[..9 << 20]).unwrap();
        w.finish().unwrap();
        drop(w);
        // The clean-up above is queued, not awaited: one more write orders it.
        store.identity("sync").unwrap();
        assert_eq!(
            store.large_rows(),
            (
                chunks + (9u64 << 20).div_ceil(super::large::CHUNK as u64),
                1
            )
        );
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.large_rows().1, 0);
    let (_, reader) = store.cell_bytes("people", 1, "extra").unwrap();
    let reader = reader.unwrap();
    assert_eq!(
        store.large_rows().0,
        (data.len() as u64).div_ceil(super::large::CHUNK as u64)
    );
    assert!(read_out(&reader) == data);
}
