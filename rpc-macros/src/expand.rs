//! Generated items. Generated code names everything through absolute paths
//! (`::rpc_core::__private::...`, `::core::...`), never the user's imports.

mod dispatcher;
mod proxy;
mod reference;
mod register;

use crate::model::RemoteTrait;
use proc_macro2::TokenStream;
use quote::quote;

/// Everything `#[remote]` emits for one trait.
pub(crate) fn expand(t: &RemoteTrait<'_>) -> TokenStream {
    let user_trait = user_trait(t);
    let dyn_trait = proxy::dyn_trait(t);
    let client = proxy::client_proxy(t);
    let server = dispatcher::server_proxy(t);
    let reference = reference::reference(t);
    let register = register::register(t);
    quote! {
        #user_trait
        #dyn_trait
        #client
        #server
        #reference
        #register
    }
}

// The user's trait
//     pub trait Calc { async fn add(&self, a: i64) -> Result<i64, E>; }
// becomes
//     pub trait Calc: Send + Sync + 'static {
//         fn add(&self, a: i64) -> impl Future<Output = Result<i64, E>> + Send;
//     }
// so that impls may use `async fn` while the futures are known to be Send.
fn user_trait(t: &RemoteTrait<'_>) -> TokenStream {
    let item = t.item;
    let attrs = &item.attrs;
    let vis = t.vis;
    let ident = t.ident;
    let methods = t.methods.iter().map(|m| {
        let attrs = &m.attrs;
        let sig = m.signature_tokens();
        quote! {
            #(#attrs)*
            #sig;
        }
    });
    quote! {
        #(#attrs)*
        #vis trait #ident: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#methods)*
        }
    }
}
