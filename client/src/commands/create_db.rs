//! `create-db NAME [--on NODE]`: a new database through class-based
//! creation: a server offering the class `db.Database` (one the name server
//! knows, or the one whose context is NODE) makes it and binds it as
//! `<its context>/NAME`, which `--db` then selects.

use crate::ClientError;
use crate::cli::CreateDbArgs;
use crate::context::Context;
use crate::output::Output;
use dbserver::api::{Database, DatabaseRef};
use rpc_core::RemoteRef;

/// Makes and names the database.
///
/// # Errors
/// No server offers the class (or NODE does not); the server refuses (its
/// limit of databases, a name in use, an invalid name).
pub async fn run(args: CreateDbArgs, ctx: &Context) -> Result<Output, ClientError> {
    let db: DatabaseRef = match &args.on {
        None => ctx.names().create::<DatabaseRef>().await?,
        Some(node) => {
            // NODE's database says which node it is; that node's offer makes it.
            let main: DatabaseRef = ctx.names().resolve(&format!("{node}/db")).await?;
            let home = main
                .capability()
                .map(|c| c.home.node)
                .ok_or_else(|| ClientError::Check(format!("{node}/db is not remote")))?;
            let offer = ctx
                .names()
                .find_class(DatabaseRef::CLASS.name)
                .await?
                .into_iter()
                .find(|h| h.node == home)
                .and_then(|h| h.addr)
                .ok_or_else(|| {
                    ClientError::Input(format!(
                        "{node} does not offer class {}",
                        DatabaseRef::CLASS.name
                    ))
                })?;
            ctx.node().create::<DatabaseRef>(&offer).await?
        }
    };
    let node = db
        .capability()
        .and_then(|c| c.home.addr.clone())
        .unwrap_or_default();
    let path = db.bind_as(args.name).await?;
    Ok(Output::DbCreated { path, node })
}
