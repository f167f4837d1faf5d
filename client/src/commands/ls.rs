//! `ls [PATH]`: the entries of a naming context, with their kinds.

use crate::ClientError;
use crate::cli::LsArgs;
use crate::context::Context;
use crate::output::Output;

/// Lists the context at `args.path` (the root when empty).
///
/// # Errors
/// [`ClientError::Name`]: not found, not a context, transport.
pub async fn run(args: LsArgs, ctx: &Context) -> Result<Output, ClientError> {
    let path = args.path.trim_matches('/').to_owned();
    let entries = ctx.names().list(&path).await?;
    Ok(Output::Entries { path, entries })
}
