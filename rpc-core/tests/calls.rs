//! Two nodes in one process: shared proxies, exports, references inside
//! containers, many concurrent calls on one connection, panics, class-based
//! creation and capabilities that survive a restart. The calls, callbacks,
//! handoffs and cancellations every transport must do alike are in
//! `transparency.rs`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use rpc_core::{Config, Node, RpcError};
use std::sync::Arc;

#[tokio::test]
async fn same_capability_shares_one_proxy() {
    let (_server, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    let a: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let b: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let (ha, hb) = (a.client_proxy().unwrap(), b.client_proxy().unwrap());
    assert!(ha.handle().same_object(hb.handle()));
    assert_eq!(client.stats().imports, 1);
}

#[tokio::test]
async fn same_local_object_exported_once() {
    let (_server, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let l = ListenerRef::new(Arc::new(Counter::default()));
    let before = client.stats().exports;
    calc.subscribe(l.clone()).await.unwrap();
    calc.subscribe(l.clone()).await.unwrap();
    assert_eq!(client.stats().exports, before + 1);
    assert_eq!(
        client.capability_of(&l).unwrap(),
        client.capability_of(&l).unwrap()
    );
}

#[tokio::test]
async fn references_inside_option_and_vec() {
    let (_server, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let ls: Vec<ListenerRef> = (0..3)
        .map(|_| ListenerRef::new(Arc::new(Counter::default())))
        .collect();
    assert_eq!(calc.count_listeners(Some(ls)).await.unwrap(), 3);
    assert_eq!(calc.count_listeners(None).await.unwrap(), 0);
}

#[tokio::test]
async fn thousand_concurrent_calls_on_one_connection() {
    let (_server, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let calls = (0..1000i64).map(|i| {
        let c = calc.clone();
        async move { (i, c.add(i, i * 1000).await) }
    });
    let results = futures::future::join_all(calls).await;
    for (i, r) in results {
        assert_eq!(r.unwrap(), i + i * 1000);
    }
    assert_eq!(client.stats().connections, 1);
    assert_eq!(client.stats().pending_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_the_multi_thread_runtime() {
    let (_server, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..16i64 {
        let c = calc.clone();
        set.spawn(async move {
            for i in 0..200 {
                assert_eq!(c.add(t, i).await.unwrap(), t + i);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

#[tokio::test]
async fn a_panicking_method_is_a_remote_error_and_the_server_goes_on() {
    let (_server, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    assert!(matches!(calc.boom().await, Err(RpcError::Remote { .. })));
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
}

#[tokio::test]
async fn local_references_call_the_object_directly() {
    // Location transparency: the same code against a local object.
    let calc = CalcRef::new(CalcImpl::new().0);
    assert!(calc.is_local());
    assert_eq!(calc.add(2, 3).await.unwrap(), 5);
    assert_eq!(calc.div(1, 0).await.unwrap_err(), CalcError::DivByZero);
}

#[tokio::test]
async fn class_based_creation_makes_a_new_object_on_the_offering_node() {
    let (server, addr, _) = calc_server().await;
    server.register_factory(|| CalcRef::new(CalcImpl::new().0));
    let client = Node::new(Config::default());
    let before = server.stats().exports;
    let a: CalcRef = client.create(&addr).await.unwrap();
    let b: CalcRef = client.create(&addr).await.unwrap();
    assert_ne!(a.capability().unwrap(), b.capability().unwrap());
    assert_eq!(a.add(1, 2).await.unwrap(), 3);
    assert_eq!(server.stats().exports, before + 2);
    // A class nobody offers.
    assert!(matches!(
        client.create::<ListenerRef>(&addr).await,
        Err(RpcError::NotBound { .. })
    ));
}

#[tokio::test]
async fn fixed_ids_and_the_resolver_keep_capabilities_across_a_restart() {
    use rpc_core::{NodeId, ObjectId};
    let node_id = NodeId::random();
    let obj_id = ObjectId::random();
    let config = || Config {
        node_id: Some(node_id),
        shutdown_grace: std::time::Duration::from_millis(10),
        ..Config::default()
    };
    let first = Node::new(config());
    let addr = first.listen("127.0.0.1:0").await.unwrap().to_string();
    let cap = first
        .export_as(&CalcRef::new(CalcImpl::new().0), obj_id)
        .unwrap();
    assert_eq!(cap.object, obj_id);
    let client = Node::new(Config::default());
    let calc: CalcRef = client.resolve(cap).unwrap();
    assert_eq!(calc.add(1, 2).await.unwrap(), 3);
    first.shutdown().await;

    // Same node id, same address; the object is exported again only on demand.
    let second = Node::new(config());
    second.listen(&addr).await.unwrap();
    second.set_resolver(move |node, id| {
        id == obj_id && node.export_as(&CalcRef::new(CalcImpl::new().0), id).is_ok()
    });
    // The first call after the restart may find the old connection dead.
    let mut result = calc.add(2, 3).await;
    if let Err(CalcError::Rpc(e)) = &result
        && e.is_transport()
    {
        result = calc.add(2, 3).await;
    }
    assert_eq!(result.unwrap(), 5);
    // Other ids stay unknown.
    let mut guessed = calc.capability().unwrap().clone();
    guessed.object = ObjectId::random();
    let g: CalcRef = client.resolve(guessed).unwrap();
    assert!(matches!(
        g.add(1, 1).await,
        Err(CalcError::Rpc(RpcError::NoSuchObject { .. }))
    ));
}
