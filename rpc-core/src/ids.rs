//! Identifier newtypes: nodes, objects, calls, classes, and the capability that
//! names a remote object.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// A map keyed by ids on every call's path (pending and running calls,
/// exports, connections): hashed with foldhash, seeded at random, instead of
/// SipHash, which took about 2 % of a server's CPU per null call. Most keys
/// are random or chosen by this node; the one with keys a peer picks (its
/// running calls) holds at most `Config::max_inflight_per_connection`.
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Identity of one running node (process-wide runtime instance), random per start.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub Uuid);

impl NodeId {
    /// A fresh random node id.
    pub fn random() -> Self {
        NodeId(Uuid::new_v4())
    }

    /// The id a node holding a certificate for `name` takes with `seed`:
    /// a SHA-256 of both, so a peer that verified the certificate can check
    /// the id a hello claims, and no other certificate can claim it.
    pub fn derive(name: &str, seed: Uuid) -> NodeId {
        let mut input = Vec::with_capacity(name.len() + 1 + 16);
        input.extend_from_slice(name.as_bytes());
        input.push(0);
        input.extend_from_slice(seed.as_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest.as_ref()[..16]);
        NodeId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

/// Who is at the other end of a connection, as far as this node knows: the
/// node id it claims and, over TLS, the certificate that binds that id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The peer's node id (bound to its certificate over TLS; a claim in
    /// plaintext).
    pub node: NodeId,
    /// The node name of its certificate; `None` in plaintext.
    pub name: Option<String>,
    /// True for a certificate issued with `--admin`.
    pub admin: bool,
}

impl Identity {
    /// True when a certificate vouches for this identity.
    pub fn is_authenticated(&self) -> bool {
        self.name.is_some()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) if self.admin => write!(f, "{n} (admin, {:?})", self.node),
            Some(n) => write!(f, "{n} ({:?})", self.node),
            None => write!(f, "{:?} (unauthenticated)", self.node),
        }
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node:{}", &self.0.simple().to_string()[..8])
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Unguessable identity of an exported object: 122 random bits (UUID v4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectId(pub Uuid);

impl ObjectId {
    /// A fresh random object id.
    pub fn random() -> Self {
        ObjectId(Uuid::new_v4())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "obj:{}", &self.0.simple().to_string()[..8])
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Identity of one large value kept by its sender until the receiver pulled it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransferId(pub Uuid);

impl TransferId {
    /// A fresh random transfer id.
    pub fn random() -> Self {
        TransferId(Uuid::new_v4())
    }
}

impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xfer:{}", &self.0.simple().to_string()[..8])
    }
}

/// Identity of one piece of data kept by a data manager: 122 random bits
/// (UUID v4), so that holding the id is the right to read the data, as
/// holding a capability is the right to call an object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DataId(pub Uuid);

impl DataId {
    /// A fresh random data id.
    pub fn random() -> Self {
        DataId(Uuid::new_v4())
    }
}

impl fmt::Debug for DataId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "data:{}", &self.0.simple().to_string()[..8])
    }
}

impl fmt::Display for DataId {
    /// The full id as a hyphenated UUID, the form the CLI prints and parses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for DataId {
    type Err = uuid::Error;

    /// Parses the [`Display`](fmt::Display) form (any UUID spelling `uuid` accepts).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(DataId)
    }
}

/// Per-connection, per-direction call number; answers are matched by it.
pub type CallId = u64;

/// Stable 64-bit id of a remote class, derived from its wire name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClassId(pub u64);

impl ClassId {
    /// The id of the class whose wire name is `name`.
    pub const fn of(name: &str) -> ClassId {
        ClassId(fnv1a(name.as_bytes()))
    }
}

/// 64-bit digest of a class's method signatures: equal versions mean compatible stubs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClassVersion(pub u64);

/// FNV-1a over bytes; used for class ids and versions so they are stable across
/// builds and platforms (the std hasher is randomized and may change).
pub(crate) const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// How to reach a node: its id, and the address it listens on if it listens at all.
///
/// A node that accepts no connections (a plain client) has no address; its objects
/// are still callable over connections it opened itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ComHandle {
    /// The node's identity.
    pub node: NodeId,
    /// `host:port` the node accepts connections on, if any.
    pub addr: Option<String>,
}

impl fmt::Debug for ComHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            Some(a) => write!(f, "{:?}@{a}", self.node),
            None => write!(f, "{:?}@(not listening)", self.node),
        }
    }
}

/// The right to call one object: who it is, what it is, and where it lives.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Capability {
    /// Random object id; holding it is the permission to call.
    pub object: ObjectId,
    /// Class of the object.
    pub class: ClassId,
    /// Version of the class the home node implements.
    pub version: ClassVersion,
    /// The object's home node.
    pub home: ComHandle,
}

impl fmt::Debug for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} class {:016x} v{:016x} at {:?}",
            self.object, self.class.0, self.version.0, self.home
        )
    }
}

crate::positional::positional_serde!(ComHandle {
    node: NodeId,
    addr: Option<String>,
});

crate::positional::positional_serde!(Capability {
    object: ObjectId,
    class: ClassId,
    version: ClassVersion,
    home: ComHandle,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        // Golden values: a change here changes every class id on the wire.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn derived_node_ids_depend_on_name_and_seed() {
        let seed = Uuid::new_v4();
        let a = NodeId::derive("alice", seed);
        assert_eq!(a, NodeId::derive("alice", seed));
        assert_ne!(a, NodeId::derive("bob", seed));
        assert_ne!(a, NodeId::derive("alice", Uuid::new_v4()));
        // The separator keeps ("ab", seed) and ("a", "b"+seed) apart.
        assert_ne!(
            NodeId::derive("ab", Uuid::nil()),
            NodeId::derive("a", Uuid::nil())
        );
    }

    #[test]
    fn data_ids_print_and_parse_as_uuids() {
        let id = DataId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(text.parse::<DataId>().unwrap(), id);
        assert!("not-an-id".parse::<DataId>().is_err());
    }
}
