use rpc_core::{RpcError, remote};

#[remote]
pub trait Logger {
    async fn log(&self, msg: dyn std::fmt::Display) -> Result<(), RpcError>;
}

fn main() {}
