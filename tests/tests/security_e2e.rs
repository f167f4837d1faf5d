//! Real networks are hostile: the real binaries over mutual TLS refuse
//! plaintext peers, certificates of another CA, hellos claiming an id the
//! certificate does not bind, and (in plaintext) a second connection
//! claiming a connected id; and each attack on names and data fails with a
//! typed error and changes nothing, while the owner and an administrator
//! can do what a stranger cannot. The cluster's credentials are made with
//! `client pki`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../rpc-core/tests/common/raw_tls.rs"]
mod raw_tls;

use common::{Proc, bin, fails};
use dbserver::api::{Database, DatabaseRef};
use nameserver::{NameClient, NameError};
use rpc_core::data::{DataError, DataInfo, DataManager, DataManagerRef, Persistence};
use rpc_core::wire::{self, Hello, Message, PROTOCOL_VERSION};
use rpc_core::{Blob, Config, DataId, Node, NodeId, RpcError, TlsCredentials};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs `client` with `args` (no name server), which must succeed.
fn client_ok(args: &[&str]) {
    let out = Command::new(bin("client")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA made with `client pki init`, issuing with `client pki issue`.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        client_ok(&["pki", "init", dir.path().join("ca").to_str().unwrap()]);
        Pki { dir }
    }

    fn issue(&self, name: &str, admin: bool) -> PathBuf {
        let out = self.dir.path().join(name);
        let ca = self.dir.path().join("ca");
        let mut args = vec![
            "pki",
            "issue",
            ca.to_str().unwrap(),
            name,
            out.to_str().unwrap(),
        ];
        if admin {
            args.push("--admin");
        }
        client_ok(&args);
        out
    }

    fn config(&self, name: &str, admin: bool) -> Config {
        let creds = TlsCredentials::from_dir(self.issue(name, admin)).unwrap();
        Config {
            tls: Some(Arc::new(creds)),
            ..Config::default()
        }
    }
}

/// A name server and a dbserver (`dbserver`), both over TLS when `pki`.
struct Cluster {
    ns: String,
    _procs: Vec<Proc>,
    _data: tempfile::TempDir,
}

fn cluster(pki: Option<&Pki>) -> Cluster {
    let tls = |name: &str| -> Vec<String> {
        match pki {
            Some(p) => vec![
                "--tls".into(),
                p.issue(name, false).to_string_lossy().into_owned(),
            ],
            None => Vec::new(),
        }
    };
    let mut ns = Proc::spawn(
        Command::new(bin("nameserver"))
            .args(["--listen", "127.0.0.1:0"])
            .args(tls("nameserver")),
    );
    let addr = ns.listening().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut db = Proc::spawn(
        Command::new(bin("dbserver"))
            .args(["--listen", "127.0.0.1:0", "--nameserver", &addr, "--data"])
            .arg(data.path())
            .args(tls("dbserver")),
    );
    db.listening().unwrap();
    Cluster {
        ns: addr,
        _procs: vec![ns, db],
        _data: data,
    }
}

/// Runs `client` over `creds` (or in plaintext) against `ns`, which must
/// fail with one line; that line.
fn client_fails(ns: &str, creds: Option<&Path>, args: &[&str]) -> String {
    let mut all: Vec<String> = Vec::new();
    if let Some(c) = creds {
        all.extend(["--tls".into(), c.to_string_lossy().into_owned()]);
    }
    all.extend(args.iter().map(|s| (*s).to_owned()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    fails(ns, 1, &refs)
}

#[test]
fn tls_binaries_refuse_plaintext_peers_and_other_cas_by_name() {
    let pki = Pki::new();
    let c = cluster(Some(&pki));
    // A plaintext client is told TLS is required.
    let line = client_fails(&c.ns, None, &["ls"]);
    assert!(line.contains("mutual TLS connections only"), "{line}");
    // A credential of another CA: the client refuses the name server's
    // certificate, which is not from its CA.
    let other = Pki::new();
    let line = client_fails(&c.ns, Some(&other.issue("alice", false)), &["ls"]);
    assert!(line.contains("not from this cluster's CA"), "{line}");
    // The servers go on serving the cluster's own clients.
    let ok = common::ok(
        &c.ns,
        &["--tls", pki.issue("alice", false).to_str().unwrap(), "ls"],
    );
    assert!(ok.contains("dbserver"), "{ok}");
}

#[test]
fn a_binary_refuses_to_listen_in_plaintext_off_loopback() {
    let out = Command::new(bin("nameserver"))
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no `listening` line");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--insecure") && err.contains("--tls"), "{err}");
}

