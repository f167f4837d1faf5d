//! `ls [-l] [PATH]`: the entries of a naming context, with their kinds, for
//! each class the nodes that offer it and, with `-l`, each object's class.

use crate::ClientError;
use crate::cli::LsArgs;
use crate::context::Context;
use crate::output::Output;
use nameserver::api::EntryKind;
use std::collections::BTreeMap;

/// Lists the context at `args.path` (the root when empty).
///
/// # Errors
/// [`ClientError::Name`]: not found, not a context, transport.
pub async fn run(args: LsArgs, ctx: &Context) -> Result<Output, ClientError> {
    let path = args.path.trim_matches('/').to_owned();
    let entries = ctx.names().list(&path).await?;
    let mut offers = BTreeMap::new();
    for e in entries.iter().filter(|e| e.kind == EntryKind::Class) {
        let by: Vec<String> = ctx
            .names()
            .find_class(&e.name)
            .await?
            .into_iter()
            .map(|h| h.addr.unwrap_or_else(|| format!("node {}", h.node.0)))
            .collect();
        offers.insert(e.name.clone(), by);
    }
    let mut classes = BTreeMap::new();
    if args.long {
        for e in entries.iter().filter(|e| e.kind == EntryKind::Object) {
            let full = if path.is_empty() {
                e.name.clone()
            } else {
                format!("{path}/{}", e.name)
            };
            if let Some(c) = crate::commands::describe::class_name(ctx, &full).await {
                classes.insert(e.name.clone(), c);
            }
        }
    }
    Ok(Output::Entries {
        path,
        entries,
        offers,
        classes,
    })
}
