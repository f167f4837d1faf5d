use rpc_core::{RpcError, remote};

#[remote]
pub trait Calc {
    const fn add(&self, a: i64, b: i64) -> Result<i64, RpcError>;
}

fn main() {}
