use rpc_core::{RpcError, remote};

#[remote]
pub trait Calc {
    async fn zero() -> Result<i64, RpcError>;
}

fn main() {}
