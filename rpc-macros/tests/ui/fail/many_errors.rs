use rpc_core::{RpcError, remote};

#[remote]
pub trait Calc {
    fn add(&self, a: i64, b: i64) -> Result<i64, RpcError>;
    async fn sub(self, a: i64, b: i64) -> Result<i64, RpcError>;
    async fn greet(&self, name: &str) -> Result<String, RpcError>;
    async fn neg(&self, a: i64) -> i64;
    async fn capability(&self) -> Result<(), RpcError>;
    type Output;
}

fn main() {}
