use rpc_core::remote;

#[remote]
pub auto trait Calc {}

fn main() {}
