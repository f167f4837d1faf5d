//! Many clients at once against one in-process name server.

mod common;

use common::*;
use nameserver::NameClient;
use rpc_core::Node;
use std::time::Duration;
use tokio::task::JoinSet;

const CLIENTS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_resolve_at_once() {
    let server = TestServer::start(Duration::from_secs(30)).await;
    let home = listening_node().await;
    let names = NameClient::connect_as(&home, &server.addr, "svc")
        .await
        .unwrap();
    for i in 0..8 {
        names
            .bind(&format!("svc/g{i}"), &GreeterRef::new(Hello("hi")))
            .await
            .unwrap();
    }
    // Every client connects first, then all resolve at the same moment.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut set = JoinSet::new();
    for c in 0..CLIENTS {
        let addr = server.addr.clone();
        let barrier = std::sync::Arc::clone(&barrier);
        set.spawn(async move {
            let node = Node::new(fast_config());
            let reader = NameClient::connect(&node, &addr).await.unwrap();
            barrier.wait().await;
            for round in 0..10 {
                let path = format!("svc/g{}", (c + round) % 8);
                let g: GreeterRef = reader.resolve(&path).await.unwrap();
                assert_eq!(g.greet(format!("{c}")).await.unwrap(), format!("hi, {c}"));
            }
            reader.list("svc").await.unwrap().len()
        });
    }
    let all = tokio::time::timeout(WAIT, async {
        let mut n = 0;
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap(), 8);
            n += 1;
        }
        n
    })
    .await
    .expect("all clients finish in time");
    assert_eq!(all, CLIENTS);
}
