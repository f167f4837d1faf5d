//! `#[remote(name = "...")]` sets the wire name of the class.

use rpc_core::{RemoteRef, RpcError, remote};

#[remote(name = "x.Y")]
pub trait Y {
    async fn get(&self) -> Result<u8, RpcError>;
}

struct Impl;
impl Y for Impl {
    async fn get(&self) -> Result<u8, RpcError> {
        Ok(7)
    }
}

fn main() {
    let class = <YRef as RemoteRef>::CLASS;
    assert_eq!(class.name, "x.Y");
    assert_eq!(class.methods, &["get"]);
    assert!(YRef::new(Impl).is_local());
}
