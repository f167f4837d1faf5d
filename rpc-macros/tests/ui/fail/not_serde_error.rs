use rpc_core::{RpcError, remote};

#[derive(Debug)]
pub enum PlotError {
    Rpc(RpcError),
}

impl From<RpcError> for PlotError {
    fn from(e: RpcError) -> Self {
        PlotError::Rpc(e)
    }
}

#[remote]
pub trait Plotter {
    async fn plot(&self, x: i64) -> Result<(), PlotError>;
}

fn main() {}
