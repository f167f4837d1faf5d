use rpc_core::{RpcError, remote};

#[remote]
pub trait Calc {
    async fn apply(&self, f: fn(i64) -> i64, x: i64) -> Result<i64, RpcError>;
}

fn main() {}
