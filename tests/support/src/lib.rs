//! What the workspace's tests and benchmarks share, and nothing of the
//! framework itself (no dependency on rpc-core): child processes whose
//! every wait has a deadline and whose standard error is kept and printed
//! when a test fails ([`proc`]), a test executable re-running one of its
//! own tests as a child ([`reexec`]), readings of `/proc` ([`procfs`]), and
//! the benchmarks' runtime flavours, latency summaries and busy loop
//! ([`mod@bench`]).

pub mod bench;
pub mod proc;
pub mod procfs;
pub mod reexec;

pub use proc::{Output, Proc};
