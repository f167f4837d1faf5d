//! The `#[remote]` attribute. Users reach it through `rpc_core::remote`.
//!
//! Stages, one module each, each importing only those before it: `naming`
//! (generated identifiers) and `args` (attribute arguments, the
//! `#[idempotent]` marker) -> `validate` (every unsupported shape, with a
//! span on the user's tokens) -> `model` (the trait as data, and the method
//! signature every generated impl shares) -> `expand` (generated items).

use proc_macro::TokenStream;

mod args;
mod expand;
mod model;
mod naming;
mod validate;

/// Turns a trait of `async fn` methods into a remote interface.
///
/// For `#[remote] pub trait Calc { ... }` it generates:
/// - the trait itself, with `Send + Sync + 'static` added and each `async fn`
///   turned into `fn ... -> impl Future<Output = ...> + Send` (implement it
///   with plain `async fn`);
/// - `CalcRef`: a reference to a local or remote `Calc`; implements `Calc`,
///   `Clone`, `Debug`, and serializes as a capability;
/// - `CalcClientProxy`: the stub that sends calls, also implementing `Calc`;
/// - `CalcServerProxy`: the skeleton that decodes calls for a local object;
/// - the class registration (class id from the name, version from the method
///   signatures).
///
/// Every method takes `&self`, owned serde arguments, and returns
/// `Result<T, E>` where `E: From<rpc_core::RpcError> + serde`.
/// `#[remote(name = "db.Cell")]` sets the wire name of the class (default: the trait name).
///
/// An argument or result written `Vec<u8>`, `Box<[u8]>`, `bytes::Bytes` or
/// `Bytes` travels as one CBOR byte string made in the value's own buffer,
/// not as serde's array of integers (a type alias is not seen).
///
/// A method marked `#[idempotent]` is retried by the client proxy, within its
/// deadline, when the request was not sent or the connection broke after
/// sending; other methods are never retried behind the caller's back.
#[proc_macro_attribute]
pub fn remote(attr: TokenStream, item: TokenStream) -> TokenStream {
    let original: proc_macro2::TokenStream = item.clone().into();
    let out = match run(attr.into(), item.into()) {
        Ok(ts) => ts,
        Err(err) => {
            // Emit the error and the trait as written, so that the user's other
            // code keeps resolving and they see one error, not twenty. Our own
            // method marker is removed: rustc does not know it.
            let e = err.to_compile_error();
            let fallback = match syn::parse2::<syn::ItemTrait>(original.clone()) {
                Ok(mut t) => {
                    for ti in &mut t.items {
                        if let syn::TraitItem::Fn(f) = ti {
                            f.attrs.retain(|a| !args::is_idempotent_attr(a));
                        }
                    }
                    quote::ToTokens::into_token_stream(t)
                }
                Err(_) => original,
            };
            quote::quote! { #fallback #e }
        }
    };
    if std::env::var_os("RPC_MACROS_DEBUG").is_some() {
        eprintln!("{out}");
    }
    out.into()
}

fn run(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> syn::Result<proc_macro2::TokenStream> {
    let args: args::RemoteArgs = syn::parse2(attr)?;
    let item: syn::ItemTrait = syn::parse2(item)?;
    validate::check(&item)?;
    let model = model::RemoteTrait::new(&item, &args);
    Ok(expand::expand(&model))
}
