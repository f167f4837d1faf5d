//! Benchmarks and cross-crate end-to-end checks of the workspace; the
//! `rpc-bench` binary lives in `src/bin`.
