//! A remote trait with no methods: still gets a reference type, proxies and a class.

use rpc_core::{RemoteRef, remote};

#[remote]
pub trait Marker {}

struct Thing;
impl Marker for Thing {}

fn main() {
    let r = MarkerRef::new(Thing);
    assert!(r.is_local());
    assert_eq!(<MarkerRef as RemoteRef>::CLASS.name, "Marker");
    assert!(<MarkerRef as RemoteRef>::CLASS.methods.is_empty());
    let _server = MarkerServerProxy::new(std::sync::Arc::new(Thing));
}
