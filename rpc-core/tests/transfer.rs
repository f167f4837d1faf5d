//! The large message proxy: values above the threshold are pulled in chunks.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use rpc_core::{Config, Node, RpcError};
use serde_bytes::ByteBuf;

#[tokio::test]
async fn one_mebibyte_round_trip() {
    let (_s, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let data = pattern(1 << 20, 7);
    let back = calc.echo_bytes(ByteBuf::from(data.clone())).await.unwrap();
    assert!(back.as_slice() == data.as_slice());
    let _ = RpcError::Cancelled;
}
