//! `--metrics HOST:PORT`: Prometheus text at `http://HOST:PORT/metrics`,
//! through `metrics-exporter-prometheus`'s recorder. Served calls are
//! counted as they end (see `enable_call_metrics`); the node's counts
//! (connections, leases, exports, transfers, bytes, data items) and the
//! server's own gauges are read at each scrape. The HTTP side is a few lines
//! over a tokio listener: one `GET` per connection, bounded in size, time
//! and concurrency, so a scraper cannot hold the server.

use crate::Node;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Latency buckets of `rpc_call_duration_seconds`, 50 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Longest request head read from a scraper.
const MAX_HEAD: usize = 8 * 1024;

/// Time a scraper has to send its request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Scrapes served at once; more connections wait for a slot.
const MAX_SCRAPES: usize = 8;

/// Gauges a server adds to the node's: (metric name, value).
pub type ExtraGauges = Arc<dyn Fn() -> Vec<(&'static str, f64)> + Send + Sync>;

/// Installs the Prometheus recorder and serves `/metrics` on `addr` for
/// `node` until the process ends; returns the address bound.
///
/// # Errors
/// One line for the user: the address cannot be bound, or a recorder is
/// installed already.
pub async fn serve_metrics(
    addr: &str,
    node: Node,
    extra: ExtraGauges,
) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("rpc_call_duration_seconds".into()), BUCKETS)
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    crate::enable_call_metrics();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    let node = node.downgrade();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, say: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let Some(node) = node.upgrade() else { return };
            let (handle, extra) = (handle.clone(), Arc::clone(&extra));
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(e) = scrape(stream, &node, &handle, &*extra).await {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            });
        }
    });
    tracing::info!(addr = %bound, "serving metrics at /metrics");
    Ok(bound)
}

/// Answers one HTTP request on `stream`.
async fn scrape(
    mut stream: tokio::net::TcpStream,
    node: &Node,
    handle: &PrometheusHandle,
    extra: &(dyn Fn() -> Vec<(&'static str, f64)> + Send + Sync),
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let (status, body) = if method == Some("GET") && path == Some("/metrics") {
        record_gauges(node, extra);
        ("200 OK", handle.render())
    } else {
        ("404 Not Found", "only GET /metrics is served\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Sets the gauges read at scrape time.
fn record_gauges(node: &Node, extra: &(dyn Fn() -> Vec<(&'static str, f64)> + Send + Sync)) {
    let s = node.stats();
    let gauges = [
        ("rpc_connections", s.connections as f64),
        ("rpc_exports", s.exports as f64),
        ("rpc_imports", s.imports as f64),
        ("rpc_leases_given", s.leases as f64),
        ("rpc_calls_in_flight", s.inflight_requests as f64),
        ("rpc_calls_pending", s.pending_calls as f64),
        ("rpc_transfers_out", s.transfers_out as f64),
        ("rpc_transfers_in", s.transfers_in as f64),
        ("rpc_queued_bytes", s.queued_bytes as f64),
        ("data_items", s.data_items as f64),
    ];
    for (name, v) in gauges.into_iter().chain(extra()) {
        metrics::gauge!(name).set(v);
    }
    metrics::counter!("rpc_bytes_sent_total").absolute(s.bytes_sent);
    metrics::counter!("rpc_bytes_received_total").absolute(s.bytes_received);
}
