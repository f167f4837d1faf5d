//! Helpers of the transfer tests: a client, a raw capability, and a wait
//! for transfer state to be gone.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use super::CalcRef;
use rpc_core::{Capability, Config, Node, RemoteRef};
use std::time::{Duration, Instant};

/// Longest a transfer test waits for anything.
pub const BOUND: Duration = Duration::from_secs(60);

/// A fresh client node and its proxy to the server's calc object.
pub async fn client_for(addr: &str) -> (Node, CalcRef) {
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(addr, "calc").await.unwrap();
    (client, calc)
}

/// Waits until both nodes hold no transfer state.
pub async fn no_transfers_left(nodes: &[&Node]) {
    let t0 = Instant::now();
    loop {
        let open: usize = nodes
            .iter()
            .map(|n| n.stats().transfers_in + n.stats().transfers_out)
            .sum();
        if open == 0 {
            return;
        }
        assert!(t0.elapsed() < BOUND, "transfers left open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A client node and the raw capability of the server's calc object.
pub async fn calc_capability(addr: &str) -> (Node, Capability) {
    let (client, calc) = client_for(addr).await;
    let mut cap = calc.capability().unwrap().clone();
    cap.class = CalcRef::CLASS.id;
    cap.version = CalcRef::CLASS.version;
    (client, cap)
}
