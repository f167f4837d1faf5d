//! The data manager: data placed once under an id and used by many calls
//! crosses the wire once; every persistence mode's lifetime; moves between
//! nodes update the location and keep the bytes; sticky data does not move;
//! stored data survives a restart; unknown and deleted ids are typed errors.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::pattern;
use parking_lot::Mutex;
use rpc_core::BoxFuture;
use rpc_core::data::{DataConfig, DataError, DataManager, DataManagerRef, DataStore, Locator};
use rpc_core::data::{DataRef, Persistence};
use rpc_core::{Blob, ComHandle, Config, DataId, Node, NodeId, RpcError, remote};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(30);
const MIB: usize = 1024 * 1024;

/// A service that uses data by reference.
#[remote(name = "test.Compute")]
pub trait Compute {
    /// CRC-32 of the data `input` names, wherever it is kept.
    async fn crc(&self, input: DataRef) -> Result<u32, DataError>;
    /// Stores the bytes of `input` reversed, here, with `mode`.
    async fn reverse(&self, input: DataRef, mode: Persistence) -> Result<DataRef, DataError>;
}

struct ComputeImpl {
    node: Node,
}

impl Compute for ComputeImpl {
    async fn crc(&self, input: DataRef) -> Result<u32, DataError> {
        let h = DataStore::of(&self.node)?.fetch(&input).await?;
        Ok(crc32fast::hash(&h.read().await?))
    }

    async fn reverse(&self, input: DataRef, mode: Persistence) -> Result<DataRef, DataError> {
        let data = DataStore::of(&self.node)?;
        let mut bytes = data.fetch(&input).await?.read().await?;
        bytes.reverse();
        data.put_bytes(bytes, mode).await
    }
}

/// The location service of a test: one map shared by every node.
#[derive(Default)]
struct Registry {
    map: Mutex<HashMap<DataId, ComHandle>>,
    adds: AtomicUsize,
}

impl Registry {
    fn owner(&self, id: DataId) -> Option<NodeId> {
        self.map.lock().get(&id).map(|h| h.node)
    }
}

/// One node's view of the [`Registry`]: removes only its own entries.
struct TestLocator {
    reg: Arc<Registry>,
    me: NodeId,
}

impl Locator for TestLocator {
    fn add(&self, ids: Vec<DataId>, owner: ComHandle) -> BoxFuture<'_, Result<(), RpcError>> {
        Box::pin(async move {
            let mut m = self.reg.map.lock();
            for id in ids {
                self.reg.adds.fetch_add(1, Ordering::SeqCst);
                m.insert(id, owner.clone());
            }
            Ok(())
        })
    }

    fn remove(&self, id: DataId) -> BoxFuture<'_, Result<(), RpcError>> {
        Box::pin(async move {
            let mut m = self.reg.map.lock();
            if m.get(&id).is_some_and(|o| o.node == self.me) {
                m.remove(&id);
            }
            Ok(())
        })
    }

    fn locate(&self, id: DataId) -> BoxFuture<'_, Result<Option<ComHandle>, RpcError>> {
        Box::pin(async move { Ok(self.reg.map.lock().get(&id).cloned()) })
    }
}

/// A listening node with a data manager (on disk in `dir`, or in memory)
/// told to `reg`, exporting a `Compute` as "compute".
struct DataNode {
    node: Node,
    addr: String,
    store: DataStore,
}

async fn data_node(dir: Option<&Path>, reg: &Arc<Registry>) -> DataNode {
    data_node_with(dir, reg, rpc_core::data::VOLATILE_TTL).await
}

async fn data_node_with(dir: Option<&Path>, reg: &Arc<Registry>, ttl: Duration) -> DataNode {
    let node = Node::new(Config::default());
    let addr = node.listen("127.0.0.1:0").await.unwrap().to_string();
    let mut config = match dir {
        Some(d) => DataConfig::on_disk(d),
        None => DataConfig::in_memory(),
    };
    config.volatile_ttl = ttl;
    let store = DataStore::enable(&node, config).await.unwrap();
    store
        .set_locator(Arc::new(TestLocator {
            reg: Arc::clone(reg),
            me: node.id(),
        }))
        .await;
    node.bind_bootstrap(
        "compute",
        &ComputeRef::new(ComputeImpl { node: node.clone() }),
    )
    .unwrap();
    DataNode { node, addr, store }
}

