//! `stats NODE`: the counts a running node reports about itself (exports,
//! leases, imports, connections with each peer, calls, transfers, bytes,
//! data items). NODE is a context in the name server (`dbserver`,
//! `archive`, `nameserver`): the node is the home of the objects bound in it.

use crate::ClientError;
use crate::cli::StatsArgs;
use crate::context::Context;
use crate::output::Output;
use nameserver::api::{EntryKind, NAMESERVER_CONTEXT};

/// Asks the node behind context NODE for its counts and its connections.
///
/// # Errors
/// NODE is not a context or binds no object; its node does not listen
/// (a client's); transport errors.
pub async fn run(args: StatsArgs, ctx: &Context) -> Result<Output, ClientError> {
    let path = args.node.trim_matches('/').to_owned();
    let (id, addr) = if path == NAMESERVER_CONTEXT {
        // The name server's own context: the node this client asks for names.
        let root = ctx.names().root();
        let cap = root
            .capability()
            .ok_or_else(|| ClientError::Input("the name server is this process".into()))?;
        (cap.home.node, ctx.nameserver().to_owned())
    } else {
        home_of(ctx, &path).await?
    };
    let stats = ctx.node().remote_stats(&addr).await?;
    let peers = ctx.node().remote_peer_stats(&addr).await?;
    Ok(Output::Stats {
        node: path,
        id,
        addr,
        stats,
        peers,
    })
}

/// The node id and address of the home of the objects bound in `path`.
async fn home_of(ctx: &Context, path: &str) -> Result<(rpc_core::NodeId, String), ClientError> {
    let entries = ctx.names().list(path).await?;
    let Some(object) = entries.iter().find(|e| e.kind == EntryKind::Object) else {
        return Err(ClientError::Input(format!(
            "`{path}` binds no object, so it names no node"
        )));
    };
    let cap = ctx
        .names()
        .resolve_capability(&format!("{path}/{}", object.name))
        .await?;
    let addr = cap.home.addr.clone().ok_or_else(|| {
        ClientError::Input(format!(
            "the node of `{path}` does not listen (a client's), so it cannot be asked"
        ))
    })?;
    Ok((cap.home.node, addr))
}
