//! The real `dbserver` binary: flags, the `listening` line, calls over TCP, a
//! graceful stop on SIGTERM, and kill -9 in the middle of a stream of inserts
//! (every acknowledged row is there after a restart).

mod common;

use common::*;
use dbserver::api::{Database, DbError, Table, Value};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use test_support::Proc;

/// A running `dbserver` process on `data` and its address; killed when
/// dropped, its stderr kept.
struct ServerProcess {
    proc: Proc,
    addr: String,
}

impl ServerProcess {
    fn start(data: &Path, extra: &[&str]) -> ServerProcess {
        let mut proc = Proc::spawn(
            Command::new(env!("CARGO_BIN_EXE_dbserver"))
                .args(["--listen", "127.0.0.1:0", "--data"])
                .arg(data)
                .args(extra),
        )
        .with_wait(STEP);
        let addr = proc.line("listening ");
        ServerProcess { proc, addr }
    }
}

// Multi-thread: starting the child blocks one thread while the in-process
// name server must answer its registration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_calls_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A real name server, in this process.
    let ns_node = rpc_core::Node::new(rpc_core::Config::default());
    let ns_addr = ns_node.listen("127.0.0.1:0").await.unwrap().to_string();
    let _ns = nameserver::server::NameServer::install(&ns_node, Duration::from_secs(30)).unwrap();
    let mut server = ServerProcess::start(&data, &["--nameserver", &ns_addr, "--name", "x"]);
    // Found through the name server.
    let looker = rpc_core::Node::new(rpc_core::Config::default());
    let names = nameserver::client::NameClient::connect(&looker, &ns_addr)
        .await
        .unwrap();
    let via_ns: dbserver::api::DatabaseRef = names.resolve("x/db").await.unwrap();
    assert!(within(via_ns.list_tables()).await.unwrap().is_empty());
    let (_client, db) = connect(&server.addr).await;
    let t = within(db.create_table("people".into(), people_columns()))
        .await
        .unwrap();
    let row = t.insert(person("ann", 30)).await.unwrap();
    assert_eq!(t.get_row(row).await.unwrap(), person("ann", 30));

    let code = server.proc.terminate();
    assert!(code.success(), "{code:?}");
    let log = server.proc.stderr_lines().join("\n");
    assert!(log.contains("bound in the name server"), "{log}");
    // A clean shutdown unbinds at once.
    let left: Vec<String> = names
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(!left.contains(&"x".to_owned()), "{left:?}");
}

#[test]
fn an_unreachable_name_server_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap().to_string();
    drop(l);
    let out = Command::new(env!("CARGO_BIN_EXE_dbserver"))
        .args(["--listen", "127.0.0.1:0", "--nameserver", &dead, "--data"])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot register with the name server"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_inserts_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data, &[]);
    let (_client, db) = connect(&server.addr).await;
    let t = within(db.create_table("log".into(), people_columns()))
        .await
        .unwrap();

    // Four writers insert until the server dies; each keeps what was acknowledged.
    let acked = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        // A call not yet sent when the server dies is tried again until its
        // deadline: short, so that each writer sees the failure well within a step.
        let (t, acked) = (
            t.clone().with_timeout(Duration::from_secs(3)),
            Arc::clone(&acked),
        );
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let values = person(&format!("w{w}"), i);
                match t.insert(values.clone()).await {
                    Ok(row) => acked.lock().push((row, values)),
                    Err(DbError::Rpc(_)) => return,
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + STEP;
    while acked.lock().len() < 200 {
        assert!(tokio::time::Instant::now() < deadline, "inserts too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.proc.kill9();
    for w in writers {
        within(w).await.unwrap();
    }
    let acked = acked.lock().clone();
    assert!(acked.len() >= 200);

    let server = ServerProcess::start(&data, &[]);
    let (_client, db) = connect(&server.addr).await;
    let t = within(db.open_table("log".into())).await.unwrap();
    let rows = within(dbserver::api::read_all(&t, 500)).await.unwrap();
    let stored: std::collections::HashMap<u64, Vec<Value>> = rows.into_iter().collect();
    for (row, values) in &acked {
        assert_eq!(stored.get(row), Some(values), "acknowledged row {row} lost");
    }
    // At most the in-flight inserts (one per writer) may have landed unacknowledged.
    assert!(stored.len() <= acked.len() + 4);
}
