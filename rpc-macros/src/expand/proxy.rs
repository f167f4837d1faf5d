//! The hidden object-safe twin of the trait and the client proxy (stub).

use crate::model::{RemoteTrait, is_byte_buffer};
use crate::naming;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

// trait __CalcDyn { fn add<'a>(&'a self, a: i64) -> BoxFuture<'a, Result<i64, E>>; }
// impl<T: Calc> __CalcDyn for T { ... Box::pin(Calc::add(self, a)) }
//
// It lets references and skeletons hold `Arc<dyn __CalcDyn>`: the user trait
// itself is not dyn-compatible because its methods return `impl Future`.
pub(crate) fn dyn_trait(t: &RemoteTrait<'_>) -> TokenStream {
    let ident = t.ident;
    let dyn_ident = naming::dyn_trait(ident);
    let decls = t.methods.iter().map(|m| {
        let name = naming::dyn_method(m.ident);
        let args = m.args.iter().map(|(n, ty)| quote! { #n: #ty });
        let ok = m.ok;
        let err = m.err;
        quote! {
            fn #name<'__rpc>(&'__rpc self, #(#args),*)
                -> ::rpc_core::__private::BoxFuture<'__rpc, ::core::result::Result<#ok, #err>>;
        }
    });
    let impls = t.methods.iter().map(|m| {
        let name = m.ident;
        let dyn_name = naming::dyn_method(name);
        let args = m.args.iter().map(|(n, ty)| quote! { #n: #ty });
        let names = m.args.iter().map(|(n, _)| n);
        let ok = m.ok;
        let err = m.err;
        quote! {
            fn #dyn_name<'__rpc>(&'__rpc self, #(#args),*)
                -> ::rpc_core::__private::BoxFuture<'__rpc, ::core::result::Result<#ok, #err>> {
                ::std::boxed::Box::pin(<__T as #ident>::#name(self, #(#names),*))
            }
        }
    });
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        trait #dyn_ident: ::core::marker::Send + ::core::marker::Sync + 'static {
            #(#decls)*
        }
        impl<__T: #ident> #dyn_ident for __T {
            #(#impls)*
        }
    }
}

// pub struct CalcClientProxy { handle: RemoteHandle }
// impl CalcClientProxy { async fn __rpc_add(&self, a: i64) -> Result<i64, E> { encode, call, decode } }
// impl Calc for CalcClientProxy { fn add(..) -> impl Future { self.__rpc_add(a) } }
pub(crate) fn client_proxy(t: &RemoteTrait<'_>) -> TokenStream {
    let ident = t.ident;
    let vis = t.vis;
    let proxy = naming::client_proxy(ident);
    let doc = format!(
        "Client proxy (stub) for a remote [`{ident}`]: each method sends a request to the object's home node."
    );
    let helpers = t.methods.iter().map(|m| {
        let name = m.ident;
        let helper = naming::call_helper(name);
        let args = m.args.iter().map(|(n, ty)| quote! { #n: #ty });
        let ok = m.ok;
        let err = m.err;
        let method_str = name.to_string();
        let encode = m.args.iter().map(|(n, ty)| {
            let what = format!("argument `{n}` of `{method_str}`");
            if is_byte_buffer(ty) {
                quote! { __h.encode_bytes(#n) }
            } else {
                quote! { __h.encode(&#n, #what)? }
            }
        });
        // Byte buffers are taken as they are; other results decoded, a large
        // one off the runtime thread.
        let decode_out = if is_byte_buffer(ok) {
            quote! { decode_out_bytes::<#ok>(__out, #method_str) }
        } else {
            quote! { decode_out_owned::<#ok>(__out, #method_str).await }
        };
        let err_what = format!("error of `{method_str}`");
        let call = if m.idempotent {
            quote! { call_idempotent }
        } else {
            quote! { call }
        };
        // The one conversion from RpcError, spanned at the user's error type so
        // that a missing `From<RpcError>` is reported there, once.
        let from = quote_spanned! {err.span()=>
            <#err as ::core::convert::From<::rpc_core::__private::RpcError>>::from
        };
        quote! {
            #[doc(hidden)]
            async fn #helper(&self, #(#args),*) -> ::core::result::Result<#ok, #err> {
                let __h = &self.handle;
                let __r: ::core::result::Result<
                    ::core::result::Result<#ok, #err>,
                    ::rpc_core::__private::RpcError,
                > = async {
                    let __args = ::std::vec![#(#encode),*];
                    ::core::result::Result::Ok(match __h.#call(#method_str, __args).await? {
                        ::rpc_core::__private::Reply::Out(__out) => {
                            ::core::result::Result::Ok(__h.#decode_out?)
                        }
                        ::rpc_core::__private::Reply::Application(__p) => {
                            ::core::result::Result::Err(__h.decode::<#err>(&__p, #err_what)?)
                        }
                    })
                }
                .await;
                match __r {
                    ::core::result::Result::Ok(__v) => __v,
                    ::core::result::Result::Err(__e) => ::core::result::Result::Err(#from(__e)),
                }
            }
        }
    });
    let trait_methods = t.methods.iter().map(|m| {
        let helper = naming::call_helper(m.ident);
        let names = m.args.iter().map(|(n, _)| n);
        let sig = m.signature_tokens();
        quote! {
            #sig {
                self.#helper(#(#names),*)
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #proxy {
            handle: ::rpc_core::__private::RemoteHandle,
        }

        impl #proxy {
            /// The handle this proxy sends calls through.
            pub fn handle(&self) -> &::rpc_core::__private::RemoteHandle {
                &self.handle
            }

            /// The same proxy, with another deadline for its calls.
            pub fn with_timeout(&self, timeout: ::rpc_core::__private::Duration) -> Self {
                #proxy { handle: self.handle.with_timeout(timeout) }
            }

            #(#helpers)*
        }

        impl #ident for #proxy {
            #(#trait_methods)*
        }
    }
}
