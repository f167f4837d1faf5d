//! Call metrics through the `metrics` facade: a counter of served calls by
//! class, method and outcome, and a latency histogram by class and method.
//! Recorded only once [`enable_call_metrics`] ran (a server exporting
//! metrics does), so that a node without an exporter builds no labels.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set once something collects metrics.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Starts recording served calls into the installed `metrics` recorder.
pub fn enable_call_metrics() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether served calls are recorded.
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Records one served call.
pub(crate) fn record_call(class: String, method: String, outcome: &'static str, took: Duration) {
    metrics::counter!(
        "rpc_calls_total",
        "class" => class.clone(),
        "method" => method.clone(),
        "outcome" => outcome
    )
    .increment(1);
    metrics::histogram!("rpc_call_duration_seconds", "class" => class, "method" => method)
        .record(took.as_secs_f64());
}
