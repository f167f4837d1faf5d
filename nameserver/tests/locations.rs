//! The location service (the LocManager role) against an in-process name
//! server: data ids recorded by the nodes keeping them are found from any
//! context, move with a new record, go with their recorder's lease, come back
//! after a name server restart, and serve rpc-core's data manager through the
//! `Locator` adapter.

mod common;

use common::*;
use nameserver::api::{MAX_DATA_IDS_PER_CALL, NameContext, NameContextRef};
use nameserver::{DataLocation, NameClient, NameError};
use rpc_core::{DataId, Node, RpcError};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(30);

// Long enough that a renewal delayed by a loaded CI machine is still in time.
const SHORT_LEASE: Duration = Duration::from_millis(1500);

fn ids(n: usize) -> Vec<DataId> {
    let mut ids: Vec<DataId> = (0..n).map(|_| DataId::random()).collect();
    ids.sort();
    ids
}

fn ids_of(list: &[DataLocation]) -> Vec<DataId> {
    list.iter().map(|d| d.id).collect()
}

async fn is_located(reader: &NameClient, id: DataId) -> bool {
    reader.locate(id).await.is_ok()
}

#[tokio::test]
async fn data_is_located_from_the_root_and_from_other_contexts() {
    let server = TestServer::start(LEASE).await;
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &server.addr, "dbserver")
        .await
        .unwrap();
    let kept = ids(3);
    names
        .add_data(kept.clone(), node.com_handle())
        .await
        .unwrap();

    let reader_node = Node::new(fast_config());
    let reader = NameClient::connect(&reader_node, &server.addr)
        .await
        .unwrap();
    let want = DataLocation {
        id: kept[1],
        owner: node.com_handle(),
        context: "dbserver".into(),
        handover: None,
    };
    assert_eq!(reader.locate(kept[1]).await.unwrap(), want);
    // Any context answers for the whole tree: a sibling, and the owner's own.
    let sibling: NameContextRef = reader.resolve("nameserver").await.unwrap();
    assert_eq!(sibling.locate(kept[1]).await.unwrap(), want);
    let own: NameContextRef = reader.resolve("dbserver").await.unwrap();
    assert_eq!(own.locate(kept[1]).await.unwrap(), want);
    assert_eq!(ids_of(&reader.list_data("").await.unwrap()), kept);
    assert!(reader.list_data("nameserver").await.unwrap().is_empty());
    // Data entries have no names: `list` does not show them.
    assert!(reader.list("dbserver").await.unwrap().is_empty());

    // A node without a context of its own records at the root.
    let loose = DataId::random();
    reader
        .add_data(vec![loose], reader_node.com_handle())
        .await
        .unwrap();
    let found = names.locate(loose).await.unwrap();
    assert_eq!(found.context, "");
    assert_eq!(found.owner, reader_node.com_handle());

    let unknown = DataId::random();
    assert_eq!(
        reader.locate(unknown).await.unwrap_err(),
        NameError::NoSuchData { id: unknown }
    );
    assert_eq!(
        sibling.locate(unknown).await.unwrap_err(),
        NameError::NoSuchData { id: unknown }
    );
}

#[tokio::test]
async fn a_move_replaces_the_entry_and_the_source_cannot_remove_it() {
    let server = TestServer::start(LEASE).await;
    let (src_node, dst_node) = (listening_node().await, listening_node().await);
    let src = NameClient::connect_as(&src_node, &server.addr, "src")
        .await
        .unwrap();
    let dst = NameClient::connect_as(&dst_node, &server.addr, "dst")
        .await
        .unwrap();
    let [x, y] = ids(2).try_into().unwrap();
    src.add_data(vec![x, y], src_node.com_handle())
        .await
        .unwrap();
    assert_eq!(src.locate(x).await.unwrap().context, "src");

    // Without a handover the destination cannot take x over.
    let e = dst
        .add_data(vec![x], dst_node.com_handle())
        .await
        .unwrap_err();
    assert!(matches!(e, NameError::PermissionDenied { .. }), "{e:?}");
    // The source hands x over, the destination records it, then the source
    // removes its copy.
    src.hand_over(vec![x], dst_node.id()).await.unwrap();
    dst.add_data(vec![x], dst_node.com_handle()).await.unwrap();
    let moved = src.locate(x).await.unwrap();
    assert_eq!(moved.owner, dst_node.com_handle());
    assert_eq!(moved.context, "dst");
    assert!(
        !src.remove_data(x).await.unwrap(),
        "not the source's any more"
    );
    assert_eq!(dst.locate(x).await.unwrap().owner, dst_node.com_handle());
    assert_eq!(ids_of(&src.list_data("src").await.unwrap()), [y]);
    assert_eq!(ids_of(&src.list_data("dst").await.unwrap()), [x]);

    // The keeper removes it.
    assert!(dst.remove_data(x).await.unwrap());
    assert_eq!(
        src.locate(x).await.unwrap_err(),
        NameError::NoSuchData { id: x }
    );
    assert!(!dst.remove_data(x).await.unwrap(), "already removed");
    assert!(!dst.remove_data(DataId::random()).await.unwrap(), "unknown");
    assert!(src.remove_data(y).await.unwrap());
    assert!(src.list_data("").await.unwrap().is_empty());
}

