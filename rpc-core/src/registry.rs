//! The node's tables: classes known at link time, objects it exports, and
//! proxies it holds for other nodes' objects.

pub(crate) mod classes;
pub(crate) mod exports;
pub(crate) mod imports;
pub(crate) mod leases;
