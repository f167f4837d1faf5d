use rpc_core::{RpcError, remote};

#[remote]
pub trait Vault {
    async fn __rpc_open(&self) -> Result<String, RpcError>;
}

fn main() {}
