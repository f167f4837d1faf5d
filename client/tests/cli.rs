#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! The real `client` binary against a name server and a database server
//! running in this test process: a whole session (text and `--json`), a
//! watcher called back while other client processes write, `import-csv`
//! through callbacks, the benchmark, the `data` commands and cells holding
//! data ids, and every kind of bad input giving one line on standard error,
//! a non-zero status and no change in the store.

use dbserver::Value;
use dbserver::api::{Database, DatabaseRef, TableInfo};
use dbserver::server::DbServer;
use nameserver::client::NameClient;
use nameserver::server::NameServer;
use rpc_core::{Config, Node};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use test_support::{Output as Out, Proc};

/// Upper bound of any single wait.
const WAIT: Duration = Duration::from_secs(30);
const CLIENT: &str = env!("CARGO_BIN_EXE_client");

/// A name server and a database server (bound as `dbserver/db`) on their own
/// multi-thread runtime, so that they keep serving while the test blocks on
/// client processes.
struct Env {
    ns_addr: String,
    /// The database as the test checks it, through the name server.
    db: Option<DatabaseRef>,
    checker: Option<(Node, NameClient)>,
    db_server: Option<DbServer>,
    ns: Option<(Node, NameServer)>,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Env {
    fn start() -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (ns, ns_addr, db_server, checker, db) = rt.block_on(within(async {
            let ns_node = Node::new(Config::default());
            let ns_addr = ns_node.listen("127.0.0.1:0").await.unwrap().to_string();
            let ns = NameServer::install(&ns_node, nameserver::server::DEFAULT_LEASE).unwrap();
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let server = DbServer::start(l, &data).await.unwrap();
            let names = NameClient::connect_as(server.node(), &ns_addr, "dbserver")
                .await
                .unwrap();
            server.register(names).await.unwrap();
            let node = Node::new(Config::default());
            let looker = NameClient::connect(&node, &ns_addr).await.unwrap();
            let db: DatabaseRef = looker.resolve("dbserver/db").await.unwrap();
            ((ns_node, ns), ns_addr, server, (node, looker), db)
        }));
        Env {
            ns_addr,
            db: Some(db),
            checker: Some(checker),
            db_server: Some(db_server),
            ns: Some(ns),
            dir,
            rt,
        }
    }

    fn db(&self) -> &DatabaseRef {
        self.db.as_ref().unwrap()
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The client binary with `--nameserver` set, and no `NAMESERVER` from outside.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(CLIENT);
        c.env_remove("NAMESERVER")
            .env_remove("RUST_LOG")
            .args(["--nameserver", &self.ns_addr])
            .args(args);
        c
    }

    /// Runs the client to the end.
    fn client(&self, args: &[&str]) -> Out {
        run(self.command(args))
    }

