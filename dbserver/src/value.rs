//! Cell values and column types. A [`Value`] is what one cell holds; its
//! serde names are short and explicit because they are both the wire format
//! and the on-disk row encoding, so renaming a Rust variant must not change
//! either.

use std::fmt;

use rpc_core::DataId;
use serde::{Deserialize, Serialize};

/// The content of one cell.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Value {
    /// No value; allowed in every column.
    #[serde(rename = "null")]
    Null,
    /// A signed 64-bit integer.
    #[serde(rename = "int")]
    Int(i64),
    /// A 64-bit float.
    #[serde(rename = "float")]
    Float(f64),
    /// UTF-8 text.
    #[serde(rename = "text")]
    Text(String),
    /// Raw bytes.
    #[serde(rename = "bytes")]
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Bytes kept out of line by the store, shown by size in rows, scans,
    /// reads and changes: read them with [`crate::api::Cell::get_blob`].
    /// Only the store makes these; a write of one is refused (except
    /// leaving a cell as it is in [`crate::api::Table::update`]).
    #[serde(rename = "blob")]
    Blob {
        /// Their size in bytes.
        size: u64,
    },
    /// A reference to data kept by a data manager (see [`rpc_core::data`]):
    /// a large value stored once and named by many cells without being sent
    /// again. Written `data:<uuid>` on the command line.
    #[serde(rename = "data")]
    Data(DataId),
}

/// How a data reference is written on the command line: `data:<uuid>`.
pub const DATA_PREFIX: &str = "data:";

impl Value {
    /// Reads a command-line argument: integers become `Int`, floats `Float`,
    /// `null` `Null`, `data:<uuid>` `Data`, anything else `Text`.
    pub fn parse_cli(s: &str) -> Value {
        if s == "null" {
            return Value::Null;
        }
        if let Some(id) = s
            .strip_prefix(DATA_PREFIX)
            .and_then(|r| r.parse::<DataId>().ok())
        {
            return Value::Data(id);
        }
        if let Ok(i) = s.parse::<i64>() {
            return Value::Int(i);
        }
        // f64's parser also accepts words like "inf" and "NaN"; a user typing
        // those most likely means text, so only digit-bearing input is a float.
        if s.bytes().any(|b| b.is_ascii_digit())
            && let Ok(f) = s.parse::<f64>()
        {
            return Value::Float(f);
        }
        Value::Text(s.to_owned())
    }

    /// The type of this value, or `None` for `Null`, which has no type of its own.
    pub fn value_type(&self) -> Option<ValueType> {
        match self {
            Value::Null => None,
            Value::Int(_) => Some(ValueType::Int),
            Value::Float(_) => Some(ValueType::Float),
            Value::Text(_) => Some(ValueType::Text),
            Value::Bytes(_) | Value::Blob { .. } => Some(ValueType::Bytes),
            Value::Data(_) => Some(ValueType::Data),
        }
    }

    /// The data id this value references, if it is a data reference.
    pub fn data_id(&self) -> Option<DataId> {
        match self {
            Value::Data(id) => Some(*id),
            _ => None,
        }
    }

    /// Exact equality for compare-and-set: like `==`, but a float equals itself even when it is NaN.
    pub fn identical(&self, other: &Value) -> bool {
        match (self, other) {
            // With `==` a NaN cell could never be compare-and-set again, since
            // the value a reader gets back would never match what is stored.
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            _ => self == other,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Int(i) => write!(f, "{i}"),
            // Debug keeps the ".0" on whole floats, so the output reads back
            // through `parse_cli` as a float rather than an integer.
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Text(s) => f.write_str(s),
            Value::Bytes(b) => {
                f.write_str("0x")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Value::Blob { size } => write!(f, "<blob of {size} bytes>"),
            Value::Data(id) => write!(f, "{DATA_PREFIX}{id}"),
        }
    }
}

/// The declared type of a column.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Holds `Int` values.
    #[serde(rename = "int")]
    Int,
    /// Holds `Float` values.
    #[serde(rename = "float")]
    Float,
    /// Holds `Text` values.
    #[serde(rename = "text")]
    Text,
    /// Holds `Bytes` values.
    #[serde(rename = "bytes")]
    Bytes,
    /// Holds `Data` values (references to stored data).
    #[serde(rename = "data")]
    Data,
    /// Holds values of any type.
    #[serde(rename = "any")]
    Any,
}

