//! Objects bound in the name server are pinned: the distributed GC keeps them
//! even when no node holds a proxy.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use nameserver::client::NameClient;
use nameserver::server::NameServer;
use rpc_core::{Config, Node, RpcError, remote};
use std::time::Duration;

/// A trivial interface to bind.
#[remote(name = "test.Echo")]
pub trait Echo {
    /// Returns its argument.
    async fn echo(&self, s: String) -> Result<String, RpcError>;
}

struct E;
impl Echo for E {
    async fn echo(&self, s: String) -> Result<String, RpcError> {
        Ok(s)
    }
}

#[tokio::test]
async fn a_bound_object_outlives_every_proxy() {
    let short = || Config {
        lease: Duration::from_millis(300),
        ..Config::default()
    };
    let ns_node = Node::new(short());
    let ns_addr = ns_node.listen("127.0.0.1:0").await.unwrap().to_string();
    let _ns = NameServer::install(&ns_node, Duration::from_secs(30)).unwrap();

    let server = Node::new(short());
    server.listen("127.0.0.1:0").await.unwrap();
    let names = NameClient::connect_as(&server, &ns_addr, "echoes")
        .await
        .unwrap();
    names.bind("echoes/e", &EchoRef::new(E)).await.unwrap();
    let before = server.stats().exports;

    // Many lease periods with nobody holding a proxy to it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.stats().exports, before);

    let client = Node::new(Config::default());
    let cnames = NameClient::connect(&client, &ns_addr).await.unwrap();
    let e: EchoRef = cnames.resolve("echoes/e").await.unwrap();
    assert_eq!(e.echo("still here".into()).await.unwrap(), "still here");
    // The name server's context objects survive too.
    assert!(!cnames.list("echoes").await.unwrap().is_empty());
}
