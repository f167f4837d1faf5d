//! What every command runs with: a client node connected to the name server,
//! the path of the database, the printer and the time limit.

use crate::ClientError;
use crate::output::Printer;
use dbserver::api::{Database, DatabaseRef, TableRef};
use nameserver::client::NameClient;
use rpc_core::{Config, Node};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest wait for the node to close its connections when a command ends.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// A connected client.
#[derive(Debug)]
pub struct Context {
    /// The client's node: it does not listen; servers call its listener
    /// objects back over the connections it opened.
    node: Node,
    /// The name server connection (resolves paths; binds nothing).
    names: NameClient,
    /// Address of the name server, handed on to benchmark workers.
    nameserver: String,
    /// Path of the database in the name server.
    db_path: String,
    /// Prints outputs, events and notices.
    printer: Printer,
    /// Time limit of one command (`--timeout`).
    timeout: Duration,
    /// `--tls`, handed on to benchmark workers.
    tls_dir: Option<PathBuf>,
}

impl Context {
    /// Connects a new client node (with `config`: TLS credentials, say) to
    /// the name server at `nameserver`.
    ///
    /// # Errors
    /// [`ClientError::Name`] when the name server cannot be reached or is not one.
    pub async fn connect(
        nameserver: &str,
        db_path: &str,
        printer: Printer,
        timeout: Duration,
        config: Config,
        tls_dir: Option<PathBuf>,
    ) -> Result<Context, ClientError> {
        let node = Node::new(config);
        let names = NameClient::connect(&node, nameserver).await?;
        Ok(Context {
            node,
            names,
            nameserver: nameserver.to_owned(),
            db_path: db_path.to_owned(),
            printer,
            timeout,
            tls_dir,
        })
    }

    /// The `--tls` directory, if the command was given one.
    pub fn tls_dir(&self) -> Option<&Path> {
        self.tls_dir.as_deref()
    }

    /// The client's node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The name server connection.
    pub fn names(&self) -> &NameClient {
        &self.names
    }

    /// Address of the name server.
    pub fn nameserver(&self) -> &str {
        &self.nameserver
    }

    /// Path of the database in the name server.
    pub fn db_path(&self) -> &str {
        &self.db_path
    }

    /// The printer.
    pub fn printer(&self) -> Printer {
        self.printer
    }

    /// Time limit of one command.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The database, resolved through the name server (each time, so that a
    /// restarted server is found at its new address).
    ///
    /// # Errors
    /// [`ClientError::Name`] when nothing (or something else) is bound there.
    pub async fn db(&self) -> Result<DatabaseRef, ClientError> {
        Ok(self.names.resolve::<DatabaseRef>(&self.db_path).await?)
    }

    /// An existing table.
    ///
    /// # Errors
    /// As [`Context::db`]; [`dbserver::DbError::NoSuchTable`].
    pub async fn table(&self, name: &str) -> Result<TableRef, ClientError> {
        Ok(self.db().await?.open_table(name.to_owned()).await?)
    }

    /// Registers this client's own context in the name server,
    /// `client-<id>` (see [`nameserver::client::client_context_name`]), for
    /// the objects a command exports (a watch listener, an import source);
    /// [`NameClient::close`] removes it with everything in it, and the
    /// name server drops it when the lease runs out if this process dies.
    ///
    /// # Errors
    /// [`ClientError::Name`] when it cannot be registered.
    pub async fn own_context(&self) -> Result<NameClient, ClientError> {
        let name = nameserver::client::client_context_name(self.node.id());
        Ok(NameClient::connect_as(&self.node, &self.nameserver, &name).await?)
    }

    /// Runs `f` within the time limit.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when it takes longer; else what `f` returns.
    pub async fn bounded<T>(
        &self,
        f: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        bounded(self.timeout, f).await
    }

    /// Closes the node's connections (briefly waiting), so that servers drop
    /// this client's listeners at once.
    pub async fn close(self) {
        drop(self.names);
        let _ = tokio::time::timeout(CLOSE_WAIT, self.node.shutdown()).await;
    }
}

/// Runs `f`, failing with [`ClientError::Timeout`] after `limit`.
///
/// # Errors
/// [`ClientError::Timeout`]; else what `f` returns.
pub async fn bounded<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| ClientError::Timeout {
            secs: limit.as_secs(),
        })?
}
