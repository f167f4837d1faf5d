//! `data put|ls|get|mv|rm`: data kept by the servers' data managers under data
//! ids. A server's data manager is found in the name server as `NODE/data`;
//! the data of an id is found through the location service (the name
//! server's tree), unless `--on NODE` names the server.

use crate::ClientError;
use crate::cli::{DataCommand, DataGetArgs, DataLsArgs, DataMvArgs, DataPutArgs, DataRmArgs};
use crate::commands::files::{progress_bar, save_with_progress};
use crate::context::Context;
use crate::output::{DataRow, Output, Returned};
use rpc_core::data::DataInfo;
use rpc_core::data::{DataManager, DataManagerRef};
use rpc_core::{Blob, ComHandle, DataId};
use std::collections::BTreeMap;

/// Runs one `data` subcommand.
///
/// # Errors
/// What the subcommand fails with.
pub async fn run(command: DataCommand, ctx: &Context) -> Result<Output, ClientError> {
    match command {
        DataCommand::Put(a) => put(a, ctx).await,
        DataCommand::Ls(a) => ls(a, ctx).await,
        DataCommand::Get(a) => get(a, ctx).await,
        DataCommand::Mv(a) => mv(a, ctx).await,
        DataCommand::Rm(a) => rm(a, ctx).await,
    }
}

/// The data manager bound as `NODE/data`.
async fn manager_of(ctx: &Context, node: &str) -> Result<DataManagerRef, ClientError> {
    let dm: DataManagerRef = ctx.names().resolve(&format!("{node}/data")).await?;
    Ok(dm.with_timeout(ctx.timeout()))
}

/// The data manager of the node `owner` names (its bootstrap entry).
async fn manager_at(ctx: &Context, owner: &ComHandle) -> Result<DataManagerRef, ClientError> {
    let dm = rpc_core::data::manager_at(ctx.node(), owner).await?;
    Ok(dm.with_timeout(ctx.timeout()))
}

/// The data manager keeping `id` and the name to show for its node: the one
/// `on` names, or the one the location service knows.
async fn owner_of(
    ctx: &Context,
    id: DataId,
    on: Option<&str>,
) -> Result<(DataManagerRef, String), ClientError> {
    if let Some(node) = on {
        return Ok((manager_of(ctx, node).await?, node.to_owned()));
    }
    let loc = match ctx.names().locate(id).await {
        Ok(loc) => loc,
        // The same error whichever way the data was looked for.
        Err(nameserver::NameError::NoSuchData { id }) => {
            return Err(ClientError::Data(rpc_core::data::DataError::NoSuchData {
                id,
            }));
        }
        Err(e) => return Err(e.into()),
    };
    Ok((
        manager_at(ctx, &loc.owner).await?,
        node_label(&loc.context, &loc.owner),
    ))
}

/// How a node is named in the output: its context, else its address.
fn node_label(context: &str, owner: &ComHandle) -> String {
    if !context.is_empty() {
        return context.to_owned();
    }
    owner
        .addr
        .clone()
        .unwrap_or_else(|| format!("{:?}", owner.node))
}

/// The context of the database (`dbserver` for `dbserver/db`), the default
/// node of `data put`.
fn db_context(ctx: &Context) -> String {
    match ctx.db_path().rsplit_once('/') {
        Some((context, _)) => context.to_owned(),
        None => String::new(),
    }
}

async fn put(args: DataPutArgs, ctx: &Context) -> Result<Output, ClientError> {
    let DataPutArgs {
        file,
        mode,
        on,
        return_to,
    } = args;
    let mut blob = Blob::from_file(&file).map_err(|source| ClientError::File {
        path: file.clone(),
        source,
    })?;
    let node = on.unwrap_or_else(|| db_context(ctx));
    if node.is_empty() {
        return Err(ClientError::Input(
            "no server to store on: pass --on NODE".into(),
        ));
    }
    let dm = manager_of(ctx, &node).await?;
    let bar = progress_bar(blob.len());
    if let Some(b) = bar.clone() {
        blob = blob.with_progress(move |done, _| b.set_position(done));
    }
    let stored = dm.put(blob, mode).await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let r = stored?;
    let returned = match r.take_copy() {
        None => None,
        Some(copy) => Some(take_copy_back(copy, r.info(), return_to, &file).await?),
    };
    Ok(Output::DataPut {
        info: r.info().clone(),
        node,
        returned,
    })
}

