//! Mutual TLS and node identity: calls over TLS (TCP and in memory), the
//! caller's authenticated identity, and every refusal: a plaintext peer, a
//! TLS peer of a plaintext node, a certificate of another CA, a hello
//! claiming an id its certificate does not bind, and a second plaintext
//! connection claiming the id of a connected node.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use rpc_core::wire::{self, Hello, Message, PROTOCOL_VERSION};
use rpc_core::{Config, Node, NodeId, RpcError, TlsCredentials, pki, remote};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Tells callers who they are.
#[remote(name = "test.WhoAmI")]
pub trait WhoAmI {
    /// The caller as this node knows it: node id, certificate name, admin.
    async fn who(&self) -> Result<(NodeId, Option<String>, bool), RpcError>;
}

struct Mirror;

impl WhoAmI for Mirror {
    async fn who(&self) -> Result<(NodeId, Option<String>, bool), RpcError> {
        let id = rpc_core::caller_identity().ok_or(RpcError::Remote {
            message: "not in a call".into(),
        })?;
        assert_eq!(rpc_core::caller(), Some(id.node));
        Ok((id.node, id.name, id.admin))
    }
}

/// A cluster CA in a temporary directory, issuing credentials on demand.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        pki::init_ca(&dir.path().join("ca")).unwrap();
        Cluster { dir }
    }

    fn issue(&self, name: &str, admin: bool) -> std::path::PathBuf {
        let out = self.dir.path().join(name);
        pki::issue(&self.dir.path().join("ca"), name, &out, admin).unwrap();
        out
    }

    fn config(&self, name: &str, admin: bool) -> Config {
        tls_config(&self.issue(name, admin))
    }
}

fn tls_config(dir: &Path) -> Config {
    Config {
        tls: Some(Arc::new(TlsCredentials::from_dir(dir).unwrap())),
        ..Config::default()
    }
}

/// A listening node exporting a `Mirror` as "who".
async fn mirror_server(config: Config) -> (Node, String) {
    let node = Node::new(config);
    let addr = node.listen("127.0.0.1:0").await.unwrap().to_string();
    node.bind_bootstrap("who", &WhoAmIRef::new(Mirror)).unwrap();
    (node, addr)
}

#[tokio::test]
async fn calls_over_tls_carry_the_callers_certificate() {
    let cluster = Cluster::new();
    let (server, addr) = mirror_server(cluster.config("srv", false)).await;
    let alice = Node::new(cluster.config("alice", false));
    let who: WhoAmIRef = alice.lookup(&addr, "who").await.unwrap();
    let (id, name, admin) = who.who().await.unwrap();
    assert_eq!(id, alice.id());
    assert_eq!(name.as_deref(), Some("alice"));
    assert!(!admin);

    let ops = Node::new(cluster.config("ops", true));
    let who: WhoAmIRef = ops.lookup(&addr, "who").await.unwrap();
    assert_eq!(
        who.who().await.unwrap(),
        (ops.id(), Some("ops".into()), true)
    );

    // A node id is derived from the certificate's name and the seed.
    let seed = NodeId::random();
    let fixed = Node::new(Config {
        node_id: Some(seed),
        ..cluster.config("fixed", false)
    });
    assert_eq!(fixed.id(), NodeId::derive("fixed", seed.0));
    let who: WhoAmIRef = fixed.lookup(&addr, "who").await.unwrap();
    assert_eq!(who.who().await.unwrap().0, fixed.id());
    assert_eq!(server.stats().connections, 3);
}

#[tokio::test]
async fn tls_runs_over_an_in_memory_stream_too() {
    let cluster = Cluster::new();
    let server = Node::new(cluster.config("srv", false));
    server
        .bind_bootstrap("who", &WhoAmIRef::new(Mirror))
        .unwrap();
    let client = Node::new(cluster.config("bob", false));
    connect_in_memory(&client, &server).await;
    let who: WhoAmIRef = client.lookup_peer(server.id(), "who").await.unwrap();
    assert_eq!(who.who().await.unwrap().1.as_deref(), Some("bob"));
}

/// One call through a fresh TLS client: the server still serves.
async fn still_serving(cluster: &Cluster, addr: &str) {
    let n = Node::new(cluster.config(&format!("ok{}", NodeId::random().0.simple()), false));
    let who: WhoAmIRef = n.lookup(addr, "who").await.unwrap();
    who.who().await.unwrap();
}

#[tokio::test]
async fn a_plaintext_peer_is_told_tls_is_required() {
    let cluster = Cluster::new();
    let (_server, addr) = mirror_server(cluster.config("srv", false)).await;
    let plain = Node::new(Config::default());
    let err = plain.lookup::<WhoAmIRef>(&addr, "who").await.unwrap_err();
    assert!(matches!(err, RpcError::Protocol { .. }), "{err:?}");
    assert!(
        err.to_string().contains("mutual TLS connections only"),
        "{err}"
    );
    still_serving(&cluster, &addr).await;
}

