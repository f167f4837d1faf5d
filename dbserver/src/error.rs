//! The single error type of the database server. Every variant names the
//! thing that went wrong so a remote caller can act on it (retry a lost
//! compare-and-set, fix a column name, create a missing table) without
//! parsing messages, and the whole enum is serde-serializable so it can
//! travel over the wire unchanged.

use serde::{Deserialize, Serialize};

use crate::value::{Value, ValueType};

/// Everything a store operation can fail with.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, thiserror::Error)]
pub enum DbError {
    /// The named table does not exist.
    #[error("no such table `{table}`")]
    NoSuchTable {
        /// Table name that was looked up.
        table: String,
    },
    /// A table with this name already exists.
    #[error("table `{table}` already exists")]
    TableExists {
        /// Table name that was being created.
        table: String,
    },
    /// The table has no column with this name.
    #[error("table `{table}` has no column `{column}`")]
    NoSuchColumn {
        /// Table that was addressed.
        table: String,
        /// Column name that was looked up.
        column: String,
    },
    /// The table has no row with this id (never inserted, or deleted).
    #[error("table `{table}` has no row {row}")]
    NoSuchRow {
        /// Table that was addressed.
        table: String,
        /// Row id that was looked up.
        row: u64,
    },
    /// A value does not fit the type of the column it was written to.
    #[error("column `{column}` of table `{table}` holds {expected}, got {found}")]
    TypeMismatch {
        /// Table that was written to.
        table: String,
        /// Column that rejected the value.
        column: String,
        /// Declared type of the column.
        expected: ValueType,
        /// Type of the rejected value.
        found: ValueType,
    },
    /// A whole row had the wrong number of values.
    #[error("table `{table}` has {expected} columns, got {found} values")]
    WrongColumnCount {
        /// Table that was written to.
        table: String,
        /// Number of columns the table has.
        expected: usize,
        /// Number of values supplied.
        found: usize,
    },
    /// A table or column name is not acceptable.
    #[error("invalid name `{name}`: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A compare-and-set lost: the cell did not hold the expected value.
    #[error("compare-and-set failed, current value is {current}")]
    CasFailed {
        /// What the cell holds now, so the caller can retry without a read.
        current: Value,
    },
    /// The database file or the filesystem under it failed.
    #[error("storage failure: {reason}")]
    Storage {
        /// Message of the underlying failure.
        reason: String,
    },
    /// The object was a part of a table that has been dropped since (the name
    /// may have been re-created: that is another table).
    #[error("table `{table}` no longer exists")]
    NoLongerExists {
        /// Name the dropped table had.
        table: String,
    },
    /// An import could not read its source table (it broke the paging contract).
    #[error("import failed: {reason}")]
    ImportFailed {
        /// What was wrong with the source.
        reason: String,
    },
    /// The object does not offer this operation (for example, watching a cell
    /// of a client-side in-memory table).
    #[error("unsupported operation: {what}")]
    Unsupported {
        /// The operation that was refused.
        what: String,
    },
    /// The name server refused or failed a binding the server made.
    #[error("naming failed: {reason}")]
    Naming {
        /// The name server's error.
        reason: String,
    },
    /// Data a cell names could not be stored, found or read (the data
    /// manager's own error).
    #[error(transparent)]
    Data(rpc_core::data::DataError),
    /// The remote call itself failed: transport, deadline, no such object.
    #[error(transparent)]
    Rpc(#[from] rpc_core::RpcError),
}

impl From<rpc_core::data::DataError> for DbError {
    /// A call failure stays [`DbError::Rpc`], so callers match transport
    /// errors in one place whatever layer they came through.
    fn from(e: rpc_core::data::DataError) -> DbError {
        match e {
            rpc_core::data::DataError::Rpc(e) => DbError::Rpc(e),
            other => DbError::Data(other),
        }
    }
}
