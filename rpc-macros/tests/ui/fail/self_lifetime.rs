use rpc_core::{RpcError, remote};

#[remote]
pub trait Calc {
    async fn add(&'static self, a: i64, b: i64) -> Result<i64, RpcError>;
}

fn main() {}
