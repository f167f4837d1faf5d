use rpc_core::{RpcError, remote};

#[remote]
pub trait Greeter {
    async fn name(&self) -> Result<&str, RpcError>;
}

fn main() {}
