//! Running a database server: open the store, start a node with the server's
//! persistent node id, export the database under its persistent object id,
//! bind it as `"db"` in the node's bootstrap registry, start the node's data
//! manager over `<data dir>/data` (bound as `"data"`), serve until shutdown.
//! [`DbServer::register`] binds both in a name server, which then also
//! locates the server's data.

use crate::api::DatabaseRef;
use crate::databases::Databases;
use crate::error::DbError;
use crate::objects::Shared;
use crate::store::Store;
use nameserver::client::NameClient;
use rpc_core::data::{DataConfig, DataStore};
use rpc_core::{Config, Node, NodeId, ObjectId};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::TcpListener;

/// Name of the database in the node's bootstrap registry.
pub const BOOTSTRAP_NAME: &str = "db";

/// Directory of the data manager's items, under the server's data directory.
pub const DATA_DIR: &str = "data";

/// Store identity key of the server's node id.
const NODE_ID_KEY: &str = "node";
/// Store identity key of the database object's id.
const DATABASE_ID_KEY: &str = "database";

/// How long [`DbServer::shutdown`] waits for the store to be closed.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// A running database server.
#[derive(Debug)]
pub struct DbServer {
    node: Node,
    addr: SocketAddr,
    database: DatabaseRef,
    /// The node's data manager (items under `<data dir>/data`).
    data: DataStore,
    shared: Weak<Shared>,
    /// The databases made by class-based creation.
    dbs: Arc<Databases>,
}

impl DbServer {
    /// Opens (or creates) the store in `data_dir` and serves it on `listener`.
    ///
    /// The node id and the database's object id are kept in the store, so
    /// capabilities of the database, its tables and cells stay valid across
    /// restarts on the same address.
    ///
    /// # Errors
    /// When the store cannot be opened or the listener's address cannot be read.
    pub async fn start(listener: TcpListener, data_dir: &Path) -> Result<DbServer, DbError> {
        Self::start_with(listener, data_dir, Config::default()).await
    }

    /// [`DbServer::start`] with the node settings of `config` (TLS, the
    /// advertised address, limits); its node id is the one the store keeps.
    ///
    /// # Errors
    /// As [`DbServer::start`].
    pub async fn start_with(
        listener: TcpListener,
        data_dir: &Path,
        config: Config,
    ) -> Result<DbServer, DbError> {
        let dir = data_dir.to_owned();
        let (store, node_id, db_id) = tokio::task::spawn_blocking(move || {
            let store = Store::open(&dir)?;
            let node_id = store.identity(NODE_ID_KEY)?;
            let db_id = store.identity(DATABASE_ID_KEY)?;
            Ok::<_, DbError>((store, node_id, db_id))
        })
        .await
        .map_err(|e| DbError::Storage {
            reason: format!("opening the store failed: {e}"),
        })??;
        let node = Node::new(Config {
            node_id: Some(NodeId(node_id)),
            ..config
        });
        let shared = Shared::new(store.clone(), node.clone());
        let dbs = {
            let (node, dir) = (node.clone(), data_dir.to_owned());
            tokio::task::spawn_blocking(move || Databases::open(&node, &dir, &store))
                .await
                .map_err(|e| DbError::Storage {
                    reason: format!("opening the databases failed: {e}"),
                })??
        };
        let (weak, made) = (Arc::downgrade(&shared), Arc::downgrade(&dbs));
        node.set_resolver(move |_node, id| {
            weak.upgrade().is_some_and(|s| s.resolve(id))
                || made.upgrade().is_some_and(|d| d.resolve(id))
        });
        let database = shared.database(ObjectId(db_id), None)?;
        // Exported before serving, so that the first request finds it.
        let addr = node.serve(listener).map_err(|e| DbError::Storage {
            reason: format!("cannot read the listening address: {e}"),
        })?;
        node.bind_bootstrap(BOOTSTRAP_NAME, &database)?;
        let data = DataStore::enable(&node, DataConfig::on_disk(data_dir.join(DATA_DIR))).await?;
        tracing::info!(%addr, node = %node.id(), data = %data_dir.display(), "database server started");
        Ok(DbServer {
            node,
            addr,
            database,
            data,
            shared: Arc::downgrade(&shared),
            dbs,
        })
    }

    /// The address the server accepts connections on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The database object (a local reference).
    pub fn database(&self) -> &DatabaseRef {
        &self.database
    }

    /// The node's data manager: large values stored once, referenced by
    /// [`crate::Value::Data`] cells.
    pub fn data(&self) -> &DataStore {
        &self.data
    }

    /// Registers this server with the name server through `names` (a
    /// client of this server's node, with its own context), which it keeps
    /// until [`DbServer::shutdown`]: binds the database as `<context>/db`
    /// and the data manager as `<context>/data`, makes the name server the
    /// location service of the data manager (telling it every item kept),
    /// binds the databases made here as `<context>/<name>` again and offers
    /// the class `db.Database` for class-based creation. Rebinds, so that a
    /// restart within the old lease works.
    ///
    /// # Errors
    /// Naming errors.
    pub async fn register(&self, names: NameClient) -> Result<(), nameserver::NameError> {
        names.rebind(&names.own_path("db"), &self.database).await?;
        let dm = self.data.manager().map_err(rpc_core::RpcError::from)?;
        names.rebind(&names.own_path("data"), &dm).await?;
        self.data.set_locator(names.locator()).await;
        self.dbs.register(Arc::new(names)).await
    }

    /// Graceful shutdown: unbinds from the name server at once (if it
    /// registered), stops accepting, lets running calls finish (within the
    /// node's grace period), then waits until the stores are closed, so that
    /// another server may open the same data directory at once.
    pub async fn shutdown(self) {
        let DbServer {
            node,
            database,
            data,
            shared,
            dbs,
            ..
        } = self;
        if let Some(names) = dbs.take_names().and_then(Arc::into_inner) {
            // Unbind at once rather than letting the lease run out.
            if let Err(e) = names.close().await {
                tracing::warn!(error = %e, "could not unbind from the name server");
            }
        }
        node.shutdown().await;
        drop(database);
        drop(data);
        drop(node);
        let mut stores = dbs.close();
        stores.push(shared);
        drop(dbs);
        let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
        while stores.iter().any(|s| s.strong_count() > 0) {
            if tokio::time::Instant::now() > deadline {
                tracing::warn!("store still in use after shutdown");
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!("database server stopped");
    }
}

/// Serves the store in `data_dir` on `listener` until `shutdown` completes,
/// then shuts down gracefully.
///
/// # Errors
/// When the server cannot start (see [`DbServer::start`]).
pub async fn run(
    listener: TcpListener,
    data_dir: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DbError> {
    let server = DbServer::start(listener, data_dir).await?;
    shutdown.await;
    server.shutdown().await;
    Ok(())
}
