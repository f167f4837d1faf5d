//! Restricted visibility: the generated types take the trait's visibility.

mod inner {
    use rpc_core::{RpcError, remote};

    #[remote]
    pub(crate) trait Counter {
        async fn next(&self) -> Result<u64, RpcError>;
    }

    pub(crate) struct Zero;
    impl Counter for Zero {
        async fn next(&self) -> Result<u64, RpcError> {
            Ok(0)
        }
    }
}

use inner::{Counter, CounterClientProxy, CounterRef, CounterServerProxy};

fn assert_counter<T: Counter>() {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_counter::<CounterRef>();
    assert_counter::<CounterClientProxy>();
    let _skeleton = CounterServerProxy::new(std::sync::Arc::new(inner::Zero));
    let r = CounterRef::new(inner::Zero);
    assert_eq!(r.next().await.unwrap(), 0);
}
