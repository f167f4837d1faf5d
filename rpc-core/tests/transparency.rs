//! Location transparency: the core call, callback, three-node handoff, error
//! and cancellation tests run from one body against a local object, over
//! the in-memory transport and over TCP.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(10);

/// One `#[tokio::test]` per link for each body.
macro_rules! everywhere {
    ($($body:ident),* $(,)?) => {
        $(
            mod $body {
                use super::*;

                #[tokio::test]
                async fn local() {
                    super::$body(World::new(Link::Local, 3).await).await;
                }

                #[tokio::test]
                async fn memory() {
                    super::$body(World::new(Link::Memory, 3).await).await;
                }

                #[tokio::test]
                async fn tcp() {
                    super::$body(World::new(Link::Tcp, 3).await).await;
                }
            }
        )*
    };
}

everywhere!(
    by_value_calls_and_application_errors,
    callback_into_the_caller,
    three_node_handoff_calls_the_home_node_directly,
    references_come_home_as_the_real_object,
    dropping_the_call_future_cancels_the_work,
);

async fn by_value_calls_and_application_errors(w: World) {
    let calc = w.calc(0, 1).await;
    assert_eq!(calc.is_local(), w.link == Link::Local);
    assert_eq!(calc.add(2, 40).await.unwrap(), 42);
    assert_eq!(calc.echo("héllo".into()).await.unwrap(), "héllo");
    // The user's own error type arrives as itself, not as a transport error.
    assert_eq!(calc.div(1, 0).await.unwrap_err(), CalcError::DivByZero);
    assert_eq!(calc.div(9, 3).await.unwrap(), 3);
}

async fn callback_into_the_caller(w: World) {
    // Node 0 listens on no port in the in-memory world; it is called back
    // over the connection it has.
    if w.link == Link::Memory {
        assert!(w.node(0).com_handle().addr.is_none());
    }
    let calc = w.calc(0, 1).await;
    let counter = Arc::new(Counter::default());
    calc.subscribe(ListenerRef::new(Arc::clone(&counter)))
        .await
        .unwrap();
    assert_eq!(calc.notify_all(5).await.unwrap(), 1);
    assert_eq!(calc.notify_all(7).await.unwrap(), 1);
    assert_eq!(counter.total.load(Ordering::SeqCst), 12);
    assert_eq!(counter.calls.load(Ordering::SeqCst), 2);
}

async fn three_node_handoff_calls_the_home_node_directly(w: World) {
    // Node 1 owns the object; node 0 hands it to node 2, which calls node 1.
    let on_b = w.calc(0, 1).await;
    let on_c = w.calc(0, 2).await;
    let before = w.node(2).stats().connections;
    assert_eq!(on_c.relay(on_b, 20, 22).await.unwrap(), 42);
    if w.link == Link::Tcp {
        // Node 2 had only node 0's connection; it opened its own to node 1.
        assert_eq!(before, 1);
        assert_eq!(w.node(2).stats().connections, 2);
        assert_eq!(w.node(1).stats().connections, 2);
    }
}

async fn references_come_home_as_the_real_object(w: World) {
    let calc = w.calc(0, 1).await;
    // The object's own reference, sent back to it, is the object itself.
    assert!(calc.is_home(calc.clone()).await.unwrap());
    // A caller's object is a proxy on the callee (unless it is all local).
    let mine = CalcRef::new(CalcImpl::new().0);
    assert_eq!(
        calc.is_home(mine.clone()).await.unwrap(),
        w.link == Link::Local
    );
    // A result reference: a new object there, a proxy here.
    let child = calc.make_child().await.unwrap();
    assert_eq!(child.is_local(), w.link == Link::Local);
    assert_eq!(child.add(1, 1).await.unwrap(), 2);
}

async fn dropping_the_call_future_cancels_the_work(w: World) {
    let calc = w.calc(0, 1).await;
    let probe = w.probe(1);
    let c = calc.clone();
    let call = tokio::spawn(async move { c.sleep(60_000).await });
    tokio::time::timeout(BOUND, probe.started.notified())
        .await
        .expect("call started");
    if w.link != Link::Local {
        assert_eq!(w.node(1).stats().inflight_requests, 1);
    }
    call.abort();
    tokio::time::timeout(BOUND, probe.cancel_seen.notified())
        .await
        .expect("the callee saw the cancel");
    assert!(probe.cancelled.load(Ordering::SeqCst));
    // And the object goes on working.
    assert_eq!(calc.add(1, 1).await.unwrap(), 2);
    if w.link != Link::Local {
        assert_eq!(w.node(1).stats().inflight_requests, 0);
    }
}
