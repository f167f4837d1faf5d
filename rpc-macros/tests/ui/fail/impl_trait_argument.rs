use rpc_core::{RpcError, remote};

#[remote]
pub trait Greeter {
    async fn greet(&self, name: impl Into<String>) -> Result<String, RpcError>;
}

fn main() {}
