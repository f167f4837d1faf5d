#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! The three real binaries as processes: `nameserver`, `dbserver
//! --nameserver ADDR --data DIR` and `client`. A session through all three;
//! `dbserver` killed with SIGKILL in the middle of a stream of `client
//! insert`s and restarted on the same data directory, every acknowledged row
//! then found by `client scan`; `client ls` showing both servers' contexts.
//!
//! The binaries are looked up next to this test executable (see `common`);
//! build them first with `cargo build --workspace --bins`.

mod common;

use common::{WAIT, client, ok, restart_dbserver, start_dbserver, start_nameserver};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn a_session_through_three_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (_ns, ns) = start_nameserver();
    let (_db, _) = start_dbserver(&ns, &dir.path().join("data"), "127.0.0.1:0").unwrap();

    let ls = ok(&ns, &["ls"]);
    assert!(ls.contains("context  dbserver"), "{ls}");
    assert!(ls.contains("context  nameserver"), "{ls}");
    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "ls", "dbserver"])).unwrap();
    // Sorted by name: the data manager, then the database.
    assert_eq!(j["entries"][0]["name"], "data");
    assert_eq!(j["entries"][1]["name"], "db");
    assert_eq!(j["entries"][1]["kind"], "object");

    ok(
        &ns,
        &["create-table", "people", "--columns", "name:text,born:int"],
    );
    assert_eq!(ok(&ns, &["insert", "people", "Ada", "1815"]), "1\n");
    assert_eq!(
        ok(&ns, &["set", "people", "1", "born", "1816"]),
        "people[1].born = 1816\n"
    );
    assert_eq!(ok(&ns, &["get", "people", "1", "born"]), "1816\n");
    assert_eq!(
        ok(&ns, &["scan", "people"]),
        "id  name  born\n1   Ada   1816\n"
    );
    let bad = client(&ns, &["get", "people", "1", "nope"]);
    assert!(
        !bad.ok && bad.stdout.is_empty() && bad.stderr.lines().count() == 1,
        "{bad:?}"
    );
}

#[test]
fn acknowledged_inserts_survive_kill_9_of_dbserver() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_ns, ns) = start_nameserver();
    let (mut db, addr) = start_dbserver(&ns, &data, "127.0.0.1:0").unwrap();
    ok(&ns, &["create-table", "log", "--columns", "w:text,i:int"]);

    // Writers run `client insert` until told to stop; each keeps what was acknowledged.
    let acked: Arc<Mutex<Vec<(u64, String, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (ns, acked, stop) = (ns.clone(), Arc::clone(&acked), Arc::clone(&stop));
        writers.push(std::thread::spawn(move || {
            let who = format!("w{w}");
            let mut i = 0i64;
            while !stop.load(Ordering::SeqCst) {
                let out = client(&ns, &["insert", "log", &who, &i.to_string()]);
                if out.ok {
                    let row = out.stdout.trim().parse().unwrap();
                    acked.lock().unwrap().push((row, who.clone(), i));
                }
                i += 1;
            }
        }));
    }
    let deadline = Instant::now() + WAIT;
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "inserts too slow");
        std::thread::sleep(Duration::from_millis(10));
    }
    db.kill9();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // Restart on the same data directory (and port, if it can be bound again).
    let (_db, _) = restart_dbserver(&ns, "dbserver", &data, &addr);

    let j: serde_json::Value = serde_json::from_str(&ok(&ns, &["--json", "scan", "log"])).unwrap();
    let stored: HashMap<u64, serde_json::Value> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_u64().unwrap(), r["values"].clone()))
        .collect();
    for (row, who, i) in &acked {
        assert_eq!(
            stored.get(row),
            Some(&serde_json::json!([who, i])),
            "acknowledged row {row} lost"
        );
    }
    // At most the inserts in flight (one per writer) landed unacknowledged.
    assert!(
        stored.len() <= acked.len() + 4,
        "{} rows for {} acks",
        stored.len(),
        acked.len()
    );
    // And the restarted server takes writes again.
    ok(&ns, &["insert", "log", "after", "0"]);
}