/// Saves the copy a `*_return` mode sent back: to `to`, or else to a
/// temporary file that is compared with the file that was sent.
async fn take_copy_back(
    copy: Blob,
    info: &DataInfo,
    to: Option<std::path::PathBuf>,
    sent: &std::path::Path,
) -> Result<Returned, ClientError> {
    let bytes = copy.len();
    match to {
        Some(path) => {
            copy.save_to(&path).await?;
            Ok(Returned {
                bytes,
                path: Some(path.display().to_string()),
                identical: None,
            })
        }
        None => {
            // Compared chunk by chunk through a temporary file, so that a
            // large copy never sits in memory.
            let dir = tempfile::tempdir().map_err(|source| ClientError::Io {
                what: "creating a temporary directory",
                source,
            })?;
            let tmp = dir.path().join("copy");
            copy.save_to(&tmp).await?;
            let identical = same_file(&tmp, sent).await? && bytes == info.size;
            Ok(Returned {
                bytes,
                path: None,
                identical: Some(identical),
            })
        }
    }
}

/// True when both files hold the same bytes (compared in 1 MiB steps).
async fn same_file(a: &std::path::Path, b: &std::path::Path) -> Result<bool, ClientError> {
    let (a, b) = (a.to_owned(), b.to_owned());
    let r = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
        use std::io::Read;
        let (mut fa, mut fb) = (std::fs::File::open(&a)?, std::fs::File::open(&b)?);
        if fa.metadata()?.len() != fb.metadata()?.len() {
            return Ok(false);
        }
        let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        loop {
            let n = fa.read(&mut ba)?;
            if n == 0 {
                return Ok(true);
            }
            fb.read_exact(&mut bb[..n])?;
            if ba[..n] != bb[..n] {
                return Ok(false);
            }
        }
    })
    .await
    .map_err(|e| ClientError::Check(format!("comparing the copy failed: {e}")))?;
    r.map_err(|source| ClientError::Io {
        what: "comparing the copy sent back",
        source,
    })
}

async fn ls(args: DataLsArgs, ctx: &Context) -> Result<Output, ClientError> {
    if let Some(node) = args.node {
        let dm = manager_of(ctx, &node).await?;
        let rows = dm
            .list()
            .await?
            .into_iter()
            .map(|info| DataRow {
                id: info.id,
                info: Some(info),
                node: node.clone(),
            })
            .collect();
        return Ok(Output::DataList(rows));
    }
    // Everything registered, with each owner's own view of mode and size.
    let locations = ctx.names().list_data("").await?;
    let mut by_owner: BTreeMap<String, (ComHandle, Vec<DataId>)> = BTreeMap::new();
    for loc in locations {
        let label = node_label(&loc.context, &loc.owner);
        by_owner
            .entry(label)
            .or_insert_with(|| (loc.owner.clone(), Vec::new()))
            .1
            .push(loc.id);
    }
    let mut rows = Vec::new();
    for (label, (owner, ids)) in by_owner {
        let infos: BTreeMap<DataId, DataInfo> = match manager_at(ctx, &owner).await {
            Ok(dm) => match dm.list().await {
                Ok(list) => list.into_iter().map(|i| (i.id, i)).collect(),
                Err(e) => {
                    ctx.printer()
                        .notice(&format!("cannot list the data of {label}: {e}"));
                    BTreeMap::new()
                }
            },
            Err(e) => {
                ctx.printer()
                    .notice(&format!("cannot reach the data manager of {label}: {e}"));
                BTreeMap::new()
            }
        };
        for id in ids {
            rows.push(DataRow {
                id,
                info: infos.get(&id).cloned(),
                node: label.clone(),
            });
        }
    }
    Ok(Output::DataList(rows))
}

async fn get(args: DataGetArgs, ctx: &Context) -> Result<Output, ClientError> {
    let DataGetArgs { id, path, on } = args;
    let (dm, node) = owner_of(ctx, id, on.as_deref()).await?;
    let (info, blob) = dm.get(id).await?;
    let saved = save_with_progress(blob, &path).await;
    Ok(Output::DataGot {
        bytes: saved?,
        info,
        node,
        path: path.display().to_string(),
    })
}

async fn mv(args: DataMvArgs, ctx: &Context) -> Result<Output, ClientError> {
    let DataMvArgs { id, to } = args;
    let (from_dm, from) = owner_of(ctx, id, None).await?;
    let dest = manager_of(ctx, &to).await?;
    let moved = from_dm.move_to(id, dest).await?;
    Ok(Output::DataMoved {
        info: moved.info().clone(),
        from,
        to,
    })
}

async fn rm(args: DataRmArgs, ctx: &Context) -> Result<Output, ClientError> {
    let DataRmArgs { id, on } = args;
    let (dm, node) = owner_of(ctx, id, on.as_deref()).await?;
    let info = dm.remove(id).await?;
    Ok(Output::DataRemoved { info, node })
}
