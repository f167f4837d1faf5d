//! The databases one server keeps: its main one (`db`) and those made by
//! class-based creation of [`crate::api::Database`] (the server offers the
//! class in the name server). Each made database is a store of its own
//! under `<data dir>/dbs/<id>`, recorded in the main store; its object id
//! is that id, so its references survive restarts like the main one's.
//!
//! A made database is named by [`crate::api::Database::bind_as`], which
//! binds it as `<context>/<name>` and records the name; one not named within
//! [`NAME_WITHIN`] (its creator went away, or naming failed) is deleted,
//! or at the next start if the server stopped first, and at most
//! [`MAX_DATABASES`] exist at once.

use crate::api::DatabaseRef;
use crate::error::DbError;
use crate::objects::{Binder, Shared};
use crate::store::Store;
use nameserver::client::NameClient;
use parking_lot::Mutex;
use rpc_core::{Node, ObjectId, RpcError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use uuid::Uuid;

/// Directory of the made databases, under the server's data directory.
pub const DBS_DIR: &str = "dbs";

/// Most databases a server makes for others.
pub const MAX_DATABASES: usize = 64;

/// Time a made database may stay unnamed: then it is deleted, so that
/// creations nobody finished do not hold storage or count against
/// [`MAX_DATABASES`].
pub const NAME_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

/// The made databases of one server.
pub(crate) struct Databases {
    node: Node,
    /// `<data dir>/dbs`.
    dir: PathBuf,
    /// The main store, which records the made databases.
    main: Store,
    /// Open made databases by id, with their database objects.
    made: Mutex<HashMap<Uuid, (Arc<Shared>, DatabaseRef)>>,
    /// The name server connection, once the server registered.
    names: Mutex<Option<Arc<NameClient>>>,
    me: Weak<Databases>,
}

impl std::fmt::Debug for Databases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Databases")
            .field("made", &self.made.lock().len())
            .finish_non_exhaustive()
    }
}

impl Databases {
    /// Opens the made databases recorded in `main` (deleting those never
    /// named) and exports each from `node`.
    pub(crate) fn open(
        node: &Node,
        data_dir: &std::path::Path,
        main: &Store,
    ) -> Result<Arc<Databases>, DbError> {
        let dbs = Arc::new_cyclic(|me| Databases {
            node: node.clone(),
            dir: data_dir.join(DBS_DIR),
            main: main.clone(),
            made: Mutex::new(HashMap::new()),
            names: Mutex::new(None),
            me: me.clone(),
        });
        for (id, name) in main.databases()? {
            if name.is_empty() {
                tracing::info!(database = %id, "removing a database that was never named");
                let _ = std::fs::remove_dir_all(dbs.path_of(id));
                main.remove_database(id)?;
                continue;
            }
            dbs.open_one(id)?;
        }
        Ok(dbs)
    }

    fn path_of(&self, id: Uuid) -> PathBuf {
        self.dir.join(id.simple().to_string())
    }

    /// Opens and exports the made database `id`.
    fn open_one(&self, id: Uuid) -> Result<DatabaseRef, DbError> {
        let store = Store::open(&self.path_of(id))?;
        let shared = Shared::new(store, self.node.clone());
        let db = shared.database(ObjectId(id), Some(self.binder(id)))?;
        self.made.lock().insert(id, (shared, db.clone()));
        Ok(db)
    }