/// A plain client node, with the data manager and the compute service of `at`.
async fn client_of(at: &DataNode) -> (Node, DataManagerRef, ComputeRef) {
    let client = Node::new(Config::default());
    let dm = client
        .lookup(&at.addr, rpc_core::data::BOOTSTRAP_NAME)
        .await
        .unwrap();
    let compute = client.lookup(&at.addr, "compute").await.unwrap();
    (client, dm, compute)
}

fn sent(n: &Node) -> u64 {
    n.stats().bytes_sent
}

fn received(n: &Node) -> u64 {
    n.stats().bytes_received
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Waits (bounded) until `dir` is empty: files of removed and used-up data
/// are unlinked on the blocking pool, just after the call that let them go.
async fn until_empty(dir: &Path) {
    let t0 = Instant::now();
    while files_in(dir) > 0 {
        assert!(t0.elapsed() < BOUND, "files were left in {}", dir.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn no_transfers_left(nodes: &[&Node]) {
    let t0 = Instant::now();
    while nodes
        .iter()
        .any(|n| n.stats().transfers_in + n.stats().transfers_out > 0)
    {
        assert!(t0.elapsed() < BOUND, "transfers left open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn data_placed_once_and_used_by_many_calls_crosses_the_wire_once() {
    let reg = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let s = data_node(Some(dir.path()), &reg).await;
    let (client, dm, compute) = client_of(&s).await;
    let bytes = pattern(4 * MIB, 7);
    let want = crc32fast::hash(&bytes);

    let before = sent(&client);
    let r = dm
        .put(Blob::from_bytes(bytes.clone()), Persistence::Persistent)
        .await
        .unwrap();
    let put_cost = sent(&client) - before;
    assert!(put_cost >= 4 * MIB as u64, "{put_cost}");
    assert!(put_cost < 4 * MIB as u64 + 64 * 1024, "{put_cost}");
    assert_eq!(r.size(), 4 * MIB as u64);
    assert_eq!(r.info().checksum, want);

    // Fifty calls name the data; its bytes do not travel again either way.
    let (sent0, recv0) = (sent(&client), received(&client));
    for _ in 0..50 {
        assert_eq!(compute.crc(r.clone()).await.unwrap(), want);
    }
    let (per_call_out, per_call_in) = (
        (sent(&client) - sent0) / 50,
        (received(&client) - recv0) / 50,
    );
    assert!(per_call_out < 1024, "{per_call_out} bytes sent per call");
    assert!(per_call_in < 1024, "{per_call_in} bytes received per call");

    // Another node that needs the bytes pulls a copy from the owner, once
    // per use, and keeps nothing: not stored, not registered.
    let other_dir = tempfile::tempdir().unwrap();
    let b = data_node(Some(other_dir.path()), &reg).await;
    let (_c2, _, b_compute) = client_of(&b).await;
    let owner_out = sent(&s.node);
    let adds = reg.adds.load(Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(b_compute.crc(r.clone()).await.unwrap(), want);
    }
    let pulled = sent(&s.node) - owner_out;
    assert!(pulled >= 3 * 4 * MIB as u64, "{pulled}");
    assert!(pulled < 3 * (4 * MIB as u64 + 64 * 1024), "{pulled}");
    assert!(b.store.list().is_empty());
    until_empty(&other_dir.path().join("tmp")).await;
    assert_eq!(files_in(&other_dir.path().join("items")), 0);
    assert_eq!(
        reg.adds.load(Ordering::SeqCst),
        adds,
        "a copy was registered"
    );
    assert_eq!(reg.owner(r.id()), Some(s.node.id()));
    no_transfers_left(&[&s.node, &b.node, &client]).await;
}

#[tokio::test]
async fn volatile_data_is_used_by_one_call_then_dropped() {
    let reg = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let s = data_node(Some(dir.path()), &reg).await;
    let b = data_node(None, &reg).await;
    let (_client, dm, _) = client_of(&s).await;
    let (_c2, _, b_compute) = client_of(&b).await;
    let bytes = pattern(300_000, 1);

    let r = dm
        .put(Blob::from_bytes(bytes.clone()), Persistence::Volatile)
        .await
        .unwrap();
    assert!(!r.has_copy());
    assert_eq!(dm.info(r.id()).await.unwrap().mode, Persistence::Volatile);
    assert_eq!(
        reg.adds.load(Ordering::SeqCst),
        0,
        "volatile data is never registered"
    );
    assert_eq!(
        files_in(&dir.path().join("items")),
        0,
        "nor written as an item"
    );

    // Its one use, by a call on another node.
    assert_eq!(
        b_compute.crc(r.clone()).await.unwrap(),
        crc32fast::hash(&bytes)
    );
    assert_eq!(
        b_compute.crc(r.clone()).await.unwrap_err(),
        DataError::NoSuchData { id: r.id() }
    );
    assert_eq!(
        dm.get(r.id()).await.unwrap_err(),
        DataError::NoSuchData { id: r.id() }
    );
    assert!(dm.list().await.unwrap().is_empty());
    no_transfers_left(&[&s.node, &b.node]).await;
    until_empty(&dir.path().join("tmp")).await;

    // Used locally, it goes the same way.
    let r = s
        .store
        .put_bytes(bytes.clone(), Persistence::Volatile)
        .await
        .unwrap();
    let h = s.store.fetch(&r).await.unwrap();
    assert!(h.is_temporary());
    assert_eq!(h.read().await.unwrap(), bytes);
    assert!(!s.store.contains(r.id()));
    drop(h);
    until_empty(&dir.path().join("tmp")).await;
}

#[tokio::test]
async fn unused_volatile_data_expires() {
    let reg = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let s = data_node_with(Some(dir.path()), &reg, Duration::from_millis(100)).await;
    let r = s
        .store
        .put_bytes(vec![1, 2, 3], Persistence::Volatile)
        .await
        .unwrap();
    let t0 = Instant::now();
    while !s.store.list().is_empty() {
        assert!(t0.elapsed() < BOUND, "volatile data never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        s.store.fetch(&r).await.unwrap_err(),
        DataError::NoSuchData { id: r.id() }
    );
    until_empty(&dir.path().join("tmp")).await;
}

#[tokio::test]
async fn stored_modes_stay_and_return_modes_copy_back() {
    let reg: Arc<Registry> = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let s = data_node(Some(dir.path()), &reg).await;
    let (client, dm, compute) = client_of(&s).await;
    for (i, mode) in Persistence::ALL.into_iter().skip(1).enumerate() {
        let bytes = pattern(200_000 + i, i as u8);
        let r = dm.put(Blob::from_bytes(bytes.clone()), mode).await.unwrap();
        assert_eq!(r.mode(), mode);
        assert_eq!(r.has_copy(), mode.copies_back(), "{mode}");
        if let Some(copy) = r.take_copy() {
            assert_eq!(copy.into_bytes().await.unwrap(), bytes, "{mode}");
        }
        assert!(r.take_copy().is_none(), "a copy is taken once");
        // Stored: used again and again, registered, on disk.
        for _ in 0..3 {
            assert_eq!(
                compute.crc(r.clone()).await.unwrap(),
                crc32fast::hash(&bytes)
            );
        }
        assert_eq!(dm.info(r.id()).await.unwrap(), *r.info());
        assert_eq!(reg.owner(r.id()), Some(s.node.id()), "{mode}");
        assert!(
            dir.path()
                .join("items")
                .join(format!("{}.bin", r.id().0.simple()))
                .is_file()
        );
        // Until it is removed.
        assert_eq!(dm.remove(r.id()).await.unwrap(), *r.info());
        assert_eq!(reg.owner(r.id()), None);
        assert_eq!(
            compute.crc(r.clone()).await.unwrap_err(),
            DataError::NoSuchData { id: r.id() }
        );
    }
    assert_eq!(files_in(&dir.path().join("items")), 0);
    no_transfers_left(&[&s.node, &client]).await;
}

#[tokio::test]
async fn results_of_return_modes_carry_a_copy_of_the_new_data() {
    let reg = Arc::default();
    let s = data_node(None, &reg).await;
    let (client, dm, compute) = client_of(&s).await;
    let bytes = pattern(100_000, 3);
    let mut reversed = bytes.clone();
    reversed.reverse();
    let input = dm
        .put(Blob::from_bytes(bytes), Persistence::Sticky)
        .await
        .unwrap();

    let out = compute
        .reverse(input.clone(), Persistence::PersistentReturn)
        .await
        .unwrap();
    let copy = out.take_copy().expect("a copy comes back");
    assert_eq!(copy.into_bytes().await.unwrap(), reversed);
    let kept = s.store.fetch(&out).await.unwrap().read().await.unwrap();
    assert_eq!(kept, reversed, "and the server keeps it");

    let out = compute
        .reverse(input.clone(), Persistence::Persistent)
        .await
        .unwrap();
    assert!(
        !out.has_copy(),
        "persistent results stay on the server only"
    );

    // A copy nobody takes is released without being transferred.
    let before = received(&client);
    let out = compute
        .reverse(input, Persistence::StickyReturn)
        .await
        .unwrap();
    assert!(out.has_copy());
    drop(out);
    no_transfers_left(&[&s.node, &client]).await;
    assert!(received(&client) - before < 4096);
}

#[tokio::test]
async fn moving_persistent_data_goes_node_to_node_and_updates_the_location() {
    let reg: Arc<Registry> = Arc::default();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = data_node(Some(da.path()), &reg).await;
    let b = data_node(Some(db.path()), &reg).await;
    let (client, a_dm, _) = client_of(&a).await;
    let b_dm: DataManagerRef = client
        .lookup(&b.addr, rpc_core::data::BOOTSTRAP_NAME)
        .await
        .unwrap();
    let bytes = pattern(3 * MIB, 9);
    for mode in [Persistence::Persistent, Persistence::PersistentReturn] {
        let r = a_dm
            .put(Blob::from_bytes(bytes.clone()), mode)
            .await
            .unwrap();
        drop(r.take_copy());
        assert_eq!(reg.owner(r.id()), Some(a.node.id()));

        let client_out = sent(&client);
        let moved = a_dm.move_to(r.id(), b_dm.clone()).await.unwrap();
        assert!(
            sent(&client) - client_out < 64 * 1024,
            "the bytes went through the client"
        );
        assert_eq!(moved.owner().node, b.node.id());
        assert_eq!(moved.info(), r.info());
        assert!(!moved.has_copy(), "a move sends no copy back");
        assert_eq!(reg.owner(r.id()), Some(b.node.id()));
        assert!(!a.store.contains(r.id()));
        assert_eq!(b.store.info(r.id()).unwrap(), *r.info());
        let (_, blob) = b_dm.get(r.id()).await.unwrap();
        assert_eq!(blob.into_bytes().await.unwrap(), bytes);

        // A reference made before the move (owner: a) still works from a
        // third node: the location service knows the new owner.
        let c = data_node(None, &reg).await;
        let (_c3, _, c_compute) = client_of(&c).await;
        assert_eq!(
            c_compute.crc(r.clone()).await.unwrap(),
            crc32fast::hash(&bytes)
        );
    }
    assert_eq!(files_in(&da.path().join("items")), 0);
    assert_eq!(files_in(&db.path().join("items")), 4);
    no_transfers_left(&[&a.node, &b.node, &client]).await;
}

/// `remove` returns before a large file is unlinked (the file system takes
/// tens of ms to free its blocks): the id's file is set aside at once, so
/// the same data can come back straight away (a move there and back), and
/// what was set aside is gone soon after.
#[tokio::test]
async fn a_removed_item_can_come_back_at_once_and_its_old_file_goes() {
    let reg: Arc<Registry> = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let a = data_node(Some(dir.path()), &reg).await;
    let bytes = pattern(4 * MIB, 5);
    let r = a
        .store
        .put_bytes(bytes.clone(), Persistence::Persistent)
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(a.store.remove(r.id()).await.unwrap(), *r.info());
        assert_eq!(files_in(&dir.path().join("items")), 0);
        let back = Blob::from_bytes(bytes.clone());
        assert_eq!(
            a.store.receive(r.info().clone(), back).await.unwrap(),
            *r.info()
        );
    }
    until_empty(&dir.path().join("tmp")).await;
    assert_eq!(files_in(&dir.path().join("items")), 2);
    let h = a.store.fetch(&r).await.unwrap();
    assert_eq!(h.read().await.unwrap(), bytes);
}

#[tokio::test]
async fn sticky_and_volatile_data_does_not_move() {
    let reg: Arc<Registry> = Arc::default();
    let a = data_node(None, &reg).await;
    let b = data_node(None, &reg).await;
    let (client, a_dm, _) = client_of(&a).await;
    let b_dm: DataManagerRef = client
        .lookup(&b.addr, rpc_core::data::BOOTSTRAP_NAME)
        .await
        .unwrap();
    for mode in [
        Persistence::Sticky,
        Persistence::StickyReturn,
        Persistence::Volatile,
    ] {
        let r = a_dm
            .put(Blob::from_bytes(vec![5; 1000]), mode)
            .await
            .unwrap();
        drop(r.take_copy());
        assert_eq!(
            a_dm.move_to(r.id(), b_dm.clone()).await.unwrap_err(),
            DataError::NotMovable { id: r.id(), mode }
        );
        assert!(a.store.contains(r.id()), "{mode} data left its node");
        assert!(!b.store.contains(r.id()));
    }
    // A destination refuses sticky data too, whoever sends it.
    let info = a.store.list()[0].clone();
    let e = b_dm
        .receive(
            rpc_core::data::DataInfo {
                mode: Persistence::Sticky,
                ..info
            },
            None,
            Blob::from_bytes(vec![5; 1000]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, DataError::NotMovable { .. }), "{e:?}");
}

#[tokio::test]
async fn a_move_whose_bytes_do_not_match_stores_nothing() {
    let reg: Arc<Registry> = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let b = data_node(Some(dir.path()), &reg).await;
    let (_client, b_dm, _) = client_of(&b).await;
    let info = rpc_core::data::DataInfo {
        id: DataId::random(),
        mode: Persistence::Persistent,
        size: 1000,
        checksum: crc32fast::hash(&[1; 1000]),
    };
    let e = b_dm
        .receive(info.clone(), None, Blob::from_bytes(vec![2; 1000]))
        .await
        .unwrap_err();
    assert!(matches!(e, DataError::Storage { .. }), "{e:?}");
    assert!(!b.store.contains(info.id));
    assert_eq!(files_in(&dir.path().join("tmp")), 0);
    assert_eq!(files_in(&dir.path().join("items")), 0);
    // The right bytes are taken, and taking them again is no error.
    for _ in 0..2 {
        b_dm.receive(info.clone(), None, Blob::from_bytes(vec![1; 1000]))
            .await
            .unwrap();
    }
    assert_eq!(reg.owner(info.id), Some(b.node.id()));
}

#[tokio::test]
async fn stored_data_survives_a_restart_and_volatile_data_does_not() {
    let reg: Arc<Registry> = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let (p, s, v) = {
        let a = data_node(Some(dir.path()), &reg).await;
        let p = a
            .store
            .put_bytes(pattern(2 * MIB, 1), Persistence::Persistent)
            .await
            .unwrap();
        let s = a
            .store
            .put_bytes(pattern(1000, 2), Persistence::StickyReturn)
            .await
            .unwrap();
        let v = a
            .store
            .put_bytes(pattern(1000, 3), Persistence::Volatile)
            .await
            .unwrap();
        a.node.shutdown().await;
        (p, s, v)
    };
    let fresh: Arc<Registry> = Arc::default();
    let a = data_node(Some(dir.path()), &fresh).await;
    let mut want = vec![p.info().clone(), s.info().clone()];
    want.sort_by_key(|i| i.id);
    assert_eq!(a.store.list(), want);
    assert!(!a.store.contains(v.id()));
    assert_eq!(
        a.store.fetch(&p).await.unwrap().read().await.unwrap(),
        pattern(2 * MIB, 1)
    );
    assert_eq!(
        a.store
            .fetch_id(s.id())
            .await
            .unwrap()
            .read()
            .await
            .unwrap(),
        pattern(1000, 2)
    );
    // The restarted node told its location service what it keeps.
    assert_eq!(fresh.owner(p.id()), Some(a.node.id()));
    assert_eq!(fresh.owner(s.id()), Some(a.node.id()));
    assert_eq!(fresh.owner(v.id()), None);
    assert_eq!(files_in(&dir.path().join("tmp")), 0);
}

#[tokio::test]
async fn damaged_files_are_dropped_at_start_and_bad_copies_refused() {
    let reg: Arc<Registry> = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let (flipped, cut) = {
        let a = data_node(Some(dir.path()), &reg).await;
        let flipped = a
            .store
            .put_bytes(vec![1; 5000], Persistence::Persistent)
            .await
            .unwrap();
        let cut = a
            .store
            .put_bytes(vec![2; 5000], Persistence::Persistent)
            .await
            .unwrap();
        a.node.shutdown().await;
        (flipped, cut)
    };
    let items = dir.path().join("items");
    let bin = |r: &DataRef| items.join(format!("{}.bin", r.id().0.simple()));
    std::fs::write(bin(&flipped), vec![9; 5000]).unwrap();
    std::fs::write(bin(&cut), vec![2; 10]).unwrap();
    std::fs::write(items.join("junk.meta"), b"not cbor").unwrap();
    std::fs::write(items.join("orphan.bin"), b"left over").unwrap();

    let fresh: Arc<Registry> = Arc::default();
    let a = data_node(Some(dir.path()), &fresh).await;
    assert_eq!(a.store.list(), vec![flipped.info().clone()]);
    assert_eq!(
        files_in(&items),
        2,
        "only the flipped item's two files stay"
    );
    // Same size, other bytes: caught when another node pulls a copy.
    let b = data_node(None, &fresh).await;
    let e = b.store.fetch(&flipped).await.unwrap_err();
    assert!(matches!(e, DataError::Storage { .. }), "{e:?}");
    let cut_here = DataRef::new(cut.info().clone(), a.node.com_handle());
    assert_eq!(
        b.store.fetch(&cut_here).await.unwrap_err(),
        DataError::NoSuchData { id: cut.id() }
    );
}

#[tokio::test]
async fn unknown_and_deleted_ids_are_typed_errors() {
    let reg: Arc<Registry> = Arc::default();
    let a = data_node(None, &reg).await;
    let b = data_node(None, &reg).await;
    let (client, dm, compute) = client_of(&a).await;
    let b_dm: DataManagerRef = client
        .lookup(&b.addr, rpc_core::data::BOOTSTRAP_NAME)
        .await
        .unwrap();
    let id = DataId::random();
    let none = DataError::NoSuchData { id };
    assert_eq!(dm.get(id).await.unwrap_err(), none);
    assert_eq!(dm.info(id).await.unwrap_err(), none);
    assert_eq!(dm.remove(id).await.unwrap_err(), none);
    assert_eq!(dm.move_to(id, b_dm).await.unwrap_err(), none);
    assert_eq!(b.store.fetch_id(id).await.unwrap_err(), none);

    let r = dm
        .put(Blob::from_bytes(vec![1; 10]), Persistence::Persistent)
        .await
        .unwrap();
    dm.remove(r.id()).await.unwrap();
    let gone = DataError::NoSuchData { id: r.id() };
    assert_eq!(dm.remove(r.id()).await.unwrap_err(), gone);
    assert_eq!(compute.crc(r.clone()).await.unwrap_err(), gone);
    assert_eq!(b.store.fetch(&r).await.unwrap_err(), gone);
    // A node without a data manager says so.
    assert_eq!(
        DataStore::of(&client).unwrap_err(),
        DataError::NoDataManager
    );
    let e = client
        .lookup::<DataManagerRef>(&a.addr, "nothing")
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::NotBound { .. }));
    // And enabling it twice is refused.
    let e = DataStore::enable(&a.node, DataConfig::in_memory())
        .await
        .unwrap_err();
    assert!(matches!(e, DataError::Storage { .. }));
}

#[tokio::test]
async fn data_moves_between_memory_and_disk_stores() {
    let reg: Arc<Registry> = Arc::default();
    let dir = tempfile::tempdir().unwrap();
    let mem = data_node(None, &reg).await;
    let disk = data_node(Some(dir.path()), &reg).await;
    let (client, mem_dm, _) = client_of(&mem).await;
    let disk_dm: DataManagerRef = client
        .lookup(&disk.addr, rpc_core::data::BOOTSTRAP_NAME)
        .await
        .unwrap();
    let bytes = pattern(MIB, 4);
    let r = mem_dm
        .put(Blob::from_bytes(bytes.clone()), Persistence::Persistent)
        .await
        .unwrap();
    let there = mem_dm.move_to(r.id(), disk_dm.clone()).await.unwrap();
    assert_eq!(there.owner().node, disk.node.id());
    let back = disk_dm.move_to(r.id(), mem_dm.clone()).await.unwrap();
    assert_eq!(back.owner().node, mem.node.id());
    assert_eq!(
        mem.store.fetch(&r).await.unwrap().read().await.unwrap(),
        bytes
    );
    assert_eq!(files_in(&dir.path().join("items")), 0);
    // Moving to where it is already changes nothing.
    let own = mem.store.manager().unwrap();
    assert!(own.is_local());
    let same = mem.store.move_to(r.id(), &own).await.unwrap();
    assert_eq!(same.owner().node, mem.node.id());
    assert!(mem.store.contains(r.id()));
}
