//! The typed client helper: connect to a name server, resolve paths straight
//! into typed references, and keep this node's registrations alive.
//!
//! A [`NameClient`] renews the node's lease on a background task (stopped when
//! the client is dropped), remembers everything it bound, and makes it all
//! again when the name server has lost it (the name server restarted, or the
//! lease ran out while the node was cut off). Paths are absolute: they start
//! at the root context (`dbserver/db`).
//!
//! It is also the client of the location service: [`NameClient::add_data`]
//! records the data this node keeps (and records it again after the name
//! server lost it), [`NameClient::locate`] finds where any data id is kept,
//! and [`NameClient::locator`] hands the same service to rpc-core's data
//! manager as a [`Locator`].

use crate::api::{
    DataLocation, Lease, MAX_DATA_IDS_PER_CALL, NameContext, NameContextRef, NameError, ROOT_NAME,
};
use crate::name;
use parking_lot::{Mutex, RwLock};
use rpc_core::BoxFuture;
use rpc_core::data::Locator;
use rpc_core::{Capability, ComHandle, DataId, Node, NodeId, RemoteRef, RpcError};
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// First pause before reconnecting after a failed renewal; doubles on each failure.
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(20);

/// Longest pause between two reconnection attempts (also bounded by the
/// renewal period, so that recovery takes about one period).
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Leases are renewed this many times per lease time.
pub const RENEWALS_PER_LEASE: u32 = 3;

/// Name of the context of a client node that exports objects: `client-<id>`.
pub fn client_context_name(node: NodeId) -> String {
    let id = node.0.simple().to_string();
    format!("client-{}", &id[..12])
}

/// A connection to a name server, with this node's lease and registrations.
///
/// Dropping it stops renewing the lease (the node's entries then go when the
/// lease runs out); [`NameClient::close`] removes them at once.
#[derive(Debug)]
pub struct NameClient {
    /// State shared with the renewal task.
    shared: Arc<Shared>,
    /// Cancelled on drop: stops the renewal task.
    renewal: CancellationToken,
}

/// State shared with the renewal task.
#[derive(Debug)]
struct Shared {
    /// The node whose registrations these are.
    node: Node,
    /// Address of the name server.
    addr: String,
    /// The node's own context, if it registered one.
    context: Option<String>,
    /// The root context; replaced when the name server restarts. Read for
    /// every call, written on reconnection only; never held across an await.
    root: RwLock<NameContextRef>,
    /// Lease time granted by the name server, in milliseconds.
    lease_ms: AtomicU64,
    /// Bumped by each reconnection, so that callers failing at once reconnect once.
    generation: AtomicU64,
    /// Serializes reconnections (held across their awaits, hence async).
    reconnecting: tokio::sync::Mutex<()>,
    /// What this node registered, in order, to make again after the name
    /// server lost it. Short critical sections, never across an await.
    registrations: Mutex<Vec<Registration>>,
    /// The data entries this node recorded (id -> the node keeping it), to
    /// record again after the name server lost them. Kept apart from
    /// `registrations` because there may be many, removed one by one. Short
    /// critical sections, never across an await.
    data: Mutex<HashMap<DataId, ComHandle>>,
}

/// One change this node made, to be made again after a name server restart.
#[derive(Debug, Clone)]
enum Registration {
    Context(String),
    Object { path: String, object: Capability },
    Class { path: String, offer: ComHandle },
}

impl Registration {
    fn path(&self) -> &str {
        match self {
            Registration::Context(p)
            | Registration::Object { path: p, .. }
            | Registration::Class { path: p, .. } => p,
        }
    }
}

impl NameClient {
    /// Connects `node` to the name server at `addr` for resolving (and for
    /// binding without a context of its own).
    ///
    /// # Errors
    /// When the name server cannot be reached or is not a name server.
    pub async fn connect(node: &Node, addr: &str) -> Result<NameClient, NameError> {
        Self::start(node, addr, None).await
    }

