//! Leases against an in-process name server with short leases: a node that
//! stops renewing vanishes, one that renews stays, and a restarted name server
//! gets every registration back from the client helper by itself.

mod common;

use common::*;
use nameserver::client::RENEWALS_PER_LEASE;
use nameserver::{EntryKind, NameClient};
use rpc_core::Node;
use std::time::{Duration, Instant};

// Long enough that a renewal delayed by a loaded CI machine is still in time.
const LEASE: Duration = Duration::from_millis(1500);

async fn has(reader: &NameClient, path: &str, name: &str) -> bool {
    match reader.list(path).await {
        Ok(list) => list.iter().any(|e| e.name == name),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_node_that_stops_renewing_vanishes_within_the_lease() {
    let server = TestServer::start(LEASE).await;
    let quitter = listening_node().await;
    let stayer = listening_node().await;
    let q = NameClient::connect_as(&quitter, &server.addr, "quitter")
        .await
        .unwrap();
    q.bind("quitter/g", &GreeterRef::new(Hello("q")))
        .await
        .unwrap();
    q.bind("quitter-stray", &GreeterRef::new(Hello("q")))
        .await
        .unwrap();
    let s = NameClient::connect_as(&stayer, &server.addr, "stayer")
        .await
        .unwrap();
    s.bind("stayer/g", &GreeterRef::new(Hello("s")))
        .await
        .unwrap();
    // Let a few renewals happen for both.
    tokio::time::sleep(LEASE * 2).await;
    let reader_node = Node::new(fast_config());
    let reader = NameClient::connect(&reader_node, &server.addr)
        .await
        .unwrap();
    assert!(
        has(&reader, "", "quitter").await,
        "renewals keep entries past the lease"
    );
    assert!(has(&reader, "", "quitter-stray").await);

    // Stop renewing; the node itself stays up (it is cut off from renewing only).
    drop(q);
    let stopped = Instant::now();
    let period = LEASE / RENEWALS_PER_LEASE;
    tokio::time::sleep(LEASE - period - Duration::from_millis(400)).await;
    assert!(
        has(&reader, "", "quitter").await,
        "the lease holds until it runs out"
    );
    let gone = eventually(LEASE * 3, || async {
        !has(&reader, "", "quitter").await && !has(&reader, "", "quitter-stray").await
    })
    .await
    .expect("the quitter's entries vanish");
    let after = stopped.elapsed();
    assert!(
        after <= LEASE + Duration::from_millis(1000),
        "vanished {after:?} after the last renewal could have happened; lease {LEASE:?} ({gone:?} of polling)"
    );
    // The renewing node is untouched.
    let list = reader.list("stayer").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].kind, EntryKind::Object);
    let g: GreeterRef = reader.resolve("stayer/g").await.unwrap();
    assert_eq!(g.greet("x".into()).await.unwrap(), "s, x");
}

#[tokio::test]
async fn a_restarted_name_server_gets_registrations_back() {
    let first = TestServer::start(LEASE).await;
    let addr = first.addr.clone();
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &addr, "dbserver")
        .await
        .unwrap();
    names.create_context("dbserver/tables").await.unwrap();
    names
        .bind("dbserver/tables/t1", &GreeterRef::new(Hello("t1")))
        .await
        .unwrap();
    names
        .offer_class("dbserver", || CounterRef::new(Count::default()))
        .await
        .unwrap();
    // Unbound things are not made again.
    names
        .bind("dbserver/tmp", &GreeterRef::new(Hello("tmp")))
        .await
        .unwrap();
    names.unbind("dbserver/tmp").await.unwrap();

    first.stop().await;
    let second = TestServer::start_on(&addr, LEASE).await;
    let restarted = Instant::now();

    let reader_node = Node::new(fast_config());
    let reader = NameClient::connect(&reader_node, &addr).await.unwrap();
    let took = eventually(WAIT, || async {
        has(&reader, "dbserver/tables", "t1").await
            && has(&reader, "dbserver", "test.Counter").await
    })
    .await
    .expect("registrations came back");
    let period = LEASE / RENEWALS_PER_LEASE;
    assert!(
        restarted.elapsed() <= period * 2 + Duration::from_millis(500),
        "registrations back after {:?} (renewal period {period:?}, polled {took:?})",
        restarted.elapsed()
    );
    let dbserver: Vec<_> = reader
        .list("dbserver")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    assert_eq!(
        dbserver,
        [
            ("tables".to_owned(), EntryKind::Context),
            ("test.Counter".to_owned(), EntryKind::Class),
        ]
    );
    // The re-bound object and the class offer work.
    let t1: GreeterRef = reader.resolve("dbserver/tables/t1").await.unwrap();
    assert_eq!(t1.greet("y".into()).await.unwrap(), "t1, y");
    let c: CounterRef = reader.create().await.unwrap();
    assert_eq!(c.next().await.unwrap(), 1);
    // The helper's own calls go to the new server too.
    assert!(names.list("dbserver").await.is_ok());
    second.stop().await;
}

#[tokio::test]
async fn calls_after_a_restart_reconnect_by_themselves() {
    let first = TestServer::start(Duration::from_secs(30)).await;
    let addr = first.addr.clone();
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &addr, "svc").await.unwrap();
    names
        .bind("svc/g", &GreeterRef::new(Hello("g")))
        .await
        .unwrap();
    first.stop().await;
    let _second = TestServer::start_on(&addr, Duration::from_secs(30)).await;
    // Long before the next renewal (10 s away), a read reconnects, restores
    // the registrations and succeeds.
    let g: GreeterRef = tokio::time::timeout(WAIT, names.resolve("svc/g"))
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(g.greet("z".into()).await.unwrap(), "g, z");
}
