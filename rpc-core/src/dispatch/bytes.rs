//! Byte values as whole arguments and results: `Vec<u8>`, `Box<[u8]>` and
//! `bytes::Bytes` travel as one CBOR byte string, built around the value's
//! own buffer (serde alone writes a `Vec<u8>` as an array of integers: up to
//! twice the size, a decode per byte, and copies on each side). The
//! `#[remote]` macro sees these types in a signature and calls this path;
//! inside a user's struct, bytes need `#[serde(with = "serde_bytes")]` or a
//! [`crate::Blob`] (see the crate docs).

use crate::wire::Payload;

/// A byte buffer type the generated code sends as one CBOR byte string.
pub trait ByteValue: Sized {
    /// The bytes, as a `Vec` (without a copy where the type allows).
    fn into_vec(self) -> Vec<u8>;
    /// The value holding `v` (without a copy where the type allows).
    fn from_vec(v: Vec<u8>) -> Self;
}

impl ByteValue for Vec<u8> {
    fn into_vec(self) -> Vec<u8> {
        self
    }
    fn from_vec(v: Vec<u8>) -> Self {
        v
    }
}

impl ByteValue for Box<[u8]> {
    fn into_vec(self) -> Vec<u8> {
        self.into_vec()
    }
    fn from_vec(v: Vec<u8>) -> Self {
        v.into_boxed_slice()
    }
}

impl ByteValue for bytes::Bytes {
    fn into_vec(self) -> Vec<u8> {
        // No copy when this is the only handle to a buffer from a `Vec`.
        Vec::from(self)
    }
    fn from_vec(v: Vec<u8>) -> Self {
        bytes::Bytes::from(v)
    }
}

/// CBOR major type 2 (byte string), in the initial byte.
const BYTE_STRING: u8 = 0x40;

/// The CBOR byte-string head for `len` bytes, and its length.
fn head(len: usize) -> ([u8; 9], usize) {
    let mut h = [0u8; 9];
    let len = len as u64;
    let n = match len {
        0..=23 => {
            h[0] = BYTE_STRING | len as u8;
            1
        }
        24..=0xff => {
            h[0] = BYTE_STRING | 24;
            h[1] = len as u8;
            2
        }
        0x100..=0xffff => {
            h[0] = BYTE_STRING | 25;
            h[1..3].copy_from_slice(&(len as u16).to_be_bytes());
            3
        }
        0x1_0000..=0xffff_ffff => {
            h[0] = BYTE_STRING | 26;
            h[1..5].copy_from_slice(&(len as u32).to_be_bytes());
            5
        }
        _ => {
            h[0] = BYTE_STRING | 27;
            h[1..9].copy_from_slice(&len.to_be_bytes());
            9
        }
    };
    (h, n)
}

/// The payload of `v`: its bytes as one CBOR byte string, made in `v`'s own
/// buffer (the bytes move up by the head's few bytes; a large buffer grows
/// in place).
pub(crate) fn to_payload(v: impl ByteValue) -> Payload {
    let mut v = v.into_vec();
    let len = v.len();
    let (h, n) = head(len);
    v.reserve_exact(n);
    v.extend_from_slice(&h[..n]);
    v.copy_within(0..len, n);
    v[..n].copy_from_slice(&h[..n]);
    Payload(v)
}

/// The bytes of a payload made by [`to_payload`], taken out of its buffer in
/// place. `None` when it is not one definite-length CBOR byte string.
pub(crate) fn from_payload(p: Payload) -> Result<Vec<u8>, Payload> {
    let b = &p.0;
    let Some(&first) = b.first() else {
        return Err(p);
    };
    if first & 0xe0 != BYTE_STRING {
        return Err(p);
    }
    let (len, n) = match first & 0x1f {
        l @ 0..=23 => (u64::from(l), 1),
        24 => match b.get(1) {
            Some(&l) => (u64::from(l), 2),
            None => return Err(p),
        },
        25 => match b.get(1..3) {
            Some(s) => (u64::from(u16::from_be_bytes([s[0], s[1]])), 3),
            None => return Err(p),
        },
        26 => match b.get(1..5) {
            Some(s) => (u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])), 5),
            None => return Err(p),
        },
        27 => match b.get(1..9) {
            Some(s) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                (u64::from_be_bytes(a), 9)
            }
            None => return Err(p),
        },
        // Indefinite length (chunked) or reserved: the generic decoder's job.
        _ => return Err(p),
    };
    if (b.len() - n) as u64 != len {
        return Err(p);
    }
    let mut v = p.0;
    v.drain(..n);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_strings_round_trip_and_match_ciborium() {
        for len in [0usize, 1, 23, 24, 255, 256, 65_535, 65_536, 100_000] {
            let v: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let p = to_payload(v.clone());
            let mut want = Vec::new();
            ciborium::into_writer(&serde_bytes::Bytes::new(&v), &mut want)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.0, want, "len {len}");
            assert_eq!(from_payload(p).ok(), Some(v));
        }
    }

    #[test]
    fn other_cbor_is_refused() {
        for bad in [
            vec![],
            vec![0x80],
            vec![0x5f, 0x41, 1, 0xff],
            vec![0x43, 1, 2],
        ] {
            assert!(from_payload(Payload(bad)).is_err());
        }
    }
}
