//! The lease task of a node (distributed GC, as Java RMI's dirty/clean):
//! sends queued lease messages in batches, renews the leases of live proxies
//! at half the lease time, drops exports nothing keeps alive and transfers
//! nobody pulls.

use crate::config::MAX_IDS_PER_LEASE_MESSAGE;
use crate::dispatch::core::Core;
use crate::registry::leases::PerHome;
use crate::wire::Message;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Time the lease task waits after being woken, so that a burst of new or
/// dropped proxies goes out in one message.
const LEASE_BATCH_DELAY: Duration = Duration::from_millis(2);

/// The lease task of `core`'s node, until `stop` or the node is gone.
pub(super) async fn run(core: Weak<Core>, stop: CancellationToken) {
    let Some(c) = core.upgrade() else { return };
    let lease = c.config.lease;
    let renew_every = (lease / 2).max(Duration::from_millis(1));
    let sweep_every = (lease / 4)
        .min(c.config.transfer_timeout / 4)
        .max(Duration::from_millis(1));
    drop(c);
    let mut next_renew = tokio::time::Instant::now() + renew_every;
    let mut next_sweep = tokio::time::Instant::now() + sweep_every;
    loop {
        let woken = {
            let Some(c) = core.upgrade() else { return };
            tokio::select! {
                () = stop.cancelled() => return,
                () = c.gc.wake.notified() => true,
                () = tokio::time::sleep_until(next_renew.min(next_sweep)) => false,
            }
        };
        if woken {
            // Let the rest of a burst (a reply full of references) queue up.
            tokio::time::sleep(LEASE_BATCH_DELAY).await;
        }
        let Some(c) = core.upgrade() else { return };
        let (dirty, clean) = c.gc.take();
        send_leases(&c, clean, None);
        send_leases(&c, dirty, Some(lease));
        let now = tokio::time::Instant::now();
        if now >= next_renew {
            let mut live = PerHome::new();
            for obj in c.imports.live() {
                live.entry(obj.cap.home.node)
                    .or_insert_with(|| (obj.cap.home.clone(), Vec::new()))
                    .1
                    .push(obj.cap.object);
            }
            send_leases(&c, live, Some(lease));
            next_renew = now + renew_every;
        }
        if now >= next_sweep {
            let idle = c.transfers.sweep(c.config.transfer_timeout);
            if idle > 0 {
                tracing::debug!(idle, "dropped transfers nobody pulled");
            }
            let dropped = c.exports.sweep();
            if dropped > 0 {
                tracing::debug!(dropped, "collected exports without leases");
            }
            next_sweep = now + sweep_every;
        }
    }
}

/// Sends dirty (`lease` given) or clean messages, one task per home so that
/// an unreachable home does not hold up the others.
fn send_leases(core: &Arc<Core>, per_home: PerHome, lease: Option<Duration>) {
    for (_, (home, ids)) in per_home {
        let peers = Arc::clone(&core.peers);
        tokio::spawn(async move {
            let conn = match lease {
                // Taking a lease may need a connection; releasing one never does.
                Some(_) => peers.conn_to(&home).await.ok(),
                None => peers.get(&home.node),
            };
            let Some(conn) = conn else { return };
            for chunk in ids.chunks(MAX_IDS_PER_LEASE_MESSAGE) {
                let msg = match lease {
                    Some(l) => Message::Dirty {
                        objects: chunk.to_vec(),
                        lease_ms: l.as_millis() as u64,
                    },
                    None => Message::Clean {
                        objects: chunk.to_vec(),
                    },
                };
                if let Err(e) = conn.send(&msg) {
                    tracing::debug!(peer = ?home.node, error = %e, "lease message not sent");
                    return;
                }
            }
        });
    }
}
