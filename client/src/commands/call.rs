//! `call PATH METHOD [ARG...]`: invokes any method of any object, its
//! arguments written as JSON (a bare word is a string) and converted to the
//! CBOR its skeleton decodes; prints the result as JSON. A reference in the
//! result prints as `cap:<hex>`, which `call` takes in place of PATH or as an
//! argument.

use crate::ClientError;
use crate::cli::CallArgs;
use crate::context::Context;
use crate::dynamic::{CAP_PREFIX, arg_to_cbor, cbor_to_json, parse_capability};
use crate::output::Output;

/// Calls the method.
///
/// # Errors
/// Nothing bound at PATH; an unknown method, a wrong number or type of
/// arguments (the object's node refuses them); the method's own error
/// ([`ClientError::Remote`], with the error as JSON); transport errors.
pub async fn run(args: CallArgs, ctx: &Context) -> Result<Output, ClientError> {
    let cap = match args.path.strip_prefix(CAP_PREFIX) {
        Some(hex) => parse_capability(hex)?,
        None => {
            ctx.names()
                .resolve_capability(args.path.trim_matches('/'))
                .await?
        }
    };
    let values = args
        .args
        .iter()
        .map(|a| arg_to_cbor(a))
        .collect::<Result<Vec<_>, _>>()?;
    match ctx.node().call_dynamic(cap, &args.method, &values).await? {
        Ok(result) => Ok(Output::Called {
            method: args.method,
            result: cbor_to_json(&result),
        }),
        Err(error) => Err(ClientError::Remote {
            method: args.method,
            error: cbor_to_json(&error).to_string(),
        }),
    }
}
