//! Helpers shared by the integration tests.
#![allow(dead_code, missing_docs, unreachable_pub)] // each test file uses a different subset

use dbserver::api::{
    CellListener, Column, DatabaseRef, DbError, TableChange, TableListener, Value, ValueType,
};
use dbserver::server::DbServer;
use rpc_core::{Config, Node};
use std::future::Future;
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

/// Upper bound for any single step of a test.
pub const STEP: Duration = Duration::from_secs(20);

/// Runs `f`, failing the test if it takes longer than [`STEP`].
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, f).await.expect("step timed out")
}

/// A server on a free port of 127.0.0.1 over `dir`.
pub async fn start_server(dir: &Path) -> DbServer {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    DbServer::start(l, dir).await.expect("start the server")
}

/// A server on a given address (a restart on the same port).
pub async fn start_server_at(dir: &Path, addr: &str) -> DbServer {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .expect("re-bind the port");
    DbServer::start(l, dir).await.expect("start the server")
}

/// A non-listening client node and the database it looked up.
pub async fn connect(addr: &str) -> (Node, DatabaseRef) {
    let client = Node::new(Config::default());
    let db: DatabaseRef = within(client.lookup(addr, "db")).await.expect("look up db");
    (client, db)
}

pub fn people_columns() -> Vec<Column> {
    vec![
        Column::new("name", ValueType::Text),
        Column::new("age", ValueType::Int),
    ]
}

pub fn person(name: &str, age: i64) -> Vec<Value> {
    vec![Value::Text(name.into()), Value::Int(age)]
}

/// A table listener that forwards what it receives to a channel.
pub struct TableProbe(pub mpsc::UnboundedSender<TableChange>);

impl TableListener for TableProbe {
    async fn changed(&self, change: TableChange) -> Result<(), DbError> {
        let _ = self.0.send(change);
        Ok(())
    }
}

/// A cell listener that forwards what it receives to a channel.
pub struct CellProbe(pub mpsc::UnboundedSender<Value>);

impl CellListener for CellProbe {
    async fn changed(&self, value: Value) -> Result<(), DbError> {
        let _ = self.0.send(value);
        Ok(())
    }
}

/// A cell listener that always fails (a dead client, say).
pub struct FailingProbe;

impl CellListener for FailingProbe {
    async fn changed(&self, _value: Value) -> Result<(), DbError> {
        Err(DbError::Unsupported {
            what: "listening".into(),
        })
    }
}

/// The next message of `rx`, within [`STEP`].
pub async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    within(rx.recv()).await.expect("channel closed")
}
