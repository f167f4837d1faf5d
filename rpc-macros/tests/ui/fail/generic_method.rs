use rpc_core::{RpcError, remote};

#[remote]
pub trait Calc {
    async fn add<T: Into<i64>>(&self, a: T, b: i64) -> Result<i64, RpcError>;
}

fn main() {}