    /// Connects and registers the node's own context `context` under the
    /// root (`dbserver`, or [`client_context_name`] for a client).
    ///
    /// # Errors
    /// As [`NameClient::connect`]; [`NameError::AlreadyBound`] when another
    /// node holds that name; [`NameError::InvalidName`].
    pub async fn connect_as(
        node: &Node,
        addr: &str,
        context: &str,
    ) -> Result<NameClient, NameError> {
        name::check_component(context)?;
        let client = Self::start(node, addr, Some(context.to_owned())).await?;
        client.create_context(context).await?;
        Ok(client)
    }

    async fn start(
        node: &Node,
        addr: &str,
        context: Option<String>,
    ) -> Result<NameClient, NameError> {
        let root: NameContextRef = node.lookup(addr, ROOT_NAME).await?;
        let lease = root.renew().await?;
        let shared = Arc::new(Shared {
            node: node.clone(),
            addr: addr.to_owned(),
            context,
            root: RwLock::new(root),
            lease_ms: AtomicU64::new(lease.lease_ms),
            generation: AtomicU64::new(0),
            reconnecting: tokio::sync::Mutex::new(()),
            registrations: Mutex::new(Vec::new()),
            data: Mutex::new(HashMap::new()),
        });
        let renewal = CancellationToken::new();
        tokio::spawn(renew_loop(Arc::clone(&shared), renewal.clone()));
        Ok(NameClient { shared, renewal })
    }

    /// The node this client calls from.
    pub fn node(&self) -> &Node {
        &self.shared.node
    }

    /// The node's own context, if it registered one.
    pub fn context(&self) -> Option<&str> {
        self.shared.context.as_deref()
    }

    /// `name` inside the node's own context (or at the root without one).
    pub fn own_path(&self, name: &str) -> String {
        name::join(self.shared.context.as_deref().unwrap_or(""), name)
    }

    /// The root context of the name server.
    pub fn root(&self) -> NameContextRef {
        self.shared.root.read().clone()
    }

