use rpc_core::{RpcError, remote};

#[remote(version = 2)]
pub trait Calc {
    async fn add(&self, a: i64, b: i64) -> Result<i64, RpcError>;
}

fn main() {}
