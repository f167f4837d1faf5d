//! References to other remote traits, nested inside `Option<Vec<..>>`, as
//! arguments and results; and a trait that refers to its own reference type.

use rpc_core::{RpcError, remote};

#[remote]
pub trait Listener {
    async fn notify(&self, v: i64) -> Result<(), RpcError>;
}

#[remote]
pub trait Hub {
    async fn subscribe(&self, ls: Option<Vec<ListenerRef>>) -> Result<usize, RpcError>;
    async fn listeners(&self) -> Result<Option<Vec<ListenerRef>>, RpcError>;
    async fn child(&self) -> Result<HubRef, RpcError>;
}

struct Count;
impl Listener for Count {
    async fn notify(&self, _v: i64) -> Result<(), RpcError> {
        Ok(())
    }
}

struct H;
impl Hub for H {
    async fn subscribe(&self, ls: Option<Vec<ListenerRef>>) -> Result<usize, RpcError> {
        let ls = ls.unwrap_or_default();
        for l in &ls {
            l.notify(1).await?;
        }
        Ok(ls.len())
    }
    async fn listeners(&self) -> Result<Option<Vec<ListenerRef>>, RpcError> {
        Ok(Some(vec![ListenerRef::new(Count)]))
    }
    async fn child(&self) -> Result<HubRef, RpcError> {
        Ok(HubRef::new(H))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let hub = HubRef::new(H);
    let n = hub
        .subscribe(Some(vec![ListenerRef::new(Count), ListenerRef::new(Count)]))
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(hub.listeners().await.unwrap().map(|v| v.len()), Some(1));
    assert!(hub.child().await.unwrap().is_local());
}