    /// Runs the client and expects success; returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.client(args);
        assert!(
            out.ok && out.stderr.is_empty(),
            "client {args:?} failed:\n{}{}",
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    fn tables(&self) -> Vec<TableInfo> {
        self.rt.block_on(within(self.db().list_tables())).unwrap()
    }

    fn rows(&self, table: &str) -> Vec<(u64, Vec<Value>)> {
        self.rt
            .block_on(within(async {
                let t = self.db().open_table(table.to_owned()).await?;
                dbserver::api::read_all(&t, 100).await
            }))
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let db = self.db.take();
        let checker = self.checker.take();
        let server = self.db_server.take();
        let ns = self.ns.take();
        self.rt.block_on(async {
            drop(db);
            drop(checker);
            if let Some(server) = server {
                let _ = tokio::time::timeout(WAIT, server.shutdown()).await;
            }
            if let Some((node, ns)) = ns {
                drop(ns);
                let _ = tokio::time::timeout(WAIT, node.shutdown()).await;
            }
        });
    }
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("step timed out")
}

fn run(mut cmd: Command) -> Out {
    Proc::spawn(&mut cmd).with_wait(WAIT).finish()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn a_session_in_text_and_json() {
    let env = Env::start();
    let ls = env.ok(&["ls"]);
    assert!(ls.contains("context  dbserver"), "{ls}");
    assert!(env.ok(&["ls", "dbserver"]).contains("object   db"));
    assert_eq!(
        env.ok(&[
            "create-table",
            "people",
            "--columns",
            "name:text,born:int,note"
        ]),
        "created table people (name:text,born:int,note:any)\n"
    );
    assert_eq!(
        env.ok(&["insert", "people", "Ada Lovelace", "1815", "null"]),
        "1\n"
    );
    assert_eq!(env.ok(&["insert", "people", "007", "1912", "2.5"]), "2\n");
    assert_eq!(env.ok(&["get", "people", "1", "born"]), "1815\n");
    assert_eq!(env.ok(&["get", "people", "2", "name"]), "007\n");
    assert_eq!(
        env.ok(&["set", "people", "1", "born", "1816"]),
        "people[1].born = 1816\n"
    );
    assert_eq!(
        env.ok(&["scan", "people"]),
        "id  name          born  note\n1   Ada Lovelace  1816  null\n2   007           1912  2.5\n"
    );
    assert_eq!(env.ok(&["tables"]), "people  name:text,born:int,note:any\n");

    // The same through --json, each output one JSON document.
    let j = json(&env.ok(&["--json", "insert", "people", "Alan", "-1", "x y"]));
    assert_eq!(j["row"], 3);
    let j = json(&env.ok(&["--json", "set", "people", "3", "note", "1e3"]));
    assert_eq!(j["value"], 1000.0);
    let j = json(&env.ok(&["--json", "get", "people", "3", "born"]));
    assert_eq!(j["value"], -1);
    let j = json(&env.ok(&["--json", "scan", "people"]));
    assert_eq!(j["table"], "people");
    assert_eq!(j["columns"][1]["type"], "int");
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0]["values"],
        serde_json::json!(["Ada Lovelace", 1816, null])
    );
    assert_eq!(rows[1]["values"], serde_json::json!(["007", 1912, 2.5]));
    assert_eq!(rows[2]["values"], serde_json::json!(["Alan", -1, 1000.0]));
    let j = json(&env.ok(&["--json", "tables"]));
    assert_eq!(j["tables"][0]["name"], "people");
    let j = json(&env.ok(&["--json", "ls"]));
    let names: Vec<&str> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"dbserver") && names.contains(&"nameserver"),
        "{j}"
    );
    assert_eq!(j["entries"][0]["kind"], "context");

    // NAMESERVER from the environment; --db naming the database explicitly.
    let mut c = Command::new(CLIENT);
    c.env("NAMESERVER", &env.ns_addr)
        .args(["--db", "dbserver/db", "get", "people", "1", "born"]);
    let out = run(c);
    assert!(out.ok, "{out:?}");
    assert_eq!(out.stdout, "1816\n");

    let j = json(&env.ok(&["--json", "drop-table", "people"]));
    assert_eq!(j["dropped"], "people");
    assert!(env.tables().is_empty());
}

#[test]
fn a_watcher_is_called_back_while_other_clients_write() {
    let env = Env::start();
    env.ok(&["create-table", "w", "--columns", "n:int"]);
    env.ok(&["insert", "w", "0"]);
    let mut cell = Proc::spawn(&mut env.command(&["watch", "w", "1", "n", "--count", "2"]));
    let mut table = Proc::spawn(&mut env.command(&["--json", "watch", "w", "--count", "2"]));
    // Both listeners are registered once the notice is printed.
    cell.stderr_line("watching w[1].n");
    table.stderr_line("watching w");
    env.ok(&["set", "w", "1", "n", "41"]);
    env.ok(&["set", "w", "1", "n", "42"]);
    let out = cell.finish();
    assert!(out.ok, "{out:?}");
    assert_eq!(out.stdout, "set w[1].n = 41\nset w[1].n = 42\n");
    let out = table.finish();
    assert!(out.ok, "{out:?}");
    let lines: Vec<serde_json::Value> = out.stdout.lines().map(json).collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    for (line, v) in lines.iter().zip([41, 42]) {
        assert_eq!(line["table"], "w");
        assert_eq!(line["change"], "set");
        assert_eq!(line["row"], 1);
        assert_eq!(line["column"], "n");
        assert_eq!(line["value"], v);
    }
}

