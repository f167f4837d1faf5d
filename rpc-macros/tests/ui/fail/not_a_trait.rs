use rpc_core::remote;

#[remote]
pub struct Calc {
    total: i64,
}

fn main() {}