    /// Lease time granted by the name server.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.shared.lease_ms.load(Ordering::Relaxed))
    }

    /// Resolves `path` into a typed reference.
    ///
    /// # Errors
    /// [`NameError::NotFound`] naming the first missing component;
    /// [`NameError::WrongClass`] / [`NameError::VersionMismatch`] when the
    /// object bound there is of another interface or another version of it
    /// (caught here, before any call); transport errors.
    pub async fn resolve<R: RemoteRef>(&self, path: &str) -> Result<R, NameError> {
        let cap = self.resolve_capability(path).await?;
        Ok(self.shared.node.resolve::<R>(cap)?)
    }

    /// The capability bound under `path` (an object or a context).
    ///
    /// # Errors
    /// As [`NameClient::resolve`], without the class checks.
    pub async fn resolve_capability(&self, path: &str) -> Result<Capability, NameError> {
        let p = path.to_owned();
        self.shared
            .call(Retry::Read, move |root| {
                let p = p.clone();
                async move { root.resolve(p).await }
            })
            .await
    }

    /// The entries of the context at `path` (`""`: the root).
    ///
    /// # Errors
    /// [`NameError::NotFound`], [`NameError::NotAContext`], transport errors.
    pub async fn list(&self, path: &str) -> Result<Vec<crate::api::Entry>, NameError> {
        let p = path.to_owned();
        self.shared
            .call(Retry::Read, move |root| {
                let p = p.clone();
                async move { root.list(p).await }
            })
            .await
    }

    /// Binds `r` (exported from this node if local) under `path`; kept while
    /// this client renews, made again after a name server restart.
    ///
    /// # Errors
    /// [`NameError::AlreadyBound`], [`NameError::NotFound`] for a missing
    /// context on the way, [`NameError::InvalidName`], transport errors.
    pub async fn bind<R: RemoteRef + Serialize>(
        &self,
        path: &str,
        r: &R,
    ) -> Result<Capability, NameError> {
        let cap = self.pinned_capability(r)?;
        self.bind_capability(path, cap.clone(), false).await?;
        Ok(cap)
    }

    /// Binds `r` under `path`, replacing an object bound there.
    ///
    /// # Errors
    /// As [`NameClient::bind`], except that an object already bound is replaced.
    pub async fn rebind<R: RemoteRef + Serialize>(
        &self,
        path: &str,
        r: &R,
    ) -> Result<Capability, NameError> {
        let cap = self.pinned_capability(r)?;
        self.bind_capability(path, cap.clone(), true).await?;
        Ok(cap)
    }

    /// The capability of `r`, pinned if it is exported from this node: an
    /// object bound in the name server is never collected by the distributed
    /// GC, whoever holds it.
    fn pinned_capability<R: RemoteRef + Serialize>(&self, r: &R) -> Result<Capability, NameError> {
        let node = &self.shared.node;
        let cap = node.capability_of(r)?;
        if cap.home.node == node.id() {
            node.pin(&cap.object);
        }
        Ok(cap)
    }

    /// Binds a capability of any class under `path` (replacing an object
    /// bound there if `replace`).
    ///
    /// # Errors
    /// As [`NameClient::bind`].
    pub async fn bind_capability(
        &self,
        path: &str,
        object: Capability,
        replace: bool,
    ) -> Result<(), NameError> {
        let (p, o) = (path.to_owned(), object.clone());
        self.shared
            .call(Retry::Write, move |root| {
                let (p, o) = (p.clone(), o.clone());
                async move {
                    if replace {
                        root.rebind(p, o).await
                    } else {
                        root.bind(p, o).await
                    }
                }
            })
            .await?;
        self.shared.remember(Registration::Object {
            path: path.to_owned(),
            object,
        });
        Ok(())
    }

    /// Removes what is bound under `path` (an object, a class, an empty context).
    ///
    /// # Errors
    /// [`NameError::NotFound`], [`NameError::NotEmpty`], transport errors.
    pub async fn unbind(&self, path: &str) -> Result<(), NameError> {
        let p = path.to_owned();
        self.shared
            .call(Retry::Write, move |root| {
                let p = p.clone();
                async move { root.unbind(p).await }
            })
            .await?;
        self.shared.forget(path);
        Ok(())
    }

    /// Creates the context `path`, owned by this node.
    ///
    /// # Errors
    /// [`NameError::AlreadyBound`], [`NameError::NotFound`], transport errors.
    pub async fn create_context(&self, path: &str) -> Result<NameContextRef, NameError> {
        let p = path.to_owned();
        let ctx = self
            .shared
            .call(Retry::Write, move |root| {
                let p = p.clone();
                async move { root.create_context(p).await }
            })
            .await?;
        self.shared.remember(Registration::Context(path.to_owned()));
        Ok(ctx)
    }

    /// Removes the empty context `path`.
    ///
    /// # Errors
    /// [`NameError::NotEmpty`], [`NameError::NotAContext`], transport errors.
    pub async fn destroy_context(&self, path: &str) -> Result<(), NameError> {
        let p = path.to_owned();
        self.shared
            .call(Retry::Write, move |root| {
                let p = p.clone();
                async move { root.destroy_context(p).await }
            })
            .await?;
        self.shared.forget(path);
        Ok(())
    }

    /// Offers class `R` from this node: registers `make` as its factory and
    /// the class under `context` (usually [`NameClient::context`]).
    ///
    /// # Errors
    /// [`NameError::Rpc`] with [`RpcError::Unreachable`] when this node does
    /// not listen (nobody could ask it for instances); naming errors.
    pub async fn offer_class<R, F>(&self, context: &str, make: F) -> Result<(), NameError>
    where
        R: RemoteRef + Serialize,
        F: Fn() -> R + Send + Sync + 'static,
    {
        self.offer_fallible_class(context, move || Ok(make())).await
    }

    /// [`NameClient::offer_class`] with a factory that can fail (see
    /// [`Node::register_fallible_factory`]).
    ///
    /// # Errors
    /// As [`NameClient::offer_class`].
    pub async fn offer_fallible_class<R, F>(&self, context: &str, make: F) -> Result<(), NameError>
    where
        R: RemoteRef + Serialize,
        F: Fn() -> Result<R, RpcError> + Send + Sync + 'static,
    {
        let offer = self.shared.node.com_handle();
        if offer.addr.is_none() {
            return Err(NameError::Rpc(RpcError::Unreachable {
                peer: format!("{:?}", offer.node),
                reason: "a node must listen to offer classes".into(),
            }));
        }
        self.shared.node.register_fallible_factory(make);
        let path = name::join(context, R::CLASS.name);
        let (p, o) = (path.clone(), offer.clone());
        self.shared
            .call(Retry::Write, move |root| {
                let (p, o) = (p.clone(), o.clone());
                async move { root.register_class(p, o).await }
            })
            .await?;
        self.shared.remember(Registration::Class { path, offer });
        Ok(())
    }

    /// The nodes offering the class named `class`, anywhere in the tree.
    ///
    /// # Errors
    /// [`NameError::InvalidName`], transport errors.
    pub async fn find_class(&self, class: &str) -> Result<Vec<ComHandle>, NameError> {
        let c = class.to_owned();
        self.shared
            .call(Retry::Read, move |root| {
                let c = c.clone();
                async move { root.find_class(c).await }
            })
            .await
    }

    /// Class-based creation: asks a node offering class `R` for a new
    /// instance, trying each offering node in turn.
    ///
    /// # Errors
    /// [`NameError::ClassNotOffered`] when no node offers it; the last
    /// node's error when none could make one.
    pub async fn create<R: RemoteRef>(&self) -> Result<R, NameError> {
        let class = R::CLASS.name;
        let mut last = NameError::ClassNotOffered {
            class: class.to_owned(),
        };
        for offer in self.find_class(class).await? {
            let Some(addr) = offer.addr else { continue };
            match self.shared.node.create::<R>(&addr).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, class, "class-based creation failed");
                    last = e.into();
                }
            }
        }
        Err(last)
    }

    /// Records that `owner` (usually this node, [`Node::com_handle`]) keeps
    /// the data `ids`, in this node's own context (the root without one).
    /// An id recorded elsewhere moves here. Sent in batches of
    /// [`MAX_DATA_IDS_PER_CALL`]; remembered, and recorded again when the
    /// name server lost this node, until [`NameClient::remove_data`] or
    /// [`NameClient::close`].
    ///
    /// # Errors
    /// [`NameError::NotFound`] when the node's context is gone; transport
    /// errors. On an error every id stays remembered, so that the next
    /// replay (after the name server lost this node) records it.
    pub async fn add_data(&self, ids: Vec<DataId>, owner: ComHandle) -> Result<(), NameError> {
        self.shared.add_data(&ids, &owner).await
    }

    /// Forgets `id` and removes its entry if it names this node as keeping
    /// the data (an entry another node has taken over stays); tells whether
    /// an entry was removed.
    ///
    /// # Errors
    /// Transport errors (the id is forgotten all the same: it is not
    /// recorded again after a name server restart).
    pub async fn remove_data(&self, id: DataId) -> Result<bool, NameError> {
        self.shared.remove_data(id).await
    }

    /// Where `id` is recorded, anywhere in the tree.
    ///
    /// # Errors
    /// [`NameError::NoSuchData`] when no node recorded it; transport errors.
    pub async fn locate(&self, id: DataId) -> Result<DataLocation, NameError> {
        self.shared.locate(id).await
    }

    /// Lets node `to` record `ids` in place of their entries (before this
    /// node's data mover moves them there).
    ///
    /// # Errors
    /// [`NameError::PermissionDenied`] unless this node keeps or recorded
    /// them (or is an administrator); [`NameError::NoSuchData`]; transport
    /// errors.
    pub async fn hand_over(&self, ids: Vec<DataId>, to: NodeId) -> Result<(), NameError> {
        self.shared.hand_over(&ids, to).await
    }

    /// Every data entry in the context at `path` (`""`: the root) and below
    /// it, sorted by id.
    ///
    /// # Errors
    /// [`NameError::NotFound`], [`NameError::NotAContext`], transport errors.
    pub async fn list_data(&self, path: &str) -> Result<Vec<DataLocation>, NameError> {
        let p = path.to_owned();
        self.shared
            .call(Retry::Read, move |root| {
                let p = p.clone();
                async move { root.list_data(p).await }
            })
            .await
    }

    /// The location service as rpc-core's data manager uses it: `add`,
    /// `remove` and `locate` do what [`NameClient::add_data`],
    /// [`NameClient::remove_data`] and [`NameClient::locate`] do (a missing
    /// id is `Ok(None)`; naming errors other than transport failures become
    /// [`RpcError::Remote`]).
    ///
    /// The locator shares this client's connection and remembered entries,
    /// but the lease is renewed by this client: keep it (not only the
    /// locator) for as long as the entries must live.
    pub fn locator(&self) -> Arc<dyn Locator> {
        Arc::new(NameLocator {
            shared: Arc::clone(&self.shared),
        })
    }

    /// Stops renewing and removes everything this node bound, at once.
    ///
    /// # Errors
    /// Transport errors (the entries then go when the lease runs out).
    pub async fn close(self) -> Result<(), NameError> {
        self.renewal.cancel();
        self.shared.registrations.lock().clear();
        self.shared.data.lock().clear();
        let root = self.root();
        root.release().await?;
        Ok(())
    }
}

