//! The state every encode, decode and call of a node needs: its identity and
//! limits, the objects it exports and the proxies it holds, its connections
//! and its transfers. The node runtime owns it; proxies and incoming calls
//! hold it, so that the layers below the node never need the node itself.

use super::handle::RemoteObject;
use super::skeleton::ServerProxy;
use crate::config::Config;
use crate::ids::NodeId;
use crate::registry::exports::ExportTable;
use crate::registry::imports::ImportTable;
use crate::registry::leases::LeaseQueue;
use crate::transfer::Transfers;
use crate::transport::connection::Handler;
use crate::transport::peers::Peers;
use std::sync::{Arc, Weak};

/// The shared state of one node below its runtime.
pub(crate) struct Core {
    /// This node's identity.
    pub(crate) id: NodeId,
    /// Limits and timeouts.
    pub(crate) config: Config,
    /// Objects we export (the ObjectRegistry and server capability registry).
    pub(crate) exports: ExportTable<dyn ServerProxy>,
    /// Proxies we hold (the client capability registry).
    pub(crate) imports: ImportTable<RemoteObject>,
    /// Lease messages owed to the homes of the proxies we hold.
    pub(crate) gc: LeaseQueue,
    /// Our connections.
    pub(crate) peers: Arc<Peers>,
    /// Large values we keep for others and pull from others.
    pub(crate) transfers: Arc<Transfers>,
}

impl Core {
    /// The state of a node with `config`, whose connections report to
    /// `handler`. Its id is [`Config::node_id`] (or random); over TLS it is
    /// derived from the certificate's name with that id as the seed, so that
    /// peers can check it.
    pub(crate) fn new(config: Config, handler: Weak<dyn Handler>) -> Core {
        let given = config.node_id.unwrap_or_else(NodeId::random);
        let (id, seed) = match &config.tls {
            Some(creds) => (
                NodeId::derive(&creds.identity().name, given.0),
                Some(given.0),
            ),
            None => (given, None),
        };
        let peers = Arc::new(Peers::new(id, seed, config.clone(), handler));
        let transfers = Arc::new(Transfers::new(id, config.clone(), Arc::clone(&peers)));
        Core {
            id,
            config,
            exports: ExportTable::default(),
            imports: ImportTable::default(),
            gc: LeaseQueue::default(),
            peers,
            transfers,
        }
    }
}
