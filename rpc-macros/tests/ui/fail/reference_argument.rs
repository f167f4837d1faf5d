use rpc_core::{RpcError, remote};

#[remote]
pub trait Greeter {
    async fn greet(&self, name: &str) -> Result<String, RpcError>;
}

fn main() {}
