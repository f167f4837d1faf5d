//! `describe PATH`: the class of the object bound at PATH, as its trait was
//! written: doc comment, and each method's arguments, result, error and
//! doc comment. Asked of the object's own node, which knows its classes.

use crate::ClientError;
use crate::cli::DescribeArgs;
use crate::context::Context;
use crate::output::Output;

/// Describes the object's class.
///
/// # Errors
/// Nothing (or a context) bound at PATH; a node that does not listen or
/// does not know the class (another version); transport errors.
pub async fn run(args: DescribeArgs, ctx: &Context) -> Result<Output, ClientError> {
    let path = args.path.trim_matches('/').to_owned();
    let cap = ctx.names().resolve_capability(&path).await?;
    let class = ctx.node().describe(&cap).await?.ok_or_else(|| {
        ClientError::Input(format!(
            "the node of `{path}` does not know the class of that object (version {:016x})",
            cap.version.0
        ))
    })?;
    Ok(Output::Described { path, class })
}

/// The class name of the object bound at `path`: from the classes linked
/// into this program if it knows them, else from the object's node; `None`
/// if neither can say.
pub(crate) async fn class_name(ctx: &Context, path: &str) -> Option<String> {
    let cap = ctx.names().resolve_capability(path).await.ok()?;
    if let Some(c) = rpc_core::class_registry().get(cap.class, cap.version) {
        return Some(c.name.to_owned());
    }
    let described = ctx.node().describe(&cap).await.ok().flatten()?;
    Some(described.name)
}
