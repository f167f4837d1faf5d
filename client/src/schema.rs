//! Column specifications and command-line values (pure, unit-tested):
//! `name:int,born` -> columns, and an argument -> the [`Value`] for a column.

use crate::ClientError;
use dbserver::{Column, Value, ValueType};

/// Parses one column spec: `name` (any type) or `name:TYPE`.
///
/// # Errors
/// [`ClientError::Input`] for an empty name or an unknown type.
pub fn parse_column(spec: &str) -> Result<Column, ClientError> {
    let spec = spec.trim();
    let (name, ty) = match spec.split_once(':') {
        None => (spec, ValueType::Any),
        Some((name, ty)) => (name.trim(), parse_type(ty.trim())?),
    };
    if name.is_empty() {
        return Err(ClientError::Input(format!(
            "column spec `{spec}` has no name"
        )));
    }
    Ok(Column::new(name, ty))
}

/// Parses a comma-separated list of column specs.
///
/// # Errors
/// As [`parse_column`]; also for an empty list or a repeated name.
pub fn parse_columns<'a>(
    specs: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Column>, ClientError> {
    let mut columns: Vec<Column> = Vec::new();
    for spec in specs {
        let c = parse_column(spec)?;
        if columns.iter().any(|o| o.name == c.name) {
            return Err(ClientError::Input(format!(
                "column `{}` given twice",
                c.name
            )));
        }
        columns.push(c);
    }
    if columns.is_empty() {
        return Err(ClientError::Input("no columns given".into()));
    }
    Ok(columns)
}

fn parse_type(ty: &str) -> Result<ValueType, ClientError> {
    Ok(match ty {
        "int" => ValueType::Int,
        "float" => ValueType::Float,
        "text" => ValueType::Text,
        "bytes" => ValueType::Bytes,
        "data" => ValueType::Data,
        "any" | "" => ValueType::Any,
        other => {
            return Err(ClientError::Input(format!(
                "unknown column type `{other}` (expected int, float, text, bytes, data or any)"
            )));
        }
    })
}

/// `name:type, ...` as a user would write it back.
pub fn describe_columns(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| format!("{}:{}", c.name, c.ty))
        .collect::<Vec<_>>()
        .join(",")
}

/// The type of the column called `name` (`any` when there is none: the
/// server then names the missing column).
pub fn column_type(columns: &[Column], name: &str) -> ValueType {
    columns
        .iter()
        .find(|c| c.name == name)
        .map_or(ValueType::Any, |c| c.ty)
}

/// The value a command-line argument means for a column of type `ty`.
///
/// [`Value::parse_cli`] first (integers, floats, `null`, else text); then,
/// where nothing is lost, what the column needs: a text column takes the
/// argument as written (`007` stays text), a float column takes an integer
/// as a float, a bytes column takes `0x` followed by hex digits. Anything
/// else is left for the server to refuse with a type mismatch.
pub fn cli_value(arg: &str, ty: ValueType) -> Value {
    let v = Value::parse_cli(arg);
    match (ty, &v) {
        (_, Value::Null) => v,
        (ValueType::Text, _) => Value::Text(arg.to_owned()),
        (ValueType::Float, Value::Int(i)) => {
            // Integers beyond 2^53 would lose precision: leave them to be refused.
            if i.unsigned_abs() <= (1u64 << 53) {
                Value::Float(*i as f64)
            } else {
                v
            }
        }
        (ValueType::Bytes, _) => parse_hex(arg).map_or(v, Value::Bytes),
        _ => v,
    }
}

/// `0x` followed by an even number of hex digits.
fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.len() % 2 != 0 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_with_and_without_types() {
        let cols = parse_columns("name:text,born:int, x ,f:float,b:bytes".split(',')).unwrap();
        assert_eq!(
            cols,
            vec![
                Column::new("name", ValueType::Text),
                Column::new("born", ValueType::Int),
                Column::new("x", ValueType::Any),
                Column::new("f", ValueType::Float),
                Column::new("b", ValueType::Bytes),
            ]
        );
        assert_eq!(describe_columns(&cols[..2]), "name:text,born:int");
    }

    #[test]
    fn bad_column_specs_are_refused() {
        for bad in ["a:integer", ":int", "", "a,a"] {
            assert!(parse_columns(bad.split(',')).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_fit_their_column_when_nothing_is_lost() {
        assert_eq!(cli_value("007", ValueType::Text), Value::Text("007".into()));
        assert_eq!(cli_value("null", ValueType::Text), Value::Null);
        assert_eq!(cli_value("3", ValueType::Float), Value::Float(3.0));
        assert_eq!(cli_value("3", ValueType::Any), Value::Int(3));
        assert_eq!(cli_value("2.5", ValueType::Int), Value::Float(2.5));
        assert_eq!(cli_value("abc", ValueType::Int), Value::Text("abc".into()));
        assert_eq!(
            cli_value("0x00ab", ValueType::Bytes),
            Value::Bytes(vec![0, 0xab])
        );
        assert_eq!(
            cli_value("0xabc", ValueType::Bytes),
            Value::Text("0xabc".into())
        );
        assert_eq!(
            cli_value("0x00", ValueType::Any),
            Value::Text("0x00".into())
        );
    }
}
