use rpc_core::remote;

#[remote]
pub trait Calc {
    async fn add(&self, a: i64, b: i64) -> rpc_core::Result<i64>;
}

fn main() {}
