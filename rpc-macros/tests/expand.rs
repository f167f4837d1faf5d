//! The API surface `#[remote]` generates: the `{T}Ref`, `{T}ClientProxy` and
//! `{T}ServerProxy` types, the inherent methods of the reference type, and the
//! class description (name, id, version) with its link-time registration.

use rpc_core::{
    ClassId, ClassVersion, Config, Node, RemoteRef, RpcError, ServerProxy, class_registry, remote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A counter, named on the wire.
#[remote(name = "expand.Counter")]
pub trait Counter {
    /// Adds `by`, returns the new total.
    async fn add(&self, by: u64) -> Result<u64, RpcError>;
    /// The total.
    async fn total(&self) -> Result<u64, RpcError>;
}

/// A trait without `name`: its class is named after the trait.
#[remote]
pub trait Plain {
    /// Does nothing.
    async fn ping(&self) -> Result<(), RpcError>;
}

/// Version A of `expand.Versioned`.
#[remote(name = "expand.Versioned")]
pub trait VersionA {
    /// Takes an `i64` called `a`.
    async fn f(&self, a: i64, s: String) -> Result<i64, RpcError>;
}

/// Same signature as [`VersionA`], other argument names.
#[remote(name = "expand.Versioned")]
pub trait VersionRenamed {
    /// Takes an `i64` called `renamed`.
    async fn f(&self, renamed: i64, text: String) -> Result<i64, RpcError>;
}

/// Other argument type than [`VersionA`].
#[remote(name = "expand.Versioned")]
pub trait VersionArgType {
    /// Takes an `i32`.
    async fn f(&self, a: i32, s: String) -> Result<i64, RpcError>;
}

/// Other result type than [`VersionA`].
#[remote(name = "expand.Versioned")]
pub trait VersionResultType {
    /// Returns a `u64`.
    async fn f(&self, a: i64, s: String) -> Result<u64, RpcError>;
}

/// Other method name than [`VersionA`].
#[remote(name = "expand.Versioned")]
pub trait VersionMethodName {
    /// Called `g`.
    async fn g(&self, a: i64, s: String) -> Result<i64, RpcError>;
}

/// The object behind the references.
#[derive(Default)]
struct Count(AtomicU64);

impl Counter for Count {
    async fn add(&self, by: u64) -> Result<u64, RpcError> {
        Ok(self.0.fetch_add(by, Ordering::SeqCst) + by)
    }
    async fn total(&self) -> Result<u64, RpcError> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}

fn implements_counter<T: Counter + Clone + Debug>() {}
fn is_serde<T: Serialize + DeserializeOwned>() {}
fn is_remote_ref<T: RemoteRef>() {}

#[test]
fn generated_types_exist() {
    implements_counter::<CounterRef>();
    implements_counter::<CounterClientProxy>();
    is_serde::<CounterRef>();
    is_remote_ref::<CounterRef>();

    let server = Arc::new(CounterServerProxy::new(Arc::new(Count::default())));
    assert_eq!(server.class().name, "expand.Counter");
    assert!(std::ptr::eq(
        server.class(),
        <CounterRef as RemoteRef>::CLASS
    ));
    assert_eq!(format!("{server:?}"), "CounterServerProxy");
}

#[tokio::test]
async fn new_is_local_and_calls_the_object() {
    let r = CounterRef::new(Count::default());
    assert!(r.is_local());
    assert!(r.capability().is_none());
    assert!(r.client_proxy().is_none());
    assert!(r.remote_handle().is_none());
    assert_eq!(r.add(2).await.unwrap(), 2);
    assert_eq!(r.add(3).await.unwrap(), 5);

    // Clones share the object.
    let c = r.clone();
    assert_eq!(c.add(1).await.unwrap(), 6);
    assert_eq!(r.total().await.unwrap(), 6);
    assert!(format!("{r:?}").starts_with("CounterRef(local "));
}

#[tokio::test]
async fn from_arc_shares_the_object() {
    let obj = Arc::new(Count::default());
    let r = CounterRef::from_arc(Arc::clone(&obj));
    let s = CounterRef::from_arc(Arc::clone(&obj));
    assert!(r.is_local());
    assert_eq!(r.add(4).await.unwrap(), 4);
    assert_eq!(s.add(1).await.unwrap(), 5);
    assert_eq!(obj.0.load(Ordering::SeqCst), 5);

    // Debug shows the address of the shared object. (It currently prints the
    // whole fat pointer, `Pointer { addr: .., metadata: DynMetadata(..) }`.)
    let addr = format!("{:p}", Arc::as_ptr(&obj));
    assert!(format!("{r:?}").starts_with("CounterRef(local "), "{r:?}");
    assert!(format!("{r:?}").contains(&addr), "{r:?} lacks {addr}");
    assert!(format!("{s:?}").contains(&addr), "{s:?} lacks {addr}");
}

#[tokio::test]
async fn with_timeout_on_a_local_reference_keeps_it_local() {
    let r = CounterRef::new(Count::default());
    let t = r.with_timeout(Duration::from_millis(1));
    assert!(t.is_local());
    assert!(t.capability().is_none());
    // Same object, and no deadline applies to local calls.
    assert_eq!(t.add(7).await.unwrap(), 7);
    assert_eq!(r.total().await.unwrap(), 7);
    assert_eq!(format!("{r:?}"), format!("{t:?}"));
}

#[tokio::test]
async fn remote_reference_has_a_capability_and_keeps_it_with_timeout() {
    let server = Node::new(Config::default());
    let addr = server.listen("127.0.0.1:0").await.unwrap().to_string();
    let cap = server
        .bind_bootstrap("counter", &CounterRef::new(Count::default()))
        .unwrap();
    let client = Node::new(Config::default());
    let r: CounterRef = client.lookup(&addr, "counter").await.unwrap();

    assert!(!r.is_local());
    assert_eq!(r.capability(), Some(&cap));
    assert_eq!(r.capability().unwrap().class, CounterRef::CLASS.id);
    assert_eq!(r.capability().unwrap().version, CounterRef::CLASS.version);
    assert!(r.client_proxy().is_some());
    assert!(format!("{r:?}").starts_with("CounterRef("));
    assert_eq!(r.add(3).await.unwrap(), 3);

    let t = r.with_timeout(Duration::from_secs(42));
    assert!(!t.is_local());
    assert_eq!(t.capability(), Some(&cap));
    assert_eq!(
        t.client_proxy().unwrap().handle().timeout(),
        Duration::from_secs(42)
    );
    assert_ne!(
        r.client_proxy().unwrap().handle().timeout(),
        Duration::from_secs(42)
    );
    assert_eq!(t.total().await.unwrap(), 3);

    client.shutdown().await;
    server.shutdown().await;
}

#[test]
fn class_id_is_derived_from_the_name() {
    let counter = CounterRef::CLASS;
    assert_eq!(counter.name, "expand.Counter");
    assert_eq!(counter.id, ClassId::of("expand.Counter"));
    assert_eq!(counter.methods, &["add", "total"]);

    let plain = PlainRef::CLASS;
    assert_eq!(plain.name, "Plain");
    assert_eq!(plain.id, ClassId::of("Plain"));
    assert_ne!(plain.id, counter.id);

    // One name, one id, whatever the signatures.
    let id = ClassId::of("expand.Versioned");
    for class in [
        VersionARef::CLASS,
        VersionRenamedRef::CLASS,
        VersionArgTypeRef::CLASS,
        VersionResultTypeRef::CLASS,
        VersionMethodNameRef::CLASS,
    ] {
        assert_eq!(class.name, "expand.Versioned");
        assert_eq!(class.id, id);
    }
}

#[test]
fn class_version_follows_the_signatures_not_the_argument_names() {
    let a = VersionARef::CLASS.version;
    assert_eq!(
        VersionRenamedRef::CLASS.version,
        a,
        "argument names changed"
    );
    assert_ne!(VersionArgTypeRef::CLASS.version, a, "argument type changed");
    assert_ne!(
        VersionResultTypeRef::CLASS.version,
        a,
        "result type changed"
    );
    assert_ne!(VersionMethodNameRef::CLASS.version, a, "method renamed");
}

#[test]
fn class_registry_finds_each_class_by_id_and_version() {
    let reg = class_registry();
    for class in [
        CounterRef::CLASS,
        PlainRef::CLASS,
        VersionARef::CLASS,
        VersionRenamedRef::CLASS,
        VersionArgTypeRef::CLASS,
        VersionResultTypeRef::CLASS,
        VersionMethodNameRef::CLASS,
    ] {
        let found = reg
            .get(class.id, class.version)
            .unwrap_or_else(|| panic!("{} is not registered", class.name));
        assert_eq!(found.name, class.name);
        assert_eq!(found.version, class.version);
    }

    // Four distinct versions of one class: A (and its renamed twin), and three changes.
    let versions = reg.versions(ClassId::of("expand.Versioned"));
    assert_eq!(versions.len(), 4, "{versions:?}");

    let unknown = ClassVersion(VersionARef::CLASS.version.0 ^ 1);
    assert!(reg.get(VersionARef::CLASS.id, unknown).is_none());
}