#[test]
fn stats_of_the_servers_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let (_ns, ns) = start_nameserver();
    let (_db, db_addr) = start_dbserver(&ns, &dir.path().join("data"), "127.0.0.1:0").unwrap();
    ok(&ns, &["create-table", "t", "--columns", "n:int"]);
    ok(&ns, &["insert", "t", "1"]);
    common::fails(&ns, 1, &["get", "t", "9", "n"]);

    let text = ok(&ns, &["stats", "dbserver"]);
    assert!(
        text.starts_with("node         dbserver (") && text.contains(&format!("at {db_addr}")),
        "{text}"
    );
    for line in [
        "objects ",
        "calls ",
        "transfers ",
        "bytes ",
        "data items ",
        "connections ",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "{line}: {text}");
    }
    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "stats", "dbserver"])).unwrap();
    assert_eq!(j["addr"], db_addr.as_str());
    let s = &j["stats"];
    // Served so far: create-table, insert, the failed get, each with the
    // lookups of their table; the failed one counted as failed.
    assert!(s["calls_served"].as_u64().unwrap() >= 5, "{j}");
    assert!(s["calls_failed"].as_u64().unwrap() >= 1, "{j}");
    assert!(s["exports"].as_u64().unwrap() >= 2, "{j}");
    assert!(s["bytes_received"].as_u64().unwrap() > 0, "{j}");
    // Its connections: at least the name server's and this client's.
    let peers = j["peers"].as_array().unwrap();
    assert!(peers.len() >= 2, "{j}");
    assert!(peers.iter().any(|p| p["addr"] == ns.as_str()), "{j}");

    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "stats", "nameserver"])).unwrap();
    assert_eq!(j["addr"], ns.as_str());
    assert!(j["stats"]["connections"].as_u64().unwrap() >= 2, "{j}");

    // A context that names no node, and one that does not exist: one line each.
    let msg = common::fails(&ns, 1, &["stats", "nowhere"]);
    assert!(msg.contains("not found"), "{msg}");
    ok(&ns, &["create-db", "extra"]);
    let ok_extra = ok(&ns, &["stats", "dbserver"]);
    assert!(ok_extra.contains(&db_addr), "{ok_extra}");
}

