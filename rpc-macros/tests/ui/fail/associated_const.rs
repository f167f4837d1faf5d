use rpc_core::{RpcError, remote};

#[remote]
pub trait Calc {
    const BASE: i64;
    async fn add(&self, a: i64, b: i64) -> Result<i64, RpcError>;
}

fn main() {}
