#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Class-based creation through the real binaries: each `dbserver` offers
//! the class `db.Database`, `client ls` shows who offers it, `client
//! create-db NAME --on NODE` makes a database on that server bound as
//! `NODE/NAME`, `--db` selects it, its bad inputs are one-line errors, and
//! it survives a restart of its server.

mod common;

use common::{fails, ok, restart_dbserver, start_named_dbserver, start_nameserver};

#[test]
fn databases_are_made_by_class_based_creation_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (_ns, ns) = start_nameserver();
    let (_main, main_addr) =
        start_named_dbserver(&ns, "dbserver", &dir.path().join("main"), "127.0.0.1:0").unwrap();
    let archive_data = dir.path().join("archive");
    let (mut archive, archive_addr) =
        start_named_dbserver(&ns, "archive", &archive_data, "127.0.0.1:0").unwrap();

    // Each server offers the class in its context.
    let ls = ok(&ns, &["ls", "archive"]);
    let class_line = ls.lines().find(|l| l.starts_with("class")).unwrap();
    assert!(
        class_line.starts_with("class    db.Database  offered by "),
        "{ls}"
    );
    assert!(
        class_line.contains(&main_addr) && class_line.contains(&archive_addr),
        "{ls}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "ls", "dbserver"])).unwrap();
    let class = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "class")
        .unwrap();
    assert_eq!(class["name"], "db.Database");
    assert_eq!(class["offered_by"].as_array().unwrap().len(), 2);

    // Made on the server asked for, bound under its context.
    assert_eq!(
        ok(&ns, &["create-db", "sales", "--on", "archive"]),
        format!("created database archive/sales on {archive_addr}\n")
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "create-db", "spare"])).unwrap();
    let spare = j["database"].as_str().unwrap().to_owned();
    assert!(spare.ends_with("/spare"), "{j}");
    assert!(ok(&ns, &["ls", "archive"]).contains("object   sales"));

    // --db selects it; it is a database of its own.
    ok(
        &ns,
        &[
            "--db",
            "archive/sales",
            "create-table",
            "orders",
            "--columns",
            "n:int",
        ],
    );
    ok(&ns, &["--db", "archive/sales", "insert", "orders", "7"]);
    assert_eq!(
        ok(&ns, &["--db", "archive/sales", "scan", "orders"]),
        "id  n\n1   7\n"
    );
    assert_eq!(ok(&ns, &["tables"]), "\n");
    assert_eq!(ok(&ns, &["--db", "archive/db", "tables"]), "\n");

    // Bad inputs: one line each.
    for bad in [
        &["create-db", "sales", "--on", "archive"][..],
        &["create-db", "db", "--on", "archive"],
        &["create-db", "a/b", "--on", "archive"],
        &["create-db", "x", "--on", "nowhere"],
    ] {
        fails(&ns, 1, bad);
    }

    // Kept across a restart of its server, name and rows.
    archive.terminate();
    let (_archive, _) = restart_dbserver(&ns, "archive", &archive_data, &archive_addr);
    assert_eq!(
        ok(&ns, &["--db", "archive/sales", "scan", "orders"]),
        "id  n\n1   7\n"
    );
    assert!(ok(&ns, &["ls", "archive"]).contains("object   sales"));
}