#[test]
fn import_csv_is_pulled_through_callbacks() {
    let env = Env::start();
    let file = env.dir().join("books.csv");
    std::fs::write(
        &file,
        "title:text,year:int,note\n\
         \"Structure and Interpretation of Computer Programs\",1985,classic\n\
         \"Gödel, Escher, Bach\",1979,\n\
         007,1953,\"said \"\"hi\"\"\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(
        env.ok(&["import-csv", "books", f]),
        "imported 3 rows into books (table created)\n"
    );
    let scan = env.ok(&["scan", "books"]);
    assert!(
        scan.lines()
            .any(|l| l.starts_with("2   Gödel, Escher, Bach ") && l.ends_with("1979  null")),
        "{scan}"
    );
    assert!(scan.contains("007"), "{scan}");
    let rows = env.rows("books");
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[2].1,
        vec![
            Value::Text("007".into()),
            Value::Int(1953),
            Value::Text("said \"hi\"".into())
        ]
    );
    // Into the existing table, with a header of names only.
    let more = env.dir().join("more.csv");
    std::fs::write(&more, "title,year,note\nDune,1965,2.5\n").unwrap();
    let j = json(&env.ok(&["--json", "import-csv", "books", more.to_str().unwrap()]));
    assert_eq!(j["imported"], 1);
    assert_eq!(j["created"], false);
    assert_eq!(env.rows("books").len(), 4);
}

#[test]
fn bad_inputs_are_one_line_errors_and_change_nothing() {
    let env = Env::start();
    env.ok(&["create-table", "t", "--columns", "name:text,n:int"]);
    env.ok(&["insert", "t", "a", "1"]);
    let tables = env.tables();
    let rows = env.rows("t");

    let dir = env.dir();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let bad_header = write("bad_header.csv", "name,other\nx,1\n");
    let bad_value = write("bad_value.csv", "name:text,n:int\nx,1\ny,abc\n");
    let bad_quote = write("bad_quote.csv", "name,n\n\"x,1\n");
    let bad_count = write("bad_count.csv", "name,n\nx\n");
    let empty = write("empty.csv", "");
    let missing = dir.join("missing.csv").to_str().unwrap().to_owned();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap().to_string();
    drop(l);

    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("unknown table", vec!["get", "nope", "1", "n"]),
        ("unknown table", vec!["insert", "nope", "1"]),
        ("unknown table", vec!["scan", "nope"]),
        ("unknown table", vec!["drop-table", "nope"]),
        ("unknown table", vec!["watch", "nope", "--count", "1"]),
        ("unknown row", vec!["get", "t", "99", "n"]),
        ("unknown row", vec!["set", "t", "99", "n", "5"]),
        ("unknown column", vec!["get", "t", "1", "zz"]),
        ("unknown column", vec!["set", "t", "1", "zz", "5"]),
        ("bad value", vec!["set", "t", "1", "n", "abc"]),
        ("bad value", vec!["set", "t", "1", "n", "2.5"]),
        ("bad value", vec!["insert", "t", "b", "abc"]),
        ("too few values", vec!["insert", "t", "b"]),
        ("too many values", vec!["insert", "t", "b", "2", "3"]),
        ("table exists", vec!["create-table", "t", "--columns", "a"]),
        (
            "bad column type",
            vec!["create-table", "u", "--columns", "a:integer"],
        ),
        (
            "empty column",
            vec!["create-table", "u", "--columns", "a,,b"],
        ),
        (
            "bad table name",
            vec!["create-table", "bad name", "--columns", "a"],
        ),
        ("csv header", vec!["import-csv", "t", &bad_header]),
        ("csv value", vec!["import-csv", "u", &bad_value]),
        ("csv value", vec!["import-csv", "t", &bad_value]),
        ("csv quote", vec!["import-csv", "t", &bad_quote]),
        ("csv fields", vec!["import-csv", "t", &bad_count]),
        ("csv empty", vec!["import-csv", "u", &empty]),
        ("csv missing", vec!["import-csv", "t", &missing]),
        ("bad row id", vec!["get", "t", "one", "n"]),
        ("missing argument", vec!["get", "t", "1"]),
        ("missing argument", vec!["create-table", "u"]),
        ("unknown command", vec!["frobnicate"]),
        ("no command", vec![]),
        ("bad count", vec!["watch", "t", "--count", "0"]),
        ("row without column", vec!["watch", "t", "1"]),
        ("unknown path", vec!["ls", "nope"]),
        ("unknown db path", vec!["--db", "nowhere/db", "tables"]),
        ("not a database", vec!["--db", "dbserver", "tables"]),
        (
            "unreachable name server",
            vec!["--nameserver", &dead, "tables"],
        ),
    ];
    for (what, args) in &cases {
        let out = env.client(args);
        assert!(!out.ok, "{what}: {args:?} succeeded: {out:?}");
        assert!(out.stdout.is_empty(), "{what}: {args:?} printed {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: {args:?} stderr: {}", out.stderr);
        assert!(lines[0].starts_with("client: "), "{what}: {}", lines[0]);
    }
    // No name server at all (neither flag nor environment): a usage error.
    let mut c = Command::new(CLIENT);
    c.env_remove("NAMESERVER").arg("tables");
    let out = run(c);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(out.stderr.contains("--nameserver"), "{out:?}");

    assert_eq!(env.tables(), tables);
    assert_eq!(env.rows("t"), rows);
    // The messages say what was wrong.
    let msg = |args: &[&str]| env.client(args).stderr;
    assert_eq!(
        msg(&["get", "nope", "1", "n"]),
        "client: database: no such table `nope`\n"
    );
    assert!(msg(&["set", "t", "1", "n", "abc"]).contains("holds int, got text"));
    assert!(msg(&["import-csv", "u", &bad_value]).contains("csv line 3"));
}