/// The id of the node a capability of `path` lives on, as `node` resolves it.
async fn node_of(node: &Node, ns: &str, path: &str) -> NodeId {
    let names = NameClient::connect(node, ns).await.unwrap();
    let db: DatabaseRef = names.resolve(path).await.unwrap();
    db.capability().unwrap().home.node
}

async fn write_frame<S: AsyncWriteExt + Unpin>(s: &mut S, m: &Message) {
    let mut buf = Vec::new();
    wire::encode_frame(m, &mut buf, 1 << 20).unwrap();
    s.write_all(&buf).await.unwrap();
    s.flush().await.unwrap();
}

async fn read_close<S: AsyncReadExt + Unpin>(s: &mut S) -> RpcError {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut prefix = [0u8; 4];
        s.read_exact(&mut prefix).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        s.read_exact(&mut body).await.unwrap();
        match wire::codec::decode_body(&body).unwrap() {
            Message::Close(e) => e,
            other => panic!("expected a close, got {other:?}"),
        }
    })
    .await
    .expect("an answer in time")
}

fn hello(node: NodeId, seed: Option<uuid::Uuid>) -> Message {
    Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        node,
        listen: None,
        max_frame: 1 << 20,
        seed,
    })
}

#[tokio::test]
async fn a_hello_claiming_the_dbservers_id_with_another_certificate_is_refused() {
    let pki = Pki::new();
    let c = cluster(Some(&pki));
    let alice = Node::new(pki.config("alice", false));
    let db_id = node_of(&alice, &c.ns, "dbserver/db").await;
    // Mallory's certificate, claiming the dbserver's id, to the name server.
    let dir = pki.issue("mallory", false);
    let tls = raw_tls::tls_connector(&dir);
    let tcp = TcpStream::connect(&c.ns).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(rpc_core::TLS_SERVER_NAME).unwrap();
    let mut s = tls.connect(name, tcp).await.unwrap();
    write_frame(&mut s, &hello(db_id, Some(uuid::Uuid::new_v4()))).await;
    let e = read_close(&mut s).await;
    assert!(
        e.to_string().contains("certificate `mallory` binds node"),
        "{e}"
    );
    // Nothing changed: the dbserver's entries are still there.
    let again = Node::new(pki.config("bob", false));
    assert_eq!(node_of(&again, &c.ns, "dbserver/db").await, db_id);
}

#[tokio::test]
async fn in_plaintext_a_second_connection_claiming_a_connected_id_is_refused() {
    let c = cluster(None);
    let probe = Node::new(Config::default());
    let db_id = node_of(&probe, &c.ns, "dbserver/db").await;
    let mut s = TcpStream::connect(&c.ns).await.unwrap();
    write_frame(&mut s, &hello(db_id, None)).await;
    let e = read_close(&mut s).await;
    assert!(e.to_string().contains("connected already"), "{e}");
    // The dbserver keeps its entries and its location-service role.
    let again = Node::new(Config::default());
    assert_eq!(node_of(&again, &c.ns, "dbserver/db").await, db_id);
}

#[tokio::test]
async fn names_belong_to_their_node_and_admins_only_may_change_others() {
    let pki = Pki::new();
    let c = cluster(Some(&pki));
    let mallory = Node::new(pki.config("mallory", false));
    let m = NameClient::connect(&mallory, &c.ns).await.unwrap();
    let db: DatabaseRef = m.resolve("dbserver/db").await.unwrap();
    let denied = |r: Result<(), NameError>| {
        assert!(
            matches!(r, Err(NameError::PermissionDenied { .. })),
            "{r:?}"
        );
    };
    // Resolving and listing are open; rebinding, unbinding, destroying and
    // adding to another node's context are not.
    assert!(
        m.list("dbserver")
            .await
            .unwrap()
            .iter()
            .any(|e| e.name == "db")
    );
    denied(m.rebind("dbserver/db", &db).await.map(drop));
    denied(m.unbind("dbserver/db").await);
    denied(m.destroy_context("dbserver").await);
    denied(m.bind("dbserver/extra", &db).await.map(drop));
    // Nothing changed.
    let before = db.capability().unwrap().clone();
    let check: DatabaseRef = m.resolve("dbserver/db").await.unwrap();
    assert_eq!(check.capability(), Some(&before));

    // A node owns its own context and what it binds there.
    let alice = Node::new(pki.config("alice", false));
    let a = NameClient::connect_as(&alice, &c.ns, "alice")
        .await
        .unwrap();
    a.bind("alice/x", &db).await.unwrap();
    denied(m.unbind("alice/x").await);
    a.rebind("alice/x", &db).await.unwrap();
    a.unbind("alice/x").await.unwrap();

    // An administrator may change what others own.
    let ops = Node::new(pki.config("ops", true));
    let o = NameClient::connect(&ops, &c.ns).await.unwrap();
    o.rebind("dbserver/db", &db).await.unwrap();
    a.bind("alice/y", &db).await.unwrap();
    o.unbind("alice/y").await.unwrap();
}