#[tokio::test]
async fn list_data_covers_a_subtree_and_holds_its_contexts() {
    let server = TestServer::start(LEASE).await;
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &server.addr, "dbserver")
        .await
        .unwrap();
    names.create_context("dbserver/tables").await.unwrap();
    let all = ids(4);
    names
        .add_data(vec![all[3], all[0]], node.com_handle())
        .await
        .unwrap();
    // Straight through the context object: any context of the tree.
    names
        .root()
        .add_data(
            "dbserver/tables".into(),
            vec![all[2], all[1]],
            node.com_handle(),
        )
        .await
        .unwrap();

    let below = names.list_data("dbserver").await.unwrap();
    assert_eq!(ids_of(&below), all);
    let contexts: Vec<&str> = below.iter().map(|d| d.context.as_str()).collect();
    assert_eq!(
        contexts,
        ["dbserver", "dbserver/tables", "dbserver/tables", "dbserver"]
    );
    assert_eq!(
        ids_of(&names.list_data("dbserver/tables").await.unwrap()),
        [all[1], all[2]]
    );
    let e = names.list_data("dbserver/nope").await.unwrap_err();
    assert!(matches!(e, NameError::NotFound { .. }), "{e:?}");
    let e = names
        .root()
        .add_data("nope".into(), ids(1), node.com_handle())
        .await
        .unwrap_err();
    assert!(matches!(e, NameError::NotFound { .. }), "{e:?}");

    // A context holding data entries is not empty.
    let e = names.destroy_context("dbserver/tables").await.unwrap_err();
    assert!(matches!(e, NameError::NotEmpty { .. }), "{e:?}");
    for id in [all[1], all[2]] {
        assert!(names.remove_data(id).await.unwrap());
    }
    names.destroy_context("dbserver/tables").await.unwrap();
}

#[tokio::test]
async fn large_sets_go_in_batches_and_one_call_is_capped() {
    let server = TestServer::start(LEASE).await;
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &server.addr, "store")
        .await
        .unwrap();
    let e = names
        .root()
        .add_data(
            "store".into(),
            ids(MAX_DATA_IDS_PER_CALL + 1),
            node.com_handle(),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e,
        NameError::TooManyIds {
            count: MAX_DATA_IDS_PER_CALL as u64 + 1,
            max: MAX_DATA_IDS_PER_CALL as u64
        }
    );
    assert!(names.list_data("store").await.unwrap().is_empty());

    let many = ids(MAX_DATA_IDS_PER_CALL * 2 + 7);
    names
        .add_data(many.clone(), node.com_handle())
        .await
        .unwrap();
    assert_eq!(ids_of(&names.list_data("store").await.unwrap()), many);
}

