//! The reference type: a local object or a proxy, serialized as a capability.

use crate::model::RemoteTrait;
use crate::naming;
use proc_macro2::TokenStream;
use quote::quote;

// pub struct CalcRef { repr: __CalcRepr }
// enum __CalcRepr { Local(Arc<dyn __CalcDyn>), Remote(CalcClientProxy) }
// impl Calc for CalcRef (calls the object directly, or through the proxy)
// impl Serialize (exports a local object) / Deserialize (resolves a capability)
// impl RemoteRef
pub(crate) fn reference(t: &RemoteTrait<'_>) -> TokenStream {
    let ident = t.ident;
    let vis = t.vis;
    let reference = naming::reference(ident);
    let repr = naming::repr(ident);
    let proxy = naming::client_proxy(ident);
    let server = naming::server_proxy(ident);
    let dyn_ident = naming::dyn_trait(ident);
    let class = naming::class_const(ident);
    let doc = format!(
        "A reference to a [`{ident}`], local or remote; it crosses the wire as a capability."
    );
    let p = quote! { ::rpc_core::__private };
    let methods = t.methods.iter().map(|m| {
        let name = m.ident;
        let dyn_name = naming::dyn_method(name);
        let helper = naming::call_helper(name);
        let names: Vec<_> = m.args.iter().map(|(n, _)| n).collect();
        let sig = m.signature_tokens();
        quote! {
            #sig {
                async move {
                    match &self.repr {
                        #repr::Local(__o) => #dyn_ident::#dyn_name(&**__o, #(#names),*).await,
                        #repr::Remote(__p) => __p.#helper(#(#names),*).await,
                    }
                }
            }
        }
    });
    quote! {
        #[doc(hidden)]
        #[derive(Clone)]
        enum #repr {
            Local(#p::Arc<dyn #dyn_ident>),
            Remote(#proxy),
        }

        #[doc = #doc]
        #[derive(Clone)]
        #vis struct #reference {
            repr: #repr,
        }

        impl #reference {
            /// A reference to a local object; it is exported when first sent.
            pub fn new<__T: #ident>(obj: __T) -> Self {
                Self::from_arc(#p::Arc::new(obj))
            }

            /// A reference to a shared local object; the same `Arc` is always
            /// exported under the same capability.
            pub fn from_arc<__T: #ident>(obj: #p::Arc<__T>) -> Self {
                #reference { repr: #repr::Local(obj) }
            }

            /// The same reference, with another deadline for remote calls.
            pub fn with_timeout(&self, timeout: #p::Duration) -> Self {
                match &self.repr {
                    #repr::Local(_) => ::core::clone::Clone::clone(self),
                    #repr::Remote(__p) => #reference { repr: #repr::Remote(__p.with_timeout(timeout)) },
                }
            }

            /// The capability, if the object lives on another node.
            pub fn capability(&self) -> ::core::option::Option<&::rpc_core::Capability> {
                match &self.repr {
                    #repr::Local(_) => ::core::option::Option::None,
                    #repr::Remote(__p) => ::core::option::Option::Some(__p.handle().capability()),
                }
            }

            /// True if the object lives on this node.
            pub fn is_local(&self) -> bool {
                ::core::matches!(self.repr, #repr::Local(_))
            }

            /// The client proxy, if the object lives on another node.
            pub fn client_proxy(&self) -> ::core::option::Option<&#proxy> {
                match &self.repr {
                    #repr::Local(_) => ::core::option::Option::None,
                    #repr::Remote(__p) => ::core::option::Option::Some(__p),
                }
            }
        }

        impl ::core::fmt::Debug for #reference {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match &self.repr {
                    #repr::Local(__o) => ::core::write!(
                        f, "{}(local {:p})", ::core::stringify!(#reference), #p::Arc::as_ptr(__o) as *const ()
                    ),
                    #repr::Remote(__p) => ::core::write!(
                        f, "{}({:?})", ::core::stringify!(#reference), __p.handle().capability()
                    ),
                }
            }
        }

        impl #ident for #reference {
            #(#methods)*
        }

        impl #p::serde::Serialize for #reference {
            fn serialize<__S: #p::serde::Serializer>(
                &self,
                __s: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                match &self.repr {
                    #repr::Local(__o) => {
                        let __obj = ::core::clone::Clone::clone(__o);
                        #p::serialize_local(__s, #p::object_key(__o), &#class, move || {
                            let __server: #p::Arc<dyn #p::ServerProxy> =
                                #p::Arc::new(#server { obj: ::core::clone::Clone::clone(&__obj) });
                            let __local: ::std::boxed::Box<dyn #p::Any + ::core::marker::Send + ::core::marker::Sync> =
                                ::std::boxed::Box::new(__obj);
                            (__server, __local)
                        })
                    }
                    #repr::Remote(__p) => #p::serialize_remote(__s, __p.handle()),
                }
            }
        }

        impl<'de> #p::serde::Deserialize<'de> for #reference {
            fn deserialize<__D: #p::serde::Deserializer<'de>>(
                __d: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                #p::deserialize_ref::<__D, #reference>(__d)
            }
        }

        impl #p::RemoteRef for #reference {
            const CLASS: &'static #p::ClassInfo = &#class;

            fn from_remote(handle: #p::RemoteHandle) -> Self {
                #reference { repr: #repr::Remote(#proxy { handle }) }
            }

            fn from_local_any(
                local: &(dyn #p::Any + ::core::marker::Send + ::core::marker::Sync),
            ) -> ::core::option::Option<Self> {
                local
                    .downcast_ref::<#p::Arc<dyn #dyn_ident>>()
                    .map(|__o| #reference { repr: #repr::Local(::core::clone::Clone::clone(__o)) })
            }

            fn remote_handle(&self) -> ::core::option::Option<&#p::RemoteHandle> {
                match &self.repr {
                    #repr::Local(_) => ::core::option::Option::None,
                    #repr::Remote(__p) => ::core::option::Option::Some(__p.handle()),
                }
            }
        }
    }
}
