use rpc_core::{RpcError, remote};

#[remote]
pub trait Vault {
    async fn capability(&self) -> Result<String, RpcError>;
}

fn main() {}
