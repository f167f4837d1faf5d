//! The handshake: each side sends one `hello` frame (protocol version, node
//! id, listening address, frame limit) before anything else, over any byte
//! stream. A peer speaking another protocol version is refused with a
//! `close` frame that says why.

use crate::error::RpcError;
use crate::ids::NodeId;
use crate::wire::{self, Hello, Message, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Local identity offered in the handshake.
pub(crate) struct LocalHello {
    pub(crate) node: NodeId,
    pub(crate) listen: Option<String>,
    pub(crate) max_frame: usize,
    /// Over TLS, the seed of the node id (see [`Hello::seed`]).
    pub(crate) seed: Option<uuid::Uuid>,
}

async fn read_hello<S: AsyncRead + Unpin>(stream: &mut S, max: usize) -> Result<Hello, RpcError> {
    let mut prefix = [0u8; wire::codec::LEN_PREFIX];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| RpcError::protocol(format!("handshake read failed: {e}")))?;
    let len = match wire::codec::peek_len(&prefix, max) {
        Ok(Some(len)) => len,
        Ok(None) => return Err(RpcError::protocol("handshake frame truncated")),
        Err(e) => return Err(RpcError::protocol(e.to_string())),
    };
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| RpcError::protocol(format!("handshake read failed: {e}")))?;
    match wire::codec::decode_body(&body) {
        Ok(Message::Hello(h)) => Ok(h),
        Ok(Message::Close(e)) => Err(e),
        Ok(_) => Err(RpcError::protocol("expected a hello frame first")),
        Err(e) => Err(RpcError::protocol(e.to_string())),
    }
}

async fn write_msg<S: AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &Message,
    max: usize,
) -> Result<(), RpcError> {
    let mut buf = Vec::new();
    wire::encode_frame(msg, &mut buf, max).map_err(|e| RpcError::protocol(e.to_string()))?;
    let failed = |e: std::io::Error| RpcError::protocol(format!("handshake write failed: {e}"));
    stream.write_all(&buf).await.map_err(failed)?;
    // A TLS stream holds what it wrote until flushed.
    stream.flush().await.map_err(failed)
}

fn hello_msg(local: &LocalHello) -> Message {
    Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        node: local.node,
        listen: local.listen.clone(),
        max_frame: local.max_frame as u64,
        seed: local.seed,
    })
}

/// Client side of the handshake: send our hello, read theirs.
pub(crate) async fn handshake_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    local: &LocalHello,
    max: usize,
) -> Result<Hello, RpcError> {
    write_msg(stream, &hello_msg(local), max).await?;
    let theirs = read_hello(stream, max).await?;
    check_version(&theirs)?;
    Ok(theirs)
}

/// Server side of the handshake: read their hello, refuse another protocol
/// version or a hello `admit` refuses with a `Close` frame that says why,
/// answer with ours.
pub(crate) async fn handshake_accept<S, T>(
    stream: &mut S,
    local: &LocalHello,
    max: usize,
    admit: impl FnOnce(&Hello) -> Result<T, RpcError>,
) -> Result<(Hello, T), RpcError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let theirs = match read_hello(stream, max).await {
        Ok(h) => h,
        Err(e) => {
            // An oversized or malformed hello: say why (a peer already gone
            // just misses it).
            let _ = write_msg(stream, &Message::Close(e.clone()), max).await;
            return Err(e);
        }
    };
    let admitted = check_version(&theirs).and_then(|()| admit(&theirs));
    let admitted = match admitted {
        Ok(a) => a,
        Err(e) => {
            let _ = write_msg(stream, &Message::Close(e.clone()), max).await;
            return Err(e);
        }
    };
    write_msg(stream, &hello_msg(local), max).await?;
    Ok((theirs, admitted))
}

/// Refuses a connection before any hello: writes a `Close` frame saying
/// why (a plaintext peer of a TLS node reads it as the answer to its hello).
pub(crate) async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, why: &RpcError, max: usize) {
    let _ = write_msg(stream, &Message::Close(why.clone()), max).await;
}

fn check_version(h: &Hello) -> Result<(), RpcError> {
    if h.version != PROTOCOL_VERSION {
        return Err(RpcError::protocol(format!(
            "protocol version mismatch: peer speaks {}, this node speaks {PROTOCOL_VERSION}",
            h.version
        )));
    }
    Ok(())
}