#[tokio::test]
async fn data_of_a_node_whose_lease_ran_out_vanishes() {
    let server = TestServer::start(SHORT_LEASE).await;
    let (quitter, stayer) = (listening_node().await, listening_node().await);
    let q = NameClient::connect_as(&quitter, &server.addr, "quitter")
        .await
        .unwrap();
    let s = NameClient::connect_as(&stayer, &server.addr, "stayer")
        .await
        .unwrap();
    let [gone, kept] = ids(2).try_into().unwrap();
    q.add_data(vec![gone], quitter.com_handle()).await.unwrap();
    s.add_data(vec![kept], stayer.com_handle()).await.unwrap();
    let reader_node = Node::new(fast_config());
    let reader = NameClient::connect(&reader_node, &server.addr)
        .await
        .unwrap();
    // Renewals keep the entries past the lease.
    tokio::time::sleep(SHORT_LEASE + SHORT_LEASE / 2).await;
    assert!(is_located(&reader, gone).await);

    // Stop renewing (the node itself stays up).
    drop(q);
    eventually(SHORT_LEASE * 3, || async {
        matches!(reader.locate(gone).await, Err(NameError::NoSuchData { .. }))
    })
    .await
    .expect("the quitter's data entries vanish with its lease");
    assert_eq!(
        reader.locate(kept).await.unwrap().owner,
        stayer.com_handle()
    );
    assert_eq!(ids_of(&reader.list_data("").await.unwrap()), [kept]);
}

#[tokio::test]
async fn a_restarted_name_server_gets_data_entries_back() {
    let first = TestServer::start(SHORT_LEASE).await;
    let addr = first.addr.clone();
    let node = listening_node().await;
    let names = NameClient::connect_as(&node, &addr, "dbserver")
        .await
        .unwrap();
    // More than one batch, so that the replay splits too.
    let mut kept = ids(MAX_DATA_IDS_PER_CALL + 10);
    names
        .add_data(kept.clone(), node.com_handle())
        .await
        .unwrap();
    // Removed data is not recorded again.
    let removed = kept.pop().unwrap();
    assert!(names.remove_data(removed).await.unwrap());

    first.stop().await;
    let second = TestServer::start_on(&addr, SHORT_LEASE).await;
    let reader_node = Node::new(fast_config());
    let reader = NameClient::connect(&reader_node, &addr).await.unwrap();
    eventually(WAIT, || async {
        reader
            .list_data("dbserver")
            .await
            .is_ok_and(|l| l.len() == kept.len())
    })
    .await
    .expect("data entries came back");
    let back = reader.list_data("dbserver").await.unwrap();
    assert_eq!(ids_of(&back), kept);
    assert!(back.iter().all(|d| d.owner == node.com_handle()));
    assert_eq!(
        reader.locate(removed).await.unwrap_err(),
        NameError::NoSuchData { id: removed }
    );
    second.stop().await;
}

#[tokio::test]
async fn the_locator_adapter_end_to_end() {
    let server = TestServer::start(LEASE).await;
    let (a_node, b_node) = (listening_node().await, listening_node().await);
    let a = NameClient::connect_as(&a_node, &server.addr, "a")
        .await
        .unwrap();
    let b = NameClient::connect_as(&b_node, &server.addr, "b")
        .await
        .unwrap();
    let (la, lb) = (a.locator(), b.locator());
    let [x, y] = ids(2).try_into().unwrap();

    la.add(vec![x, y], a_node.com_handle()).await.unwrap();
    assert_eq!(lb.locate(x).await.unwrap(), Some(a_node.com_handle()));
    assert_eq!(a.locate(y).await.unwrap().context, "a");
    // A move through the adapters: a hands over, b records, a removes its
    // copy (a no-op).
    la.hand_over(vec![x], b_node.id()).await.unwrap();
    assert_eq!(
        lb.handed_over(x).await.unwrap(),
        Some((a_node.com_handle(), Some(b_node.id())))
    );
    lb.add(vec![x], b_node.com_handle()).await.unwrap();
    la.remove(x).await.unwrap();
    assert_eq!(la.locate(x).await.unwrap(), Some(b_node.com_handle()));
    lb.remove(x).await.unwrap();
    assert_eq!(la.locate(x).await.unwrap(), None);
    assert_eq!(la.locate(DataId::random()).await.unwrap(), None);

    // The adapter outlives `close`, which removes a's entries (and context).
    a.close().await.unwrap();
    assert_eq!(la.locate(y).await.unwrap(), None);
    // Naming errors reach the data manager as remote failures...
    let e = la.add(vec![x], a_node.com_handle()).await.unwrap_err();
    assert!(
        matches!(&e, RpcError::Remote { message } if message.starts_with("location service: ")),
        "{e:?}"
    );
    // ... and transport failures as themselves.
    server.stop().await;
    let e = tokio::time::timeout(WAIT, lb.locate(y))
        .await
        .expect("in time")
        .unwrap_err();
    assert!(e.is_transport(), "{e:?}");
}
