//! Naming operations over the wire against an in-process name server: round
//! trips, nested contexts, every error as a typed value, class checks at
//! resolve time, and class-based creation.

mod common;

use common::*;
use nameserver::api::{NAMESERVER_CONTEXT, NameContext, NameContextRef, ROOT_NAME};
use nameserver::client::client_context_name;
use nameserver::{Entry, EntryKind, NameClient, NameError};
use rpc_core::{Node, RpcError};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(30);

fn entries(list: &[Entry]) -> Vec<(&str, EntryKind)> {
    list.iter().map(|e| (e.name.as_str(), e.kind)).collect()
}

#[tokio::test]
async fn bind_resolve_list_unbind_round_trip() {
    let server = TestServer::start(LEASE).await;
    let node = listening_node().await;
    let ctx = client_context_name(node.id());
    let names = NameClient::connect_as(&node, &server.addr, &ctx)
        .await
        .unwrap();
    assert_eq!(names.context(), Some(ctx.as_str()));
    assert_eq!(names.lease(), LEASE);

    let path = names.own_path("greeter");
    let cap = names
        .bind(&path, &GreeterRef::new(Hello("hello")))
        .await
        .unwrap();

    // Another node resolves it into a typed reference and calls it.
    let other = Node::new(fast_config());
    let reader = NameClient::connect(&other, &server.addr).await.unwrap();
    let g: GreeterRef = reader.resolve(&path).await.unwrap();
    assert_eq!(g.capability(), Some(&cap));
    assert_eq!(g.greet("ada".into()).await.unwrap(), "hello, ada");
    // On the home node, the same path resolves to the local object.
    let local: GreeterRef = names.resolve(&path).await.unwrap();
    assert!(local.is_local());

    let root = reader.list("").await.unwrap();
    assert!(root.contains(&Entry {
        name: NAMESERVER_CONTEXT.into(),
        kind: EntryKind::Context
    }));
    assert!(root.contains(&Entry {
        name: ctx.clone(),
        kind: EntryKind::Context
    }));
    assert_eq!(
        entries(&reader.list(&ctx).await.unwrap()),
        [("greeter", EntryKind::Object)]
    );

    // rebind replaces, bind refuses.
    let e = names
        .bind(&path, &GreeterRef::new(Hello("hi")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            NameError::AlreadyBound {
                kind: EntryKind::Object,
                ..
            }
        ),
        "{e}"
    );
    names
        .rebind(&path, &GreeterRef::new(Hello("hi")))
        .await
        .unwrap();
    let g: GreeterRef = reader.resolve(&path).await.unwrap();
    assert_eq!(g.greet("bob".into()).await.unwrap(), "hi, bob");

    names.unbind(&path).await.unwrap();
    let e = reader.resolve::<GreeterRef>(&path).await.unwrap_err();
    assert_eq!(
        e,
        NameError::NotFound {
            component: "greeter".into(),
            context: ctx.clone()
        }
    );
    assert!(reader.list(&ctx).await.unwrap().is_empty());
}

