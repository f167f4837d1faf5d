//! The accept loop of a listening node. Every connection is accepted at
//! once (so the kernel's backlog never fills with peers nobody answers).
//! Handshakes in progress are capped per remote address and in total, each
//! bounded by the handshake timeout; at a cap, the oldest handshake (of that
//! address, or of all) is dropped for the new one: an honest handshake
//! takes milliseconds, so what gets dropped is a peer that holds a socket
//! open and says nothing. Once the peer said hello, established
//! connections are capped per remote address and in total; a peer over
//! that budget is told `Overloaded` in a `close` frame. Each handshake runs
//! on a task of its own, so a slow peer holds up nobody.

use crate::budget::{Budget, Grant};
use crate::config::Config;
use crate::error::RpcError;
use crate::transport::peers::Peers;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Pause after a failed accept (out of descriptors, say) before the next.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// What an accepted TCP connection may take once its peer said hello.
pub(crate) struct Admission {
    /// The remote address the connection came from.
    pub(crate) from: IpAddr,
    /// Connections per address and in total.
    pub(crate) connections: Arc<Budget<IpAddr>>,
    /// The handshake's place among those in progress, given up when the
    /// handshake ends.
    pub(crate) _handshake: Pending,
}

/// The handshakes in progress, oldest first.
struct Handshakes {
    /// Most in progress from one address.
    per_address: usize,
    /// Most in progress in all.
    total: usize,
    /// Sequence number, address and canceller of each handshake in
    /// progress; short critical sections only.
    live: Mutex<VecDeque<(u64, IpAddr, CancellationToken)>>,
    /// The next sequence number.
    next: AtomicU64,
}

impl Handshakes {
    /// Enters a handshake from `from`, dropping the oldest ones that the
    /// caps leave no room for.
    fn enter(self: &Arc<Self>, from: IpAddr) -> Pending {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        let mut live = self.live.lock();
        let mut from_here = live.iter().filter(|(_, ip, _)| *ip == from).count();
        while from_here >= self.per_address.max(1) {
            let Some(pos) = live.iter().position(|(_, ip, _)| *ip == from) else {
                break;
            };
            if let Some((_, _, c)) = live.remove(pos) {
                c.cancel();
            }
            from_here -= 1;
        }
        while live.len() >= self.total.max(1) {
            match live.pop_front() {
                Some((_, _, c)) => c.cancel(),
                None => break,
            }
        }
        live.push_back((seq, from, cancel.clone()));
        Pending {
            table: Arc::clone(self),
            seq,
            cancel,
        }
    }
}

/// One handshake in progress; leaves the table when dropped.
pub(crate) struct Pending {
    table: Arc<Handshakes>,
    seq: u64,
    /// Cancelled when newer handshakes need the room.
    pub(crate) cancel: CancellationToken,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut live = self.table.live.lock();
        if let Some(pos) = live.iter().position(|(s, _, _)| *s == self.seq) {
            live.remove(pos);
        }
    }
}

impl Admission {
    /// Takes a connection slot for the peer, or refuses it.
    ///
    /// # Errors
    /// [`RpcError::Overloaded`] naming the limit.
    pub(crate) fn connection(&self) -> Result<Grant<IpAddr>, RpcError> {
        self.connections
            .take(&self.from, 1)
            .map_err(|x| RpcError::Overloaded {
                reason: format!("too many connections ({x})"),
            })
    }
}

/// Accepts connections on `listener` into `peers` until `stop`, within the
/// connection and handshake budgets of `config`.
pub(crate) async fn run(
    listener: TcpListener,
    peers: Arc<Peers>,
    config: Config,
    stop: CancellationToken,
) {
    let handshakes = Arc::new(Handshakes {
        per_address: config.max_handshakes_per_address,
        total: config.max_handshakes,
        live: Mutex::new(VecDeque::new()),
        next: AtomicU64::new(0),
    });
    let connections = Budget::<IpAddr>::new(
        config.max_connections_per_address as u64,
        config.max_connections as u64,
    );
    loop {
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
        let handshake = handshakes.enter(from.ip());
        if let Ok(local) = stream.local_addr() {
            peers.observe_local(local);
        }
        let admission = Admission {
            from: from.ip(),
            connections: Arc::clone(&connections),
            _handshake: handshake,
        };
        let peers = Arc::clone(&peers);
        let cancel = admission._handshake.cancel.clone();
        tokio::spawn(async move {
            let r = tokio::select! {
                r = peers.accept_tcp(stream, admission) => r,
                () = cancel.cancelled() => Err(RpcError::Overloaded {
                    reason: "handshake dropped for newer ones (too many in progress)".into(),
                }),
            };
            match r {
                Ok(conn) => tracing::debug!(%from, peer = ?conn.peer, "accepted connection"),
                Err(e) => tracing::debug!(%from, error = %e, "handshake refused"),
            }
        });
    }
}
