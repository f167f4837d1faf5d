use rpc_core::{RpcError, remote};
use std::sync::Arc;

#[remote]
pub trait Calc {
    async fn add(self: Arc<Self>, a: i64, b: i64) -> Result<i64, RpcError>;
}

fn main() {}
