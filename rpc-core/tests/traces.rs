//! Trace context across calls: each request carries its trace id and the
//! caller's span id; each node opens a span per served call as a child of
//! the caller's, so a call, the nested call it makes on a second node and
//! the callback that one makes to a third all share one trace id.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use parking_lot::Mutex;
use rpc_core::{Config, Node, RpcError, remote};
use std::collections::HashMap;
use std::sync::Arc;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Passes a call on to `next`, or calls `back`.
#[remote(name = "test.Hop")]
trait Hop {
    /// One hop.
    async fn hop(&self, next: Option<HopRef>, back: Option<BackRef>) -> Result<u32, RpcError>;
}

/// Called back at the end of the chain.
#[remote(name = "test.Back")]
trait Back {
    /// The callback.
    async fn ping(&self) -> Result<u32, RpcError>;
}

struct Hopper;

impl Hop for Hopper {
    async fn hop(&self, next: Option<HopRef>, back: Option<BackRef>) -> Result<u32, RpcError> {
        match (next, back) {
            (Some(next), back) => Ok(next.hop(None, back).await? + 1),
            (None, Some(back)) => Ok(back.ping().await? + 1),
            (None, None) => Ok(0),
        }
    }
}

struct Pinged;

impl Back for Pinged {
    async fn ping(&self) -> Result<u32, RpcError> {
        Ok(1)
    }
}

/// The fields of every `rpc::call` span opened.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<HashMap<String, String>>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        if attrs.metadata().target() == "rpc::call" {
            let mut fields = HashMap::new();
            attrs.record(&mut Fields(&mut fields));
            self.0.lock().push(fields);
        }
    }
}

#[tokio::test]
async fn one_trace_id_across_three_nodes_and_a_callback() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry()
        .with(spans.clone())
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    // The test runs every node on this thread: a thread-local subscriber sees them all.
    let _guard = tracing::subscriber::set_default(subscriber);

    let (a, b, c) = (
        Node::new(Config::default()),
        Node::new(Config::default()),
        Node::new(Config::default()),
    );
    for n in [&a, &b, &c] {
        n.listen("127.0.0.1:0").await.unwrap();
    }
    a.bind_bootstrap("hop", &HopRef::new(Hopper)).unwrap();
    b.bind_bootstrap("hop", &HopRef::new(Hopper)).unwrap();
    let a_addr = a.com_handle().addr.unwrap();
    let b_addr = b.com_handle().addr.unwrap();
    let on_a: HopRef = c.lookup(&a_addr, "hop").await.unwrap();
    let on_b: HopRef = c.lookup(&b_addr, "hop").await.unwrap();
    spans.0.lock().clear();

    // c -> a.hop -> b.hop -> c.ping (a callback to the caller's own node).
    let back = BackRef::new(Pinged);
    assert_eq!(on_a.hop(Some(on_b), Some(back)).await.unwrap(), 3);

    let seen = spans.0.lock().clone();
    let method = |m: &str| {
        seen.iter()
            .find(|s| s["method"] == m)
            .unwrap_or_else(|| panic!("no span of {m} in {seen:?}"))
            .clone()
    };
    let (first, second, callback) = (
        method("test.Hop.hop"),
        seen.iter()
            .filter(|s| s["method"] == "test.Hop.hop")
            .nth(1)
            .unwrap()
            .clone(),
        method("test.Back.ping"),
    );
    // One trace, 32 hex digits, as in W3C traceparent.
    assert_eq!(first["trace_id"].len(), 32, "{first:?}");
    assert_eq!(first["trace_id"], second["trace_id"]);
    assert_eq!(first["trace_id"], callback["trace_id"]);
    // Each a child of the span that made its call.
    assert_eq!(second["parent_span_id"], first["span_id"]);
    assert_eq!(callback["parent_span_id"], second["span_id"]);
    assert_ne!(first["span_id"], second["span_id"]);

    // The next operation is another trace.
    spans.0.lock().clear();
    let on_a: HopRef = c.lookup(&a_addr, "hop").await.unwrap();
    on_a.hop(None, None).await.unwrap();
    let again = method_in(&spans, "test.Hop.hop");
    assert_ne!(again["trace_id"], first["trace_id"]);
}

fn method_in(spans: &Spans, m: &str) -> HashMap<String, String> {
    spans
        .0
        .lock()
        .iter()
        .find(|s| s["method"] == m)
        .unwrap()
        .clone()
}