impl ValueType {
    /// Whether a column of this type may hold `value` (`Null` fits everywhere).
    pub fn accepts(self, value: &Value) -> bool {
        match value.value_type() {
            None => true,
            Some(ty) => self == ValueType::Any || self == ty,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Text => "text",
            ValueType::Bytes => "bytes",
            ValueType::Data => "data",
            ValueType::Any => "any",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_cli_picks_the_narrowest_type() {
        assert_eq!(Value::parse_cli("42"), Value::Int(42));
        assert_eq!(Value::parse_cli("-7"), Value::Int(-7));
        assert_eq!(Value::parse_cli("2.5"), Value::Float(2.5));
        assert_eq!(Value::parse_cli("1e3"), Value::Float(1000.0));
        assert_eq!(Value::parse_cli("null"), Value::Null);
        assert_eq!(Value::parse_cli("NULL"), Value::Text("NULL".into()));
        assert_eq!(Value::parse_cli("inf"), Value::Text("inf".into()));
        assert_eq!(Value::parse_cli("NaN"), Value::Text("NaN".into()));
        assert_eq!(Value::parse_cli(""), Value::Text(String::new()));
        assert_eq!(Value::parse_cli("hello"), Value::Text("hello".into()));
        let id = DataId::random();
        assert_eq!(Value::parse_cli(&format!("data:{id}")), Value::Data(id));
        assert_eq!(
            Value::parse_cli("data:nope"),
            Value::Text("data:nope".into())
        );
    }

    #[test]
    fn data_references_round_trip_through_cbor_and_the_cli() {
        let v = Value::Data(DataId::random());
        assert_eq!(Value::parse_cli(&v.to_string()), v);
        let mut buf = Vec::new();
        ciborium::into_writer(&v, &mut buf).unwrap();
        assert_eq!(ciborium::from_reader::<Value, _>(&buf[..]).unwrap(), v);
        assert!(ValueType::Data.accepts(&v));
        assert!(ValueType::Any.accepts(&v));
        assert!(!ValueType::Bytes.accepts(&v));
        assert!(!ValueType::Data.accepts(&Value::Bytes(vec![])));
    }

    #[test]
    fn display_round_trips_through_parse_cli() {
        for v in [
            Value::Null,
            Value::Int(-3),
            Value::Float(3.0),
            Value::Float(0.25),
        ] {
            assert_eq!(Value::parse_cli(&v.to_string()), v);
        }
        assert_eq!(Value::Bytes(vec![0, 0xab]).to_string(), "0x00ab");
        assert_eq!(Value::Text("hi".into()).to_string(), "hi");
    }

    #[test]
    fn types_accept_their_values_and_null() {
        assert!(ValueType::Int.accepts(&Value::Int(1)));
        assert!(ValueType::Int.accepts(&Value::Null));
        assert!(!ValueType::Int.accepts(&Value::Float(1.0)));
        assert!(!ValueType::Text.accepts(&Value::Bytes(vec![])));
        assert!(ValueType::Any.accepts(&Value::Bytes(vec![])));
    }

    #[test]
    fn nan_is_identical_to_itself() {
        let nan = Value::Float(f64::NAN);
        assert!(nan.identical(&nan));
        assert!(!Value::Float(0.0).identical(&Value::Float(-0.0)));
        assert!(Value::Int(1).identical(&Value::Int(1)));
        assert!(!Value::Int(1).identical(&Value::Float(1.0)));
    }
}