#[test]
fn describe_and_ls_long_show_classes_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let (_ns, ns) = start_nameserver();
    let (_db, _) = start_dbserver(&ns, &dir.path().join("data"), "127.0.0.1:0").unwrap();

    let ls = ok(&ns, &["ls", "-l", "dbserver"]);
    assert!(ls.contains("object   db  db.Database\n"), "{ls}");
    assert!(ls.contains("object   data  rpc.DataManager\n"), "{ls}");
    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "ls", "-l", "dbserver"])).unwrap();
    assert_eq!(j["entries"][1]["class"], "db.Database", "{j}");

    let text = ok(&ns, &["describe", "dbserver/db"]);
    assert!(
        text.starts_with("dbserver/db: db.Database\n  The database: a set of named tables.\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  create_table(name: String, columns: Vec<Column>) -> Result<TableRef, DbError>\n      Creates an empty table and returns a reference to it.\n"
        ),
        "{text}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "describe", "dbserver/data"])).unwrap();
    assert_eq!(j["class"], "rpc.DataManager");
    let put = j["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "put")
        .unwrap();
    assert_eq!(
        put["args"][0],
        serde_json::json!({"name": "data", "type": "Blob"})
    );
    assert_eq!(put["ok"], "DataRef");
    assert_eq!(put["err"], "DataError");
    assert!(!put["doc"].as_str().unwrap().is_empty());
    // The name server's own contexts describe themselves too.
    assert!(ok(&ns, &["describe", "dbserver"]).starts_with("dbserver: nameserver.NameContext\n"));

    let msg = common::fails(&ns, 1, &["describe", "nowhere/x"]);
    assert!(msg.contains("not found"), "{msg}");
}

#[test]
fn call_invokes_any_method_with_json_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let (_ns, ns) = start_nameserver();
    let (_db, _) = start_dbserver(&ns, &dir.path().join("data"), "127.0.0.1:0").unwrap();
    ok(
        &ns,
        &["create-table", "people", "--columns", "name:text,age:int"],
    );
    ok(&ns, &["insert", "people", "ann", "30"]);

    // The database: a reference comes back as cap:<hex>, which call takes as PATH.
    let table = ok(&ns, &["call", "dbserver/db", "open_table", "people"]);
    let table = table.trim().trim_matches('"').to_owned();
    assert!(table.starts_with("cap:"), "{table}");
    assert_eq!(
        ok(&ns, &["call", &table, "get_row", "1"]),
        "[{\"text\":\"ann\"},{\"int\":30}]\n"
    );
    assert_eq!(
        ok(
            &ns,
            &["call", &table, "insert", r#"[{"text":"bob"},{"int":41}]"#]
        ),
        "2\n"
    );
    let j: serde_json::Value =
        serde_json::from_str(&ok(&ns, &["--json", "call", &table, "count"])).unwrap();
    assert_eq!(j["result"], 2);
    // A cell, through the reference the table returns.
    let cell = ok(&ns, &["call", &table, "cell", "2", "age"]);
    let cell = cell.trim().trim_matches('"').to_owned();
    ok(&ns, &["call", &cell, "set", r#"{"int":42}"#]);
    assert_eq!(ok(&ns, &["get", "people", "2", "age"]), "42\n");
    // The name server's contexts and the data manager.
    let listed = ok(&ns, &["call", "dbserver", "list", ""]);
    assert!(
        listed.contains(r#"{"kind":"Object","name":"db"}"#),
        "{listed}"
    );
    assert_eq!(ok(&ns, &["call", "dbserver/data", "list"]), "[]\n");

    // Each bad input: one line, status 1, nothing changed.
    for (bad, says) in [
        (&["call", &table, "nope"][..], "has no method `nope`"),
        (&["call", &table, "get_row"], "expected 1 arguments, got 0"),
        (&["call", &table, "get_row", "\"x\""], "argument `row`"),
        (
            &["call", &table, "get_row", "99"],
            r#"get_row failed: {"NoSuchRow":{"row":99,"table":"people"}}"#,
        ),
        (&["call", "nowhere/x", "count"], "not found"),
        (&["call", "cap:00", "count"], "is not a capability"),
    ] {
        let msg = common::fails(&ns, 1, bad);
        assert!(msg.contains(says), "{bad:?}: {msg}");
    }
    assert_eq!(ok(&ns, &["call", &table, "count"]), "2\n");
}

/// `GET path` over a plain TCP connection; the status line and the body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[test]
fn servers_export_prometheus_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut ns = common::Proc::spawn(std::process::Command::new(common::bin("nameserver")).args([
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ]));
    let ns_metrics = ns.line("metrics ");
    let ns_addr = ns.line("listening ");
    let mut db = common::Proc::spawn(
        std::process::Command::new(common::bin("dbserver"))
            .args(["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
            .args(["--nameserver", &ns_addr, "--data"])
            .arg(dir.path().join("data")),
    );
    let db_metrics = db.line("metrics ");
    db.line("listening ");
    ok(&ns_addr, &["create-table", "t", "--columns", "n:int"]);
    ok(&ns_addr, &["insert", "t", "1"]);
    common::fails(&ns_addr, 1, &["get", "t", "9", "n"]);

    let (status, text) = http_get(&db_metrics, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    for want in [
        r#"rpc_calls_total{class="db.Database",method="create_table",outcome="ok"} 1"#,
        r#"rpc_calls_total{class="db.Table",method="insert",outcome="ok"} 1"#,
        r#"rpc_calls_total{class="db.Table",method="get_row",outcome="error"} 1"#,
        r#"rpc_call_duration_seconds_bucket{class="db.Table",method="insert",le="+Inf"} 1"#,
        "rpc_connections ",
        "rpc_exports ",
        "rpc_leases_given ",
        "rpc_transfers_in ",
        "rpc_bytes_received_total ",
        "data_items ",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    let (_, text) = http_get(&ns_metrics, "/metrics");
    assert!(text.contains("nameserver_entries "), "{text}");
    assert!(text.contains(r#"class="nameserver.NameContext""#), "{text}");
    let (status, _) = http_get(&db_metrics, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}