impl Drop for NameClient {
    fn drop(&mut self) {
        self.renewal.cancel();
    }
}

/// Whether a failed call may be sent again after reconnecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Reads are sent again after any transport failure.
    Read,
    /// Changes are sent again only when they certainly did not run.
    Write,
}

impl Shared {
    fn current_root(&self) -> (NameContextRef, u64) {
        let root = self.root.read().clone();
        (root, self.generation.load(Ordering::SeqCst))
    }

    fn renewal_period(&self) -> Duration {
        let lease = Duration::from_millis(self.lease_ms.load(Ordering::Relaxed));
        (lease / RENEWALS_PER_LEASE).max(Duration::from_millis(1))
    }

    /// Calls `f` on the root; after a transport failure, reconnects (which
    /// registers everything again if the name server lost it) and retries once.
    async fn call<T, F, Fut>(&self, retry: Retry, f: F) -> Result<T, NameError>
    where
        F: Fn(NameContextRef) -> Fut,
        Fut: Future<Output = Result<T, NameError>>,
    {
        let (root, generation) = self.current_root();
        match f(root).await {
            Err(e) if retryable(&e, retry) => {
                tracing::debug!(error = %e, "name server call failed; reconnecting");
                self.reconnect(generation).await?;
                f(self.current_root().0).await
            }
            other => other,
        }
    }

