use rpc_core::{RpcError, remote};

pub struct Point {
    pub x: i64,
    pub y: i64,
}

#[remote]
pub trait Plotter {
    async fn plot(&self, p: Point) -> Result<(), RpcError>;
}

fn main() {}
