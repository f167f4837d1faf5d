//! The server proxy (skeleton).

use crate::model::{RemoteTrait, is_byte_buffer};
use crate::naming;
use proc_macro2::TokenStream;
use quote::quote;

// pub struct CalcServerProxy { obj: Arc<dyn __CalcDyn> }
// impl ServerProxy for CalcServerProxy {
//     fn dispatch(self: Arc<Self>, call) -> BoxFuture<ResponseBody> {
//         match call.method() { "add" => { check count; decode each arg; call; reply } _ => NoSuchMethod }
//     }
// }
pub(crate) fn server_proxy(t: &RemoteTrait<'_>) -> TokenStream {
    let ident = t.ident;
    let vis = t.vis;
    let server = naming::server_proxy(ident);
    let dyn_ident = naming::dyn_trait(ident);
    let class = naming::class_const(ident);
    let doc = format!(
        "Server proxy (skeleton) for a local [`{ident}`]: decodes requests and calls the object."
    );
    let arms = t.methods.iter().map(|m| {
        let name = m.ident;
        let dyn_name = naming::dyn_method(name);
        let method_str = name.to_string();
        let count = m.args.len();
        let decode = m.args.iter().enumerate().map(|(i, (n, ty))| {
            let n_str = n.to_string();
            // Byte buffers are taken as they are; other values decoded, a
            // large one off the runtime thread.
            let take = if is_byte_buffer(ty) {
                quote! { arg_bytes::<#ty>(#i, #n_str) }
            } else {
                quote! { arg_owned::<#ty>(#i, #n_str).await }
            };
            quote! {
                let #n: #ty = match __call.#take {
                    ::core::result::Result::Ok(__v) => __v,
                    ::core::result::Result::Err(__e) => {
                        return ::rpc_core::__private::ResponseBody::System(__e);
                    }
                };
            }
        });
        let names = m.args.iter().map(|(n, _)| n);
        let reply = if is_byte_buffer(m.ok) {
            quote! { reply_bytes }
        } else {
            quote! { reply }
        };
        quote! {
            #method_str => {
                if let ::core::result::Result::Err(__e) = __call.expect_args(#count) {
                    return ::rpc_core::__private::ResponseBody::System(__e);
                }
                #(#decode)*
                let __r = #dyn_ident::#dyn_name(&*self.obj, #(#names),*).await;
                __call.#reply(__r)
            }
        }
    });
    quote! {
        #[doc = #doc]
        #vis struct #server {
            obj: ::rpc_core::__private::Arc<dyn #dyn_ident>,
        }

        impl ::core::fmt::Debug for #server {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(::core::stringify!(#server))
            }
        }

        impl #server {
            /// A skeleton for `obj`.
            pub fn new<__T: #ident>(obj: ::rpc_core::__private::Arc<__T>) -> Self {
                #server { obj }
            }
        }

        impl ::rpc_core::__private::ServerProxy for #server {
            fn class(&self) -> &'static ::rpc_core::__private::ClassInfo {
                &#class
            }

            fn dispatch(
                self: ::rpc_core::__private::Arc<Self>,
                __call: ::rpc_core::__private::IncomingCall,
            ) -> ::rpc_core::__private::BoxFuture<'static, ::rpc_core::__private::ResponseBody> {
                ::std::boxed::Box::pin(async move {
                    // Byte buffer arguments are taken out of the call.
                    #[allow(unused_mut)]
                    let mut __call = __call;
                    match __call.method() {
                        #(#arms)*
                        _ => ::rpc_core::__private::ResponseBody::System(__call.no_such_method()),
                    }
                })
            }
        }
    }
}