    /// Looks the root up again and renews there; makes every registration
    /// again if the name server does not know this node. Does nothing if
    /// another caller reconnected since `generation`.
    async fn reconnect(&self, generation: u64) -> Result<(), NameError> {
        let _one = self.reconnecting.lock().await;
        if self.generation.load(Ordering::SeqCst) != generation {
            return Ok(());
        }
        let root: NameContextRef = self.node.lookup(&self.addr, ROOT_NAME).await?;
        let lease = root.with_timeout(self.renewal_period()).renew().await?;
        *self.root.write() = root.clone();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.on_lease(&root, lease).await;
        tracing::info!(addr = %self.addr, "reconnected to the name server");
        Ok(())
    }

    /// Records the lease time; registers again when the name server lost us.
    async fn on_lease(&self, root: &NameContextRef, lease: Lease) {
        self.lease_ms.store(lease.lease_ms, Ordering::Relaxed);
        if !lease.known {
            self.replay(root).await;
        }
    }

    /// Makes every remembered registration again, then records the data
    /// entries again (into the contexts the registrations made).
    async fn replay(&self, root: &NameContextRef) {
        self.replay_registrations(root).await;
        self.replay_data(root).await;
    }

    async fn replay_registrations(&self, root: &NameContextRef) {
        let all: Vec<Registration> = self.registrations.lock().clone();
        if all.is_empty() {
            return;
        }
        let mut made = 0usize;
        for r in &all {
            let result = match r.clone() {
                // The name server knows nothing of this node, so a context
                // bound under that name belongs to another node: say so.
                Registration::Context(p) => root.create_context(p).await.map(drop),
                Registration::Object { path, object } => root.rebind(path, object).await,
                Registration::Class { path, offer } => root.register_class(path, offer).await,
            };
            match result {
                Ok(()) => made += 1,
                Err(e) => tracing::warn!(path = r.path(), error = %e, "could not register again"),
            }
        }
        tracing::info!(made, of = all.len(), "registrations made again");
    }

