//! A raw peer speaking the wire protocol by hand, to inject faults and to
//! push a node to its budgets where the typed API would not let a test.

use rpc_core::wire::{
    self, Arg, ArgList, Hello, IpcHeader, Message, MessageKind, PROTOCOL_VERSION, Payload, Request,
    RequestHeader,
};
use rpc_core::{Capability, NodeId};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Largest frame a raw peer sends or reads.
const MAX: usize = 1 << 24;

/// A handshaken raw connection.
pub struct Raw {
    pub stream: TcpStream,
    /// The id this peer claims.
    pub me: NodeId,
    /// The server's id, from its hello.
    pub server: NodeId,
}

/// A TCP connection to `addr` from the local address `from` (127.0.0.x on
/// loopback: a test's own "remote address").
pub async fn tcp_from(from: &str, addr: &str) -> TcpStream {
    let to: SocketAddr = addr.parse().unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    let s = TcpSocket::new_v4().unwrap();
    s.bind(local).unwrap();
    s.connect(to).await.unwrap()
}

/// The hello a raw peer sends, claiming `node`.
pub fn hello(node: NodeId) -> Message {
    Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        node,
        listen: None,
        max_frame: MAX as u64,
        seed: None,
    })
}

/// `m` as one frame's bytes.
pub fn frame(m: &Message) -> Vec<u8> {
    let mut buf = Vec::new();
    wire::encode_frame(m, &mut buf, MAX).unwrap();
    buf
}

/// Writes `m` as one frame.
pub async fn send_on(stream: &mut TcpStream, m: &Message) {
    stream.write_all(&frame(m)).await.unwrap();
}

/// The next message, or `None` at the end of the stream or after `wait`.
pub async fn recv_within<S: AsyncReadExt + Unpin>(
    stream: &mut S,
    wait: Duration,
) -> Option<Message> {
    tokio::time::timeout(wait, async {
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).await.ok()?;
        let mut body = vec![0; u32::from_be_bytes(prefix) as usize];
        stream.read_exact(&mut body).await.ok()?;
        match wire::codec::decode_body(&body) {
            Ok(m) => Some(m),
            Err(e) => panic!("undecodable frame from the server: {e}"),
        }
    })
    .await
    .ok()
    .flatten()
}

impl Raw {
    pub async fn connect(addr: &str) -> Raw {
        Raw::over(TcpStream::connect(addr).await.unwrap()).await
    }

    /// Handshakes over `stream` with a fresh id.
    pub async fn over(stream: TcpStream) -> Raw {
        let me = NodeId::random();
        let mut r = Raw {
            stream,
            me,
            server: me, // until the server's hello says who it is
        };
        r.send(&hello(me)).await;
        match r.recv().await {
            Message::Hello(h) => r.server = h.node,
            other => panic!("expected hello, got {other:?}"),
        }
        r
    }

    pub async fn send(&mut self, m: &Message) {
        send_on(&mut self.stream, m).await;
    }

    pub async fn recv(&mut self) -> Message {
        recv_within(&mut self.stream, Duration::from_secs(10))
            .await
            .expect("the server answered in time")
    }

    /// The request frame of a call of `method` on `target`.
    pub fn request_message(
        &self,
        call_id: u64,
        target: &Capability,
        method: &str,
        args: Vec<Arg>,
    ) -> Message {
        request_message(self.me, self.server, call_id, target, method, args)
    }

    pub async fn request(
        &mut self,
        call_id: u64,
        target: &Capability,
        method: &str,
        args: Vec<Arg>,
    ) {
        let m = self.request_message(call_id, target, method, args);
        self.send(&m).await;
    }
}

/// The request frame of a call from `me` to `server` of `method` on `target`.
pub fn request_message(
    me: NodeId,
    server: NodeId,
    call_id: u64,
    target: &Capability,
    method: &str,
    args: Vec<Arg>,
) -> Message {
    Message::Request(Request {
        ipc: IpcHeader {
            kind: MessageKind::Request,
            call_id,
            sender: me,
            receiver: server,
        },
        rpc: RequestHeader {
            target: target.clone(),
            method_id: 0,
            deadline_ms: Some(30_000),
            deadline_explicit: false,
            trace: None,
        },
        args: ArgList {
            method: method.into(),
            args,
        },
    })
}

/// `v` encoded as an inline argument.
pub fn arg<T: serde::Serialize>(v: &T) -> Arg {
    Arg::Inline(Payload(cbor(v)))
}

pub fn cbor<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}
