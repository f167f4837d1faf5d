//! Databases made by class-based creation, in process: named ones are
//! separate stores bound under the server's context; one nobody names is
//! deleted after `NAME_WITHIN` (on a paused clock), and the server refuses
//! more than `MAX_DATABASES`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use dbserver::api::{Database, DatabaseRef, DbError, Table};
use dbserver::databases::{DBS_DIR, NAME_WITHIN};
use dbserver::server::DbServer;
use nameserver::client::NameClient;
use nameserver::server::NameServer;
use rpc_core::{Config, Node, RpcError};
use std::time::Duration;

/// Leases of the name server and of the client's proxies: longer than the
/// clock jump past `NAME_WITHIN`. On a paused clock a jump fires the
/// renewal timers, but their messages are real I/O that cannot arrive
/// within it, so a lease shorter than the jump expired or not by the order
/// the woken tasks ran in (the test failed so under load).
const LONG_LEASE: Duration = Duration::from_secs(600);

/// A name server and a database server registered as `srv`, in this
/// process, and a client's connection to the name server.
struct Env {
    _ns: (Node, NameServer),
    dir: tempfile::TempDir,
    server: DbServer,
    _client: Node,
    names: NameClient,
}

impl Env {
    async fn start() -> Env {
        let config = || Config {
            lease: LONG_LEASE,
            ..Config::default()
        };
        let ns_node = Node::new(config());
        let ns_addr = ns_node.listen("127.0.0.1:0").await.unwrap().to_string();
        let ns = NameServer::install(&ns_node, LONG_LEASE).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(dir.path()).await;
        let own = NameClient::connect_as(server.node(), &ns_addr, "srv")
            .await
            .unwrap();
        server.register(own).await.unwrap();
        let client = Node::new(config());
        let names = NameClient::connect(&client, &ns_addr).await.unwrap();
        Env {
            _ns: (ns_node, ns),
            dir,
            server,
            _client: client,
            names,
        }
    }
}

#[tokio::test]
async fn unnamed_databases_are_deleted_and_named_ones_kept() {
    let Env {
        _ns,
        dir,
        server,
        _client,
        names,
    } = Env::start().await;
    let named: DatabaseRef = within(names.create()).await.unwrap();
    assert_eq!(named.bind_as("kept".into()).await.unwrap(), "srv/kept");
    let t = named
        .create_table("t".into(), people_columns())
        .await
        .unwrap();
    t.insert(person("ann", 1)).await.unwrap();
    // A bad name, a taken one, the main database: refused, nothing bound.
    let other: DatabaseRef = within(names.create()).await.unwrap();
    assert!(matches!(
        other.bind_as("a/b".into()).await,
        Err(DbError::InvalidName { .. })
    ));
    assert!(matches!(
        other.bind_as("kept".into()).await,
        Err(DbError::Naming { .. })
    ));
    let main: DatabaseRef = names.resolve("srv/db").await.unwrap();
    assert!(matches!(
        main.bind_as("again".into()).await,
        Err(DbError::Unsupported { .. })
    ));
    let other_table = other
        .create_table("x".into(), people_columns())
        .await
        .unwrap();
    let dirs = || std::fs::read_dir(dir.path().join(DBS_DIR)).unwrap().count();
    assert_eq!(dirs(), 2);

    // Nobody names `other` in time: it goes, with its tables.
    tokio::time::pause();
    tokio::time::advance(NAME_WITHIN + Duration::from_secs(1)).await;
    tokio::time::resume();
    let deadline = std::time::Instant::now() + STEP;
    while dirs() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "unnamed database kept"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gone =
        |r: Result<u64, DbError>| matches!(r, Err(DbError::Rpc(RpcError::NoSuchObject { .. })));
    assert!(gone(within(other_table.count()).await));
    assert!(matches!(
        within(other.list_tables()).await,
        Err(DbError::Rpc(RpcError::NoSuchObject { .. }))
    ));
    // The named one stays, found by its name.
    let again: DatabaseRef = names.resolve("srv/kept").await.unwrap();
    assert_eq!(again.capability(), named.capability());
    let t = within(again.open_table("t".into())).await.unwrap();
    assert_eq!(t.count().await.unwrap(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_makes_at_most_its_limit_of_databases() {
    let Env {
        _ns,
        dir: _dir,
        server,
        _client,
        names,
    } = Env::start().await;
    let mut made = Vec::new();
    for _ in 0..dbserver::databases::MAX_DATABASES {
        made.push(within(names.create::<DatabaseRef>()).await.unwrap());
    }
    let refused = within(names.create::<DatabaseRef>()).await;
    assert!(
        matches!(
            refused,
            Err(nameserver::NameError::Rpc(RpcError::QuotaExceeded { .. }))
        ),
        "{refused:?}"
    );
    server.shutdown().await;
}