    async fn replay_data(&self, root: &NameContextRef) {
        let mut by_owner: HashMap<ComHandle, Vec<DataId>> = HashMap::new();
        for (id, owner) in self.data.lock().iter() {
            by_owner.entry(owner.clone()).or_default().push(*id);
        }
        if by_owner.is_empty() {
            return;
        }
        let path = self.data_path();
        let (mut made, mut of) = (0usize, 0usize);
        for (owner, ids) in by_owner {
            for batch in ids.chunks(MAX_DATA_IDS_PER_CALL) {
                of += batch.len();
                match root
                    .add_data(path.clone(), batch.to_vec(), owner.clone())
                    .await
                {
                    Ok(()) => made += batch.len(),
                    Err(e) => {
                        tracing::warn!(error = %e, ids = batch.len(), "could not record data again")
                    }
                }
            }
        }
        tracing::info!(made, of, "data entries recorded again");
    }

    /// The context this node records its data in: its own, or the root.
    fn data_path(&self) -> String {
        self.context.clone().unwrap_or_default()
    }

    /// See [`NameClient::add_data`].
    async fn add_data(&self, ids: &[DataId], owner: &ComHandle) -> Result<(), NameError> {
        let path = self.data_path();
        // Remembered first: if a call fails because the name server is
        // gone, the replay after it comes back records these too.
        {
            let mut data = self.data.lock();
            for id in ids {
                data.insert(*id, owner.clone());
            }
        }
        for batch in ids.chunks(MAX_DATA_IDS_PER_CALL) {
            let (p, b, o) = (path.clone(), batch.to_vec(), owner.clone());
            self.call(Retry::Write, move |root| {
                let (p, b, o) = (p.clone(), b.clone(), o.clone());
                async move { root.add_data(p, b, o).await }
            })
            .await?;
        }
        Ok(())
    }

    /// See [`NameClient::remove_data`].
    async fn remove_data(&self, id: DataId) -> Result<bool, NameError> {
        // Forgotten first: a replay that starts from now on leaves it out,
        // even if the call below fails.
        self.data.lock().remove(&id);
        self.call(Retry::Write, move |root| async move {
            root.remove_data(id).await
        })
        .await
    }

    /// See [`NameClient::hand_over`].
    async fn hand_over(&self, ids: &[DataId], to: NodeId) -> Result<(), NameError> {
        for batch in ids.chunks(MAX_DATA_IDS_PER_CALL) {
            let b = batch.to_vec();
            self.call(Retry::Write, move |root| {
                let b = b.clone();
                async move { root.hand_over(b, to).await }
            })
            .await?;
        }
        Ok(())
    }

    /// See [`NameClient::locate`].
    async fn locate(&self, id: DataId) -> Result<DataLocation, NameError> {
        self.call(
            Retry::Read,
            move |root| async move { root.locate(id).await },
        )
        .await
    }

    fn remember(&self, r: Registration) {
        let mut regs = self.registrations.lock();
        // A rebind replaces the remembered binding.
        regs.retain(|old| old.path() != r.path());
        regs.push(r);
    }

    /// Forgets `path` and everything below it.
    fn forget(&self, path: &str) {
        let below = format!("{path}/");
        self.registrations
            .lock()
            .retain(|r| r.path() != path && !r.path().starts_with(&below));
    }
}