#[tokio::test]
async fn data_may_be_removed_or_moved_only_by_who_stored_it_or_an_admin() {
    let pki = Pki::new();
    let c = cluster(Some(&pki));
    let dm_of = |node: &Node| {
        let node = node.clone();
        let ns = c.ns.clone();
        async move {
            let names = NameClient::connect(&node, &ns).await.unwrap();
            let dm: DataManagerRef = names.resolve("dbserver/data").await.unwrap();
            (names, dm)
        }
    };
    let alice = Node::new(pki.config("alice", false));
    let (_an, a_dm) = dm_of(&alice).await;
    let mine = a_dm
        .put(Blob::from_bytes(vec![7; 1000]), Persistence::Persistent)
        .await
        .unwrap();
    let mallory = Node::new(pki.config("mallory", false));
    let (_mn, m_dm) = dm_of(&mallory).await;
    let denied = |r: Result<DataInfo, DataError>| {
        assert!(
            matches!(r, Err(DataError::PermissionDenied { .. })),
            "{r:?}"
        );
    };
    // Reading needs only the id.
    assert_eq!(m_dm.info(mine.id()).await.unwrap().size, 1000);
    // Removing, moving and planting are refused; listing hides it.
    denied(m_dm.remove(mine.id()).await);
    let r = m_dm.move_to(mine.id(), m_dm.clone()).await;
    assert!(
        matches!(r, Err(DataError::PermissionDenied { .. })),
        "{r:?}"
    );
    assert!(m_dm.list().await.unwrap().iter().all(|i| i.id != mine.id()));
    let planted = DataInfo {
        id: DataId::random(),
        mode: Persistence::Persistent,
        size: 3,
        checksum: crc32fast::hash(b"bad"),
    };
    denied(
        m_dm.receive(planted.clone(), None, Blob::from_bytes(b"bad".to_vec()))
            .await,
    );
    let e = m_dm.info(planted.id).await.unwrap_err();
    assert!(matches!(e, DataError::NoSuchData { .. }), "{e:?}");
    assert!(a_dm.info(mine.id()).await.is_ok(), "still there");

    // Who stored it may; so may an administrator.
    assert!(a_dm.list().await.unwrap().iter().any(|i| i.id == mine.id()));
    a_dm.remove(mine.id()).await.unwrap();
    let other = a_dm
        .put(Blob::from_bytes(vec![1; 10]), Persistence::Persistent)
        .await
        .unwrap();
    let ops = Node::new(pki.config("ops", true));
    let (_on, o_dm) = dm_of(&ops).await;
    o_dm.remove(other.id()).await.unwrap();
    // A database call through the same cluster still works.
    let db: DatabaseRef = _on.resolve("dbserver/db").await.unwrap();
    db.list_tables().await.unwrap();
}

#[tokio::test]
async fn the_name_server_refuses_to_pull_a_large_argument_into_memory() {
    let c = cluster(None);
    let node = Node::new(Config::default());
    let names = NameClient::connect(&node, &c.ns).await.unwrap();
    // A 20 MiB path travels as a transfer the server would pull into
    // memory: over the name server's 16 MiB, it is refused unpulled.
    let huge = "a".repeat(20 << 20);
    match names.list(&huge).await {
        Err(NameError::Rpc(RpcError::TooLarge { size, limit, .. })) => {
            assert!(size >= 20 << 20, "{size}");
            assert_eq!(limit, 16 << 20);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // It goes on serving, this peer too.
    names.list("").await.unwrap();
    node.shutdown().await;
}