#[test]
fn bench_cells_measures_gets_and_sets() {
    let env = Env::start();
    let one = json(&env.ok(&["--json", "bench-cells", "--callers", "4", "--seconds", "1"]));
    assert_eq!(one["processes"], 1);
    assert!(one["get"]["calls"].as_u64().unwrap() > 0, "{one}");
    assert!(one["set"]["calls"].as_u64().unwrap() > 0, "{one}");
    assert_eq!(one["get"]["errors"], 0, "{one}");
    let two = env.ok(&[
        "bench-cells",
        "--callers",
        "2",
        "--seconds",
        "1",
        "--processes",
        "2",
    ]);
    assert!(
        two.starts_with("bench-cells: 2 callers x 2 process(es)"),
        "{two}"
    );
    assert!(two.contains("get:") && two.contains("set:"), "{two}");
    // Its tables are dropped afterwards.
    assert!(env.tables().is_empty());
}

#[test]
fn put_file_and_get_file_move_bytes_through_a_cell() {
    let env = Env::start();
    env.ok(&["create-table", "files", "--columns", "name:text,data:bytes"]);
    env.ok(&["insert", "files", "a", "null"]);
    let dir = tempfile::tempdir().unwrap();
    // Over the large-value threshold: pulled by the server in chunks.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let src_s = src.to_string_lossy().into_owned();
    assert_eq!(
        env.ok(&["put-file", "files", "1", "data", &src_s]),
        format!(
            "stored {} bytes from {src_s} in files[1].data\n",
            data.len()
        )
    );
    let dst = dir.path().join("dst.bin");
    let dst_s = dst.to_string_lossy().into_owned();
    let j = json(&env.ok(&["--json", "get-file", "files", "1", "data", &dst_s]));
    assert_eq!(j["bytes"], data.len() as u64);
    assert!(std::fs::read(&dst).unwrap() == data, "bytes differ");
    // A column that takes no bytes refuses, and nothing is written.
    let out = env.client(&["put-file", "files", "1", "name", &src_s]);
    assert!(!out.ok);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert_eq!(env.ok(&["get", "files", "1", "name"]), "a\n");
    // A cell that holds no bytes cannot be read as a file; no file is left.
    let none = dir.path().join("none.bin");
    let out = env.client(&["get-file", "files", "1", "name", &none.to_string_lossy()]);
    assert!(!out.ok, "{}", out.stdout);
    assert!(!none.exists());
    // A missing input file is a one-line error.
    let out = env.client(&["put-file", "files", "1", "data", "/nonexistent/file"]);
    assert!(!out.ok);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn data_commands_store_list_read_and_remove_data() {
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2_500_000u32).map(|i| (i % 241) as u8).collect();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    let src_s = src.to_string_lossy().into_owned();

    // The id alone on the first line: scripts take it as it is.
    let out = env.ok(&["data", "put", &src_s]);
    let id = out.trim().to_owned();
    assert!(id.parse::<rpc_core::DataId>().is_ok(), "{out}");
    let ls = env.ok(&["data", "ls"]);
    assert!(
        ls.contains(&format!("{id}  persistent"))
            && ls.contains(&format!("{}  dbserver", data.len())),
        "{ls}"
    );
    let j = json(&env.ok(&["--json", "data", "ls", "dbserver"]));
    assert_eq!(j[0]["data"]["id"], id.as_str());
    assert_eq!(j[0]["data"]["mode"], "persistent");
    assert_eq!(j[0]["data"]["size"], data.len() as u64);
    assert_eq!(j[0]["node"], "dbserver");

    let dst = dir.path().join("dst.bin");
    let dst_s = dst.to_string_lossy().into_owned();
    let got = env.ok(&["data", "get", &id, &dst_s]);
    assert!(
        got.starts_with(&format!(
            "wrote {} bytes of data {id} from dbserver",
            data.len()
        )),
        "{got}"
    );
    assert!(std::fs::read(&dst).unwrap() == data, "bytes differ");

    // A cell names it; reading the cell as a file reads the data.
    env.ok(&[
        "create-table",
        "photos",
        "--columns",
        "name:text,image:data",
    ]);
    let reference = format!("data:{id}");
    for name in ["front", "back", "side"] {
        env.ok(&["insert", "photos", name, &reference]);
    }
    assert_eq!(
        env.ok(&["get", "photos", "2", "image"]),
        format!("{reference}\n")
    );
    let j = json(&env.ok(&["--json", "get", "photos", "2", "image"]));
    assert_eq!(j["value"]["data"], id.as_str());
    let cell_file = dir.path().join("cell.bin");
    env.ok(&[
        "get-file",
        "photos",
        "3",
        "image",
        &cell_file.to_string_lossy(),
    ]);
    assert!(std::fs::read(&cell_file).unwrap() == data, "bytes differ");

    // A copy comes back for *_return modes: checked against the file sent,
    // or written where asked.
    let out = env.ok(&["data", "put", &src_s, "--mode", "sticky-return"]);
    let mut lines = out.lines();
    let id2 = lines.next().unwrap().to_owned();
    assert_eq!(
        lines.next(),
        Some(
            format!(
                "copied back {} bytes, identical to the file sent",
                data.len()
            )
            .as_str()
        ),
        "{out}"
    );
    let back = dir.path().join("back.bin");
    let j = json(&env.ok(&[
        "--json",
        "data",
        "put",
        &src_s,
        "--mode",
        "persistent_return",
        "--return-to",
        &back.to_string_lossy(),
    ]));
    assert_eq!(j["returned"]["bytes"], data.len() as u64);
    assert!(std::fs::read(&back).unwrap() == data, "copy differs");

    // Removed: a typed one-line error afterwards, for the command and for the cell.
    assert_eq!(
        env.ok(&["data", "rm", &id2]),
        format!("removed data {id2} from dbserver\n")
    );
    env.ok(&["data", "rm", &id]);
    for args in [
        vec!["data", "get", id.as_str(), dst_s.as_str()],
        vec!["data", "rm", id.as_str()],
        vec!["get-file", "photos", "1", "image", dst_s.as_str()],
    ] {
        let out = env.client(&args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("no such data"),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn bad_data_inputs_are_one_line_errors_and_change_nothing() {
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, b"hello").unwrap();
    let src_s = src.to_string_lossy().into_owned();
    env.ok(&[
        "create-table",
        "photos",
        "--columns",
        "name:text,image:data",
    ]);
    let unknown = rpc_core::DataId::random().to_string();
    let usage: &[&[&str]] = &[
        &["data", "get", "not-a-uuid", "x"],
        &["data", "put", &src_s, "--mode", "forever"],
        &["data", "mv", "not-a-uuid", "dbserver"],
        &["data"],
    ];
    for args in usage {
        let out = env.client(args);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
    }
    let reference = format!("data:{unknown}");
    let failing: &[&[&str]] = &[
        &["data", "put", "/nonexistent/file"],
        &["data", "put", &src_s, "--on", "nosuchnode"],
        &["data", "mv", &unknown, "dbserver"],
        &["data", "get", &unknown, "x", "--on", "dbserver"],
        &["data", "ls", "nosuchnode"],
        &["insert", "photos", "a", &reference],
    ];
    for args in failing {
        let out = env.client(args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(env.rows("photos").is_empty());
    let ls = env.ok(&["data", "ls"]);
    assert!(ls.trim().is_empty(), "{ls}");
}

#[test]
fn row_commands_update_cas_and_delete_and_watchers_see_them() {
    let env = Env::start();
    env.ok(&["create-table", "acc", "--columns", "owner:text,n:int,note"]);
    env.ok(&["insert", "acc", "ann", "10", "null"]);
    env.ok(&["insert", "acc", "bob", "20", "null"]);
    let mut watcher = Proc::spawn(&mut env.command(&["watch", "acc", "--count", "3"]));
    watcher.stderr_line("watching acc");

    assert_eq!(
        env.ok(&["update", "acc", "1", "n=11", "note=first"]),
        "id  owner  n   note\n1   ann    11  first\n"
    );
    let j = json(&env.ok(&["--json", "cas", "acc", "1", "n", "11", "12"]));
    assert_eq!(j["value"], 12);
    assert_eq!(env.ok(&["delete", "acc", "2"]), "deleted acc[2]\n");
    let out = watcher.finish();
    assert!(out.ok, "{out:?}");
    assert_eq!(
        out.stdout,
        "updated acc[1]: ann, 11, first\nset acc[1].n = 12\ndeleted acc[2]\n"
    );

    let before = env.rows("acc");
    // A lost compare-and-set names the value the cell holds.
    let cas = env.client(&["cas", "acc", "1", "n", "11", "13"]);
    assert!(!cas.ok && cas.stdout.is_empty(), "{cas:?}");
    assert_eq!(
        cas.stderr,
        "client: database: compare-and-set failed, current value is 12\n"
    );
    for bad in [
        &["delete", "acc", "2"][..],
        &["delete", "nope", "1"],
        &["update", "acc", "1", "n=12", "note=x", "nope=1"],
        &["update", "acc", "1", "n=twelve"],
        &["update", "acc", "1", "n"],
        &["update", "acc", "9", "n=1"],
        &["cas", "acc", "1", "n", "12", "x"],
        &["cas", "acc", "1", "nope", "1", "2"],
    ] {
        let out = env.client(bad);
        assert!(
            !out.ok && out.stdout.is_empty() && out.stderr.lines().count() == 1,
            "{bad:?}: {out:?}"
        );
    }
    assert_eq!(env.rows("acc"), before, "refused commands changed nothing");
}

#[test]
fn scan_prints_page_by_page_and_stops_at_the_limit() {
    let env = Env::start();
    env.ok(&["create-table", "many", "--columns", "n:int"]);
    let rows = 600usize; // more than two pages
    let csv = env.dir().join("many.csv");
    let mut text = String::from("n\n");
    for i in 0..rows {
        text.push_str(&format!("{i}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    env.ok(&["import-csv", "many", csv.to_str().unwrap()]);

    let all = env.ok(&["scan", "many"]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), rows + 1, "header and every row");
    assert_eq!(lines[0], "id   n");
    assert_eq!(lines[1], "1    0");
    assert_eq!(lines[rows], format!("{rows}  {}", rows - 1));
    let j = json(&env.ok(&["--json", "scan", "many"]));
    assert_eq!(j["rows"].as_array().unwrap().len(), rows);
    assert_eq!(j["table"], "many");
    assert_eq!(j["rows"][rows - 1]["values"][0], rows - 1);

    let limited = env.ok(&["scan", "many", "--limit", "300"]);
    assert_eq!(limited.lines().count(), 301);
    let j = json(&env.ok(&["--json", "scan", "many", "--limit", "2"]));
    assert_eq!(j["rows"].as_array().unwrap().len(), 2);
    let j = json(&env.ok(&["--json", "scan", "many", "--limit", "0"]));
    assert_eq!(j["rows"].as_array().unwrap().len(), 0);
    env.ok(&["create-table", "empty", "--columns", "a,b"]);
    assert_eq!(env.ok(&["scan", "empty"]), "id  a  b\n");
}

#[test]
fn import_csv_streams_records_and_a_bad_line_changes_nothing() {
    let env = Env::start();
    let rows = 5000usize;
    let mut text = String::from("name:text,n:int,note\n");
    for i in 0..rows {
        // Quoting, escapes and line breaks inside fields, as RFC 4180 has them.
        text.push_str(&format!("\"r{i}, \"\"q\"\"\",{i},\"two\nlines\"\n"));
    }
    let good = env.dir().join("good.csv");
    std::fs::write(&good, &text).unwrap();
    let j = json(&env.ok(&["--json", "import-csv", "big", good.to_str().unwrap()]));
    assert_eq!(j["imported"], rows);
    let got = env.rows("big");
    assert_eq!(got.len(), rows);
    assert_eq!(
        got[4321].1,
        vec![
            Value::Text("r4321, \"q\"".into()),
            Value::Int(4321),
            Value::Text("two\nlines".into())
        ]
    );

    // A bad record near the end: one line naming it, nothing imported,
    // whether the table exists or would have been created.
    let mut bad = text.clone();
    bad.push_str("tail,notanumber,\n");
    let bad_file = env.dir().join("bad.csv");
    std::fs::write(&bad_file, &bad).unwrap();
    for table in ["big", "fresh"] {
        let out = env.client(&["import-csv", table, bad_file.to_str().unwrap()]);
        assert!(!out.ok && out.stdout.is_empty(), "{out:?}");
        let line = 2 + 2 * rows; // each record above takes two lines
        assert_eq!(
            out.stderr,
            format!("client: csv line {line}: column `n` holds int, got text `notanumber`\n")
        );
    }
    assert_eq!(env.rows("big").len(), rows);
    assert!(env.tables().iter().all(|t| t.name != "fresh"));
    // Not UTF-8: one line too.
    let mut raw = b"name,n,note\nok,1,\n".to_vec();
    raw.extend_from_slice(b"\xff\xfe,2,\n");
    let binary = env.dir().join("binary.csv");
    std::fs::write(&binary, raw).unwrap();
    let out = env.client(&["import-csv", "big", binary.to_str().unwrap()]);
    assert!(!out.ok && out.stderr.contains("csv line 3"), "{out:?}");
    assert_eq!(env.rows("big").len(), rows);
}

#[test]
fn exported_objects_live_in_the_clients_own_context_while_it_runs() {
    let env = Env::start();
    env.ok(&["create-table", "w", "--columns", "n:int"]);
    env.ok(&["insert", "w", "0"]);
    let mut watch = Proc::spawn(&mut env.command(&["watch", "w", "--count", "1"]));
    let notice = watch.stderr_line("watching w");
    let path = notice
        .split("listener bound as ")
        .nth(1)
        .unwrap()
        .trim_end_matches(')')
        .to_owned();
    let context = path.strip_suffix("/listener").unwrap().to_owned();
    assert!(context.starts_with("client-"), "{notice}");
    let ls = env.ok(&["ls"]);
    assert!(ls.contains(&format!("context  {context}")), "{ls}");
    assert_eq!(env.ok(&["ls", &context]), "object   listener\n");
    env.ok(&["set", "w", "1", "n", "1"]);
    assert!(watch.finish().ok);
    // Gone as soon as the command ended, not when its lease ran out.
    assert!(!env.ok(&["ls"]).contains(&context));
}