/// The [`Locator`] of a [`NameClient`]: holds its shared state, not the
/// client, since [`NameClient::close`] consumes the client.
#[derive(Debug)]
struct NameLocator {
    /// Connection, lease time and remembered entries of the client.
    shared: Arc<Shared>,
}

impl Locator for NameLocator {
    fn add(&self, ids: Vec<DataId>, owner: ComHandle) -> BoxFuture<'_, Result<(), RpcError>> {
        Box::pin(async move {
            self.shared
                .add_data(&ids, &owner)
                .await
                .map_err(location_error)
        })
    }

    fn remove(&self, id: DataId) -> BoxFuture<'_, Result<(), RpcError>> {
        Box::pin(async move {
            self.shared
                .remove_data(id)
                .await
                .map(drop)
                .map_err(location_error)
        })
    }

    fn hand_over(&self, ids: Vec<DataId>, to: NodeId) -> BoxFuture<'_, Result<(), RpcError>> {
        Box::pin(async move {
            self.shared
                .hand_over(&ids, to)
                .await
                .map_err(location_error)
        })
    }

    fn handed_over(
        &self,
        id: DataId,
    ) -> BoxFuture<'_, Result<Option<(ComHandle, Option<NodeId>)>, RpcError>> {
        Box::pin(async move {
            match self.shared.locate(id).await {
                Ok(found) => Ok(Some((found.owner, found.handover))),
                Err(NameError::NoSuchData { .. }) => Ok(None),
                Err(e) => Err(location_error(e)),
            }
        })
    }

    fn locate(&self, id: DataId) -> BoxFuture<'_, Result<Option<ComHandle>, RpcError>> {
        Box::pin(async move {
            match self.shared.locate(id).await {
                Ok(found) => Ok(Some(found.owner)),
                Err(NameError::NoSuchData { .. }) => Ok(None),
                Err(e) => Err(location_error(e)),
            }
        })
    }
}

/// A naming error as the data manager sees it: transport failures stay what
/// they are (so that it can react to them), the rest is a remote failure of
/// the location service.
fn location_error(e: NameError) -> RpcError {
    match e {
        NameError::Rpc(e) => e,
        other => RpcError::Remote {
            message: format!("location service: {other}"),
        },
    }
}

fn retryable(e: &NameError, retry: Retry) -> bool {
    match retry {
        Retry::Read => e.is_transport(),
        Retry::Write => e.is_not_sent(),
    }
}

/// Renews the lease every period; on failure reconnects with bounded
/// exponential backoff, registering again when the name server lost us.
async fn renew_loop(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let period = shared.renewal_period();
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        let (root, generation) = shared.current_root();
        let bounded = root.with_timeout(period);
        let renewed = tokio::select! {
            () = stop.cancelled() => return,
            r = bounded.renew() => r,
        };
        match renewed {
            Ok(lease) => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = shared.on_lease(&root, lease) => {}
                }
                continue;
            }
            Err(e) => tracing::warn!(error = %e, "lease renewal failed; reconnecting"),
        }
        let mut backoff = RECONNECT_BACKOFF_MIN;
        loop {
            let r = tokio::select! {
                () = stop.cancelled() => return,
                r = shared.reconnect(generation) => r,
            };
            match r {
                Ok(()) => break,
                Err(e) => tracing::debug!(error = %e, ?backoff, "reconnection failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2)
                .min(RECONNECT_BACKOFF_MAX)
                .min(shared.renewal_period());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_errors_keep_transport_failures_for_the_data_manager() {
        assert_eq!(
            location_error(NameError::Rpc(RpcError::Cancelled)),
            RpcError::Cancelled
        );
        let e = location_error(NameError::NotFound {
            component: "dbserver".into(),
            context: String::new(),
        });
        assert_eq!(
            e,
            RpcError::Remote {
                message: "location service: `dbserver` not found in this context".into()
            }
        );
    }
}
