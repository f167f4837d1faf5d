use rpc_core::{RpcError, remote};

#[remote]
pub trait Store {
    #[idempotent(retries = 3)]
    async fn get(&self, key: String) -> Result<String, RpcError>;
}

fn main() {}
