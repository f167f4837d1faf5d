//! The accept loop of a listening node: a connection slot first (a
//! semaphore, as backpressure), then the accept, then the handshake on a
//! task of its own, so a slow peer never holds up the next one.

use crate::transport::peers::Peers;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Pause after a failed accept (out of descriptors, say) before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Accepts connections on `listener` into `peers` until `stop`, with at most
/// `max_connections` open at once.
pub(crate) async fn run(
    listener: TcpListener,
    peers: Arc<Peers>,
    max_connections: usize,
    stop: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => return,
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, from) = tokio::select! {
            () = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
        };
        if let Ok(local) = stream.local_addr() {
            peers.observe_local(local);
        }
        let peers = Arc::clone(&peers);
        tokio::spawn(async move {
            match peers.accept_tcp(stream, Some(permit)).await {
                Ok(conn) => tracing::debug!(%from, peer = ?conn.peer, "accepted connection"),
                Err(e) => tracing::debug!(%from, error = %e, "handshake refused"),
            }
        });
    }
}
