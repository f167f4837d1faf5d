use rpc_core::{RpcError, remote};

#[remote(name =)]
pub trait Calc {
    async fn add(&self, a: i64, b: i64) -> Result<i64, RpcError>;
}

fn main() {}