#[tokio::test]
async fn nested_contexts_through_context_objects() {
    let server = TestServer::start(LEASE).await;
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &server.addr, "dbserver")
        .await
        .unwrap();
    // The context object returned by create_context works on its own.
    let tables: NameContextRef = names.create_context("dbserver/tables").await.unwrap();
    assert!(!tables.is_local());
    let deep = tables.create_context("2024/q1".into()).await.unwrap_err();
    assert_eq!(
        deep,
        NameError::NotFound {
            component: "2024".into(),
            context: String::new()
        }
    );
    let year = tables.create_context("2024".into()).await.unwrap();
    let q1 = year.create_context("q1".into()).await.unwrap();
    let cap = node
        .capability_of(&CounterRef::new(Count::default()))
        .unwrap();
    q1.bind("cells".into(), cap.clone()).await.unwrap();
    assert_eq!(
        names
            .resolve_capability("dbserver/tables/2024/q1/cells")
            .await
            .unwrap(),
        cap
    );
    // A context resolves to the same object that create_context returned.
    let again: NameContextRef = names.resolve("dbserver/tables/2024").await.unwrap();
    assert_eq!(again.capability(), year.capability());
    assert_eq!(
        entries(&again.list(String::new()).await.unwrap()),
        [("q1", EntryKind::Context)]
    );
    // The root through the bootstrap registry is the same as the helper's.
    let root: NameContextRef = node.lookup(&server.addr, ROOT_NAME).await.unwrap();
    assert_eq!(root.capability(), names.root().capability());

    // Destroy refuses a non-empty context, then works bottom-up; the
    // destroyed context's object is gone too.
    let e = names
        .destroy_context("dbserver/tables/2024/q1")
        .await
        .unwrap_err();
    assert!(matches!(e, NameError::NotEmpty { .. }), "{e}");
    q1.unbind("cells".into()).await.unwrap();
    names
        .destroy_context("dbserver/tables/2024/q1")
        .await
        .unwrap();
    let e = q1.list(String::new()).await.unwrap_err();
    assert!(
        matches!(e, NameError::Rpc(RpcError::NoSuchObject { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn errors_cross_the_wire_as_typed_values() {
    let server = TestServer::start(LEASE).await;
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &server.addr, "svc")
        .await
        .unwrap();
    let root = names.root();
    let cap = node.capability_of(&GreeterRef::new(Hello("x"))).unwrap();
    names
        .bind_capability("svc/obj", cap.clone(), false)
        .await
        .unwrap();

    for bad in ["", "a//b", "/svc", "svc/", "sp ace", "svc/..", "ünï"] {
        let e = root.bind(bad.into(), cap.clone()).await.unwrap_err();
        assert!(matches!(e, NameError::InvalidName { .. }), "{bad:?}: {e:?}");
    }
    let e = root.resolve("svc/a b".into()).await.unwrap_err();
    assert!(
        matches!(e, NameError::InvalidName { ref reason, .. } if reason.contains("illegal character")),
        "{e:?}"
    );
    let e = root.find_class("no/slash".into()).await.unwrap_err();
    assert!(matches!(e, NameError::InvalidName { .. }), "{e:?}");

    let e = root.resolve("svc/missing/deeper".into()).await.unwrap_err();
    assert_eq!(
        e,
        NameError::NotFound {
            component: "missing".into(),
            context: "svc".into()
        }
    );
    assert_eq!(e.to_string(), "`missing` not found in context `svc`");

    let e = root.resolve("svc/obj/x".into()).await.unwrap_err();
    assert_eq!(
        e,
        NameError::NotAContext {
            path: "svc/obj".into(),
            kind: EntryKind::Object
        }
    );
    let e = root.list("svc/obj".into()).await.unwrap_err();
    assert!(matches!(e, NameError::NotAContext { .. }), "{e:?}");
    // Names are unique: another node cannot take `svc`, while its owner
    // asking again (a restart with a fixed node id) gets it back.
    let intruder = NameClient::connect(&Node::new(fast_config()), &server.addr)
        .await
        .unwrap();
    let e = intruder.create_context("svc").await.unwrap_err();
    assert_eq!(
        e,
        NameError::AlreadyBound {
            path: "svc".into(),
            kind: EntryKind::Context
        }
    );
    let again = root.create_context("svc".into()).await.unwrap();
    assert_eq!(
        again.capability().cloned(),
        Some(names.resolve_capability("svc").await.unwrap())
    );
    assert_eq!(
        entries(&again.list(String::new()).await.unwrap()),
        [("obj", EntryKind::Object)]
    );
    let e = root.destroy_context("svc".into()).await.unwrap_err();
    assert_eq!(e, NameError::NotEmpty { path: "svc".into() });
    let e = root.unbind("svc".into()).await.unwrap_err();
    assert_eq!(e, NameError::NotEmpty { path: "svc".into() });
    let e = root.destroy_context("svc/obj".into()).await.unwrap_err();
    assert!(matches!(e, NameError::NotAContext { .. }), "{e:?}");
    let e = root.unbind("svc/nothing".into()).await.unwrap_err();
    assert!(matches!(e, NameError::NotFound { .. }), "{e:?}");
}

#[tokio::test]
async fn wrong_class_and_version_mismatch_are_caught_at_resolve() {
    let server = TestServer::start(LEASE).await;
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &server.addr, "svc")
        .await
        .unwrap();
    names
        .bind("svc/greeter", &GreeterRef::new(Hello("hello")))
        .await
        .unwrap();

    let other = Node::new(fast_config());
    let reader = NameClient::connect(&other, &server.addr).await.unwrap();
    let e = reader
        .resolve::<CounterRef>("svc/greeter")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        NameError::WrongClass {
            expected: "test.Counter".into(),
            found: "test.Greeter".into()
        }
    );
    let e = reader
        .resolve::<GreeterV2Ref>("svc/greeter")
        .await
        .unwrap_err();
    assert!(
        matches!(e, NameError::VersionMismatch { ref class, local, remote } if class == "test.Greeter" && local != remote),
        "{e:?}"
    );
    // A context is not a Greeter either.
    let e = reader.resolve::<GreeterRef>("svc").await.unwrap_err();
    assert!(
        matches!(e, NameError::WrongClass { ref found, .. } if found == "nameserver.NameContext"),
        "{e:?}"
    );
    // The right interface works.
    let g: GreeterRef = reader.resolve("svc/greeter").await.unwrap();
    assert_eq!(g.greet("x".into()).await.unwrap(), "hello, x");
}

#[tokio::test]
async fn class_based_creation_returns_a_working_object_on_the_offering_node() {
    let server = TestServer::start(LEASE).await;
    let maker = listening_node().await;
    let names = NameClient::connect_as(&maker, &server.addr, "factory")
        .await
        .unwrap();
    names
        .offer_class("factory", || CounterRef::new(Count::default()))
        .await
        .unwrap();
    // A second node offering the same class in its own context.
    let maker2 = listening_node().await;
    let names2 = NameClient::connect_as(&maker2, &server.addr, "factory2")
        .await
        .unwrap();
    names2
        .offer_class("factory2", || CounterRef::new(Count::default()))
        .await
        .unwrap();

    let user = Node::new(fast_config());
    let reader = NameClient::connect(&user, &server.addr).await.unwrap();
    assert_eq!(
        entries(&reader.list("factory").await.unwrap()),
        [("test.Counter", EntryKind::Class)]
    );
    let mut offers: Vec<_> = reader
        .find_class("test.Counter")
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.node)
        .collect();
    offers.sort();
    let mut want = vec![maker.id(), maker2.id()];
    want.sort();
    assert_eq!(offers, want);

    let before = maker.stats().exports + maker2.stats().exports;
    let a: CounterRef = reader.create().await.unwrap();
    let b: CounterRef = reader.create().await.unwrap();
    assert_ne!(a.capability(), b.capability());
    let home = a.capability().unwrap().home.node;
    assert!(home == maker.id() || home == maker2.id());
    assert_eq!(a.next().await.unwrap(), 1);
    assert_eq!(a.next().await.unwrap(), 2);
    assert_eq!(b.next().await.unwrap(), 1);
    assert_eq!(maker.stats().exports + maker2.stats().exports, before + 2);

    // Resolving a class offer as an object is a typed error.
    let e = reader
        .resolve_capability("factory/test.Counter")
        .await
        .unwrap_err();
    assert!(matches!(e, NameError::NotAnObject { .. }), "{e:?}");
    // A class nobody offers.
    let e = reader.create::<GreeterRef>().await.unwrap_err();
    assert_eq!(
        e,
        NameError::ClassNotOffered {
            class: "test.Greeter".into()
        }
    );
    // A node that does not listen cannot offer classes.
    let e = reader
        .offer_class("factory", || GreeterRef::new(Hello("x")))
        .await
        .unwrap_err();
    assert!(
        matches!(e, NameError::Rpc(RpcError::Unreachable { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn close_unbinds_at_once() {
    let server = TestServer::start(LEASE).await;
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &server.addr, "leaving")
        .await
        .unwrap();
    names
        .bind("leaving/g", &GreeterRef::new(Hello("bye")))
        .await
        .unwrap();
    // Also a binding outside its own context.
    names
        .bind("stray", &GreeterRef::new(Hello("bye")))
        .await
        .unwrap();
    let other = Node::new(fast_config());
    let reader = NameClient::connect(&other, &server.addr).await.unwrap();
    assert_eq!(reader.list("").await.unwrap().len(), 3);
    names.close().await.unwrap();
    // No waiting for the lease: gone at once.
    assert_eq!(
        entries(&reader.list("").await.unwrap()),
        [(NAMESERVER_CONTEXT, EntryKind::Context)]
    );
}
