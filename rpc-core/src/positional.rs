//! Positional CBOR for the structs on every call's path: a struct travels as an
//! array of its fields in declaration order, not as a map keyed by field
//! names. Every field still travels; decoding skips the key matching and the
//! key bytes (about a quarter of a request).

/// Implements Serialize/Deserialize for a struct as the tuple of its fields.
macro_rules! positional_serde {
    ($ty:ident { $($field:ident: $fty:ty),+ $(,)? }) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&($(&self.$field,)+), s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let ($($field,)+): ($($fty,)+) = serde::Deserialize::deserialize(d)?;
                Ok($ty { $($field),+ })
            }
        }
    };
}

pub(crate) use positional_serde;