    /// The factory of class-based creation: a new, empty, unnamed database.
    pub(crate) fn create(&self) -> Result<DatabaseRef, RpcError> {
        if self.made.lock().len() >= MAX_DATABASES {
            return Err(RpcError::QuotaExceeded {
                reason: format!("this server keeps {MAX_DATABASES} databases already"),
            });
        }
        let id = Uuid::new_v4();
        let made = (|| {
            self.main.add_database(id)?;
            self.open_one(id)
        })();
        let db = made.map_err(|e| {
            tracing::warn!(error = %e, "could not make a database");
            RpcError::Remote {
                message: format!("could not make a database: {e}"),
            }
        })?;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let me = self.me.clone();
            rt.spawn(async move {
                tokio::time::sleep(NAME_WITHIN).await;
                if let Some(dbs) = me.upgrade() {
                    dbs.delete_unnamed(id).await;
                }
            });
        }
        Ok(db)
    }

    /// Deletes made database `id` if it still has no name.
    async fn delete_unnamed(&self, id: Uuid) {
        let main = self.main.clone();
        let unnamed = tokio::task::spawn_blocking(move || main.databases())
            .await
            .ok()
            .and_then(Result::ok)
            .is_some_and(|all| all.iter().any(|(d, n)| *d == id && n.is_empty()));
        if !unnamed {
            return;
        }
        let Some((shared, db)) = self.made.lock().remove(&id) else {
            return;
        };
        self.node.unexport(&ObjectId(id));
        shared.unexport_all();
        drop((shared, db));
        let (main, path) = (self.main.clone(), self.path_of(id));
        let removed = tokio::task::spawn_blocking(move || {
            main.remove_database(id)?;
            // Open files of calls still running go when they end.
            std::fs::remove_dir_all(&path).map_err(|e| DbError::Storage {
                reason: format!("cannot remove {}: {e}", path.display()),
            })
        })
        .await;
        match removed {
            Ok(Ok(())) => tracing::info!(database = %id, "deleted a database nobody named"),
            Ok(Err(e)) => {
                tracing::warn!(database = %id, error = %e, "could not delete an unnamed database")
            }
            Err(e) => {
                tracing::warn!(database = %id, error = %e, "could not delete an unnamed database")
            }
        }
    }

    /// Names database `id`: binds it in the name server, then records the name.
    fn binder(&self, id: Uuid) -> Binder {
        let me = self.me.clone();
        Arc::new(move |name: String| {
            let me = me.clone();
            Box::pin(async move {
                let dbs = me.upgrade().ok_or_else(|| DbError::Unsupported {
                    what: "naming a database of a server shutting down".into(),
                })?;
                dbs.bind(id, name).await
            })
        })
    }

    async fn bind(&self, id: Uuid, name: String) -> Result<String, DbError> {
        nameserver::name::check_component(&name).map_err(|e| DbError::InvalidName {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        let names = self
            .names
            .lock()
            .clone()
            .ok_or_else(|| DbError::Unsupported {
                what: "naming a database: this server is not registered in a name server".into(),
            })?;
        let db = self.database(id).ok_or_else(|| DbError::Storage {
            reason: format!("database {id} is not open"),
        })?;
        let path = names.own_path(&name);
        names.bind(&path, &db).await.map_err(|e| DbError::Naming {
            reason: e.to_string(),
        })?;
        let (main, n) = (self.main.clone(), name.clone());
        let recorded = tokio::task::spawn_blocking(move || main.name_database(id, &n))
            .await
            .map_err(|e| DbError::Storage {
                reason: format!("store task failed: {e}"),
            })?;
        if let Err(e) = recorded {
            let _ = names.unbind(&path).await;
            return Err(e);
        }
        tracing::info!(database = %id, %path, "database bound");
        Ok(path)
    }

    /// Registers with the name server: binds every named database again
    /// (after a restart) and offers the class.
    pub(crate) async fn register(
        &self,
        names: Arc<NameClient>,
    ) -> Result<(), nameserver::NameError> {
        *self.names.lock() = Some(Arc::clone(&names));
        let named = tokio::task::spawn_blocking({
            let main = self.main.clone();
            move || main.databases()
        })
        .await
        .map_err(|e| RpcError::Remote {
            message: format!("store task failed: {e}"),
        })?
        .map_err(|e| RpcError::Remote {
            message: e.to_string(),
        })?;
        for (id, name) in named {
            if name.is_empty() {
                continue;
            }
            let Some(db) = self.database(id) else {
                continue;
            };
            names.rebind(&names.own_path(&name), &db).await?;
        }
        if let Some(context) = names.context().map(str::to_owned) {
            let me = self.me.clone();
            names
                .offer_fallible_class(&context, move || match me.upgrade() {
                    Some(dbs) => dbs.create(),
                    None => Err(RpcError::Remote {
                        message: "the server is shutting down".into(),
                    }),
                })
                .await?;
        }
        Ok(())
    }

    /// The name server connection, taken out at shutdown.
    pub(crate) fn take_names(&self) -> Option<Arc<NameClient>> {
        self.names.lock().take()
    }

    /// The database object of made database `id`, if it is open.
    fn database(&self, id: Uuid) -> Option<DatabaseRef> {
        self.made.lock().get(&id).map(|(_, db)| db.clone())
    }

    /// The resolver hook over the made databases: a database object
    /// (exported again if it was collected), its tables and cells.
    pub(crate) fn resolve(&self, id: ObjectId) -> bool {
        if let Some(db) = self.database(id.0) {
            return self.node.export_as(&db, id).is_ok();
        }
        let made: Vec<Arc<Shared>> = self
            .made
            .lock()
            .values()
            .map(|(s, _)| Arc::clone(s))
            .collect();
        made.iter().any(|s| s.resolve(id))
    }

    /// Drops the made databases' state; their stores close once the
    /// exports are gone too. Returns handles to wait on.
    pub(crate) fn close(&self) -> Vec<Weak<Shared>> {
        self.made
            .lock()
            .drain()
            .map(|(_, (s, _))| Arc::downgrade(&s))
            .collect()
    }
}
