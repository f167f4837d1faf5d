use rpc_core::remote;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub enum CalcError {
    DivByZero,
}

#[remote]
pub trait Calc {
    async fn div(&self, a: i64, b: i64) -> Result<i64, CalcError>;
}

fn main() {}