#[tokio::test]
async fn a_tls_peer_of_a_plaintext_node_is_told_why() {
    let cluster = Cluster::new();
    let (_server, addr) = mirror_server(Config::default()).await;
    let tls = Node::new(cluster.config("alice", false));
    let err = tls.lookup::<WhoAmIRef>(&addr, "who").await.unwrap_err();
    assert!(err.to_string().contains("does not speak TLS"), "{err}");
    // The plaintext node goes on serving plaintext peers.
    let plain = Node::new(Config::default());
    let who: WhoAmIRef = plain.lookup(&addr, "who").await.unwrap();
    assert_eq!(who.who().await.unwrap().1, None);
}

#[tokio::test]
async fn certificates_of_another_ca_are_refused_both_ways() {
    let ours = Cluster::new();
    let theirs = Cluster::new();
    let (_server, addr) = mirror_server(ours.config("srv", false)).await;
    let stranger = Node::new(theirs.config("mallory", false));
    let err = stranger
        .lookup::<WhoAmIRef>(&addr, "who")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not from this cluster's CA"),
        "{err}"
    );

    // And a node of ours dialing a foreign server refuses it.
    let (_foreign, faddr) = mirror_server(theirs.config("srv2", false)).await;
    let alice = Node::new(ours.config("alice", false));
    let err = alice.lookup::<WhoAmIRef>(&faddr, "who").await.unwrap_err();
    assert!(
        err.to_string().contains("not from this cluster's CA"),
        "{err}"
    );
    still_serving(&ours, &addr).await;
}

/// Runs the TLS handshake of a raw peer with the credentials in `dir`.
async fn raw_tls(dir: &Path, addr: &str) -> tokio_rustls::client::TlsStream<TcpStream> {
    use rustls::pki_types::ServerName;
    let tcp = TcpStream::connect(addr).await.unwrap();
    raw_tls::tls_connector(dir)
        .connect(ServerName::try_from("node.distobj").unwrap(), tcp)
        .await
        .unwrap()
}

/// Sends `hello` and returns the error of the `close` the node answers with.
async fn hello_refused<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, hello: Hello) -> RpcError {
    let mut buf = Vec::new();
    wire::encode_frame(&Message::Hello(hello), &mut buf, 1 << 20).unwrap();
    s.write_all(&buf).await.unwrap();
    s.flush().await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), async {
        let mut prefix = [0u8; 4];
        s.read_exact(&mut prefix).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        s.read_exact(&mut body).await.unwrap();
        wire::codec::decode_body(&body).unwrap()
    })
    .await
    .expect("an answer to the hello");
    match msg {
        Message::Close(e) => e,
        other => panic!("expected a close, got {other:?}"),
    }
}

fn hello(node: NodeId, seed: Option<uuid::Uuid>) -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        node,
        listen: None,
        max_frame: 1 << 20,
        seed,
    }
}

#[tokio::test]
async fn a_hello_claiming_an_id_its_certificate_does_not_bind_is_refused() {
    let cluster = Cluster::new();
    let (server, addr) = mirror_server(cluster.config("srv", false)).await;
    let alice = Node::new(cluster.config("alice", false));
    let who: WhoAmIRef = alice.lookup(&addr, "who").await.unwrap();
    who.who().await.unwrap();
    let mallory = cluster.issue("mallory", false);

    // Mallory's certificate with Alice's id, and with the server's own id.
    for claimed in [alice.id(), server.id()] {
        let mut s = raw_tls(&mallory, &addr).await;
        let e = hello_refused(&mut s, hello(claimed, Some(uuid::Uuid::new_v4()))).await;
        assert!(
            e.to_string().contains("certificate `mallory` binds node"),
            "{e}"
        );
    }
    // No seed: nothing to check the id against.
    let mut s = raw_tls(&mallory, &addr).await;
    let e = hello_refused(&mut s, hello(NodeId::random(), None)).await;
    assert!(e.to_string().contains("no seed"), "{e}");
    // Alice's connection was not touched.
    assert_eq!(who.who().await.unwrap().0, alice.id());
    assert_eq!(server.stats().connections, 1);
}

#[tokio::test]
async fn a_second_plaintext_connection_claiming_a_connected_id_is_refused() {
    let (calc_node, addr, _) = calc_server().await;
    let client = Node::new(Config::default());
    let calc: CalcRef = client.lookup(&addr, "calc").await.unwrap();
    let counter = Arc::new(Counter::default());
    calc.subscribe(ListenerRef::new(Arc::clone(&counter)))
        .await
        .unwrap();

    let mut s = TcpStream::connect(&addr).await.unwrap();
    let e = hello_refused(&mut s, hello(client.id(), None)).await;
    assert!(e.to_string().contains("connected already"), "{e}");
    // The callbacks still reach the real client.
    assert_eq!(calc.notify_all(3).await.unwrap(), 1);
    assert_eq!(counter.total.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(calc_node.stats().connections, 1);
}
