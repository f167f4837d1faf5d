//! What `client call` turns values into and back (pure, unit-tested): a
//! JSON argument into the CBOR value the object's skeleton decodes, a CBOR
//! result into JSON. A capability (a reference) is written `cap:<hex of its
//! CBOR>`, in results and wherever `call` takes a path or an argument.

use crate::ClientError;
use ciborium::Value as Cbor;
use rpc_core::Capability;
use serde_json::{Map, Value as Json};

/// Prefix of a capability written as text.
pub const CAP_PREFIX: &str = "cap:";

/// A command-line argument as CBOR: JSON if it parses as JSON (a bare word
/// that does not is a string); strings `cap:<hex>` become the capability.
///
/// # Errors
/// [`ClientError::Input`] for a malformed `cap:` string.
pub fn arg_to_cbor(arg: &str) -> Result<Cbor, ClientError> {
    let json = serde_json::from_str::<Json>(arg).unwrap_or_else(|_| Json::String(arg.to_owned()));
    json_to_cbor(&json)
}

/// JSON as CBOR: integers stay integers, strings `cap:<hex>` become capabilities.
///
/// # Errors
/// [`ClientError::Input`] for a malformed `cap:` string.
pub fn json_to_cbor(json: &Json) -> Result<Cbor, ClientError> {
    Ok(match json {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Cbor::Integer(i.into()),
            (None, Some(u), _) => Cbor::Integer(u.into()),
            (_, _, Some(f)) => Cbor::Float(f),
            _ => Cbor::Null,
        },
        Json::String(s) => match s.strip_prefix(CAP_PREFIX) {
            Some(hex) => capability_cbor(hex)?,
            None => Cbor::Text(s.clone()),
        },
        Json::Array(a) => Cbor::Array(a.iter().map(json_to_cbor).collect::<Result<_, _>>()?),
        Json::Object(o) => Cbor::Map(
            o.iter()
                .map(|(k, v)| Ok((Cbor::Text(k.clone()), json_to_cbor(v)?)))
                .collect::<Result<_, ClientError>>()?,
        ),
    })
}

/// The capability written `cap:<hex>` (without the prefix).
///
/// # Errors
/// [`ClientError::Input`] when it is not hex of a capability's CBOR.
pub fn parse_capability(hex: &str) -> Result<Capability, ClientError> {
    capability_cbor(hex)?
        .deserialized::<Capability>()
        .map_err(|e| ClientError::Input(format!("`{CAP_PREFIX}{hex}` is not a capability: {e}")))
}

fn capability_cbor(hex: &str) -> Result<Cbor, ClientError> {
    let bad =
        |why: &str| ClientError::Input(format!("`{CAP_PREFIX}{hex}` is not a capability: {why}"));
    if !hex.len().is_multiple_of(2) {
        return Err(bad("odd number of hex digits"));
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad("not hex"))?;
    let v: Cbor = ciborium::from_reader(&bytes[..]).map_err(|e| bad(&e.to_string()))?;
    v.deserialized::<Capability>()
        .map_err(|e| bad(&e.to_string()))?;
    Ok(v)
}

/// A capability written as text.
pub fn capability_text(cap: &Capability) -> String {
    let mut bytes = Vec::new();
    // A capability always encodes.
    let _ = ciborium::into_writer(cap, &mut bytes);
    format!("{CAP_PREFIX}{}", hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// CBOR as JSON: bytes as `{"bytes": "<hex>"}`, capabilities as `cap:<hex>`,
/// map keys that are not text written as JSON text.
pub fn cbor_to_json(v: &Cbor) -> Json {
    if let Cbor::Array(items) = v
        && items.len() == 4
        && let Ok(cap) = v.deserialized::<Capability>()
    {
        return Json::String(capability_text(&cap));
    }
    match v {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(*b),
        Cbor::Integer(i) => {
            let i = i128::from(*i);
            i64::try_from(i)
                .map(Json::from)
                .or_else(|_| u64::try_from(i).map(Json::from))
                .unwrap_or_else(|_| Json::String(i.to_string()))
        }
        Cbor::Float(f) => serde_json::Number::from_f64(*f)
            .map_or_else(|| Json::String(f.to_string()), Json::Number),
        Cbor::Text(s) => Json::String(s.clone()),
        Cbor::Bytes(b) => serde_json::json!({ "bytes": hex(b) }),
        Cbor::Tag(_, inner) => cbor_to_json(inner),
        Cbor::Array(a) => Json::Array(a.iter().map(cbor_to_json).collect()),
        Cbor::Map(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                let key = match k {
                    Cbor::Text(s) => s.clone(),
                    other => cbor_to_json(other).to_string(),
                };
                out.insert(key, cbor_to_json(val));
            }
            Json::Object(out)
        }
        _ => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpc_core::{ClassId, ClassVersion, ComHandle, NodeId, ObjectId};

    #[test]
    fn arguments_read_as_json_or_as_a_word() {
        assert_eq!(arg_to_cbor("42").unwrap(), Cbor::Integer(42.into()));
        assert_eq!(arg_to_cbor("people").unwrap(), Cbor::Text("people".into()));
        assert_eq!(arg_to_cbor("\"42\"").unwrap(), Cbor::Text("42".into()));
        assert_eq!(
            arg_to_cbor("{\"int\": 5}").unwrap(),
            Cbor::Map(vec![(Cbor::Text("int".into()), Cbor::Integer(5.into()))])
        );
        // Decoded by serde as the skeleton would.
        let v: dbserver::Value = arg_to_cbor("{\"int\": 5}").unwrap().deserialized().unwrap();
        assert_eq!(v, dbserver::Value::Int(5));
    }

    #[test]
    fn capabilities_round_trip_as_text() {
        let cap = Capability {
            object: ObjectId::random(),
            class: ClassId(7),
            version: ClassVersion(9),
            home: ComHandle {
                node: NodeId(ObjectId::random().0),
                addr: Some("127.0.0.1:1".into()),
            },
        };
        let text = capability_text(&cap);
        assert_eq!(
            parse_capability(text.strip_prefix(CAP_PREFIX).unwrap()).unwrap(),
            cap
        );
        let as_cbor = Cbor::serialized(&cap).unwrap();
        assert_eq!(cbor_to_json(&as_cbor), Json::String(text.clone()));
        assert_eq!(arg_to_cbor(&text).unwrap(), as_cbor);
        assert!(parse_capability("zz").is_err());
        assert!(arg_to_cbor("cap:00").is_err());
    }

    #[test]
    fn results_read_as_json() {
        let v = Cbor::Map(vec![
            (Cbor::Text("n".into()), Cbor::Integer((-3).into())),
            (Cbor::Text("b".into()), Cbor::Bytes(vec![0, 0xab])),
            (Cbor::Integer(1.into()), Cbor::Float(0.5)),
        ]);
        assert_eq!(
            cbor_to_json(&v),
            serde_json::json!({"n": -3, "b": {"bytes": "00ab"}, "1": 0.5})
        );
    }
}
