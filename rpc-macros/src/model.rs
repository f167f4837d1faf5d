//! The validated trait as data, borrowing the user's syn nodes so that
//! generated code keeps their spans.

use crate::args::{RemoteArgs, is_idempotent_attr};
use crate::validate::result_types;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{FnArg, Ident, ItemTrait, Pat, ReturnType, TraitItem, Type, Visibility};

/// One remote trait.
pub(crate) struct RemoteTrait<'a> {
    /// The user's trait, as written.
    pub(crate) item: &'a ItemTrait,
    pub(crate) vis: &'a Visibility,
    pub(crate) ident: &'a Ident,
    /// Wire name of the class.
    pub(crate) class_name: String,
    pub(crate) methods: Vec<RemoteMethod<'a>>,
}

/// One method.
pub(crate) struct RemoteMethod<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) args: Vec<(Ident, &'a Type)>,
    pub(crate) ok: &'a Type,
    pub(crate) err: &'a Type,
    /// The user's attributes, minus `#[idempotent]`.
    pub(crate) attrs: Vec<&'a syn::Attribute>,
    /// Marked `#[idempotent]`: the stub may retry it after a transport failure.
    pub(crate) idempotent: bool,
}

impl<'a> RemoteTrait<'a> {
    /// Builds the model; `item` must have passed [`crate::validate::check`].
    pub(crate) fn new(item: &'a ItemTrait, args: &RemoteArgs) -> Self {
        let methods = item
            .items
            .iter()
            .filter_map(|ti| match ti {
                TraitItem::Fn(f) => Some(f),
                _ => None,
            })
            .filter_map(|f| {
                let args = f
                    .sig
                    .inputs
                    .iter()
                    .skip(1)
                    .filter_map(|a| match a {
                        FnArg::Typed(pt) => match &*pt.pat {
                            Pat::Ident(pi) => Some((pi.ident.clone(), &*pt.ty)),
                            _ => None,
                        },
                        FnArg::Receiver(_) => None,
                    })
                    .collect();
                let ReturnType::Type(_, ret) = &f.sig.output else {
                    return None;
                };
                let (ok, err) = result_types(ret)?;
                Some(RemoteMethod {
                    ident: &f.sig.ident,
                    args,
                    ok,
                    err,
                    attrs: f.attrs.iter().filter(|a| !is_idempotent_attr(a)).collect(),
                    idempotent: f.attrs.iter().any(is_idempotent_attr),
                })
            })
            .collect();
        RemoteTrait {
            item,
            vis: &item.vis,
            ident: &item.ident,
            class_name: args
                .name
                .as_ref()
                .map(|l| l.value())
                .unwrap_or_else(|| item.ident.to_string()),
            methods,
        }
    }

    /// Canonical text of all signatures; its digest is the class version.
    pub(crate) fn signature(&self) -> String {
        let mut s = String::new();
        for m in &self.methods {
            s.push_str(&m.ident.to_string());
            s.push('(');
            // Argument names are not part of the wire contract; their types are.
            for (i, (_, ty)) in m.args.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&ty.to_token_stream().to_string());
            }
            s.push_str(&format!(
                ") -> Result<{}, {}>;",
                m.ok.to_token_stream(),
                m.err.to_token_stream()
            ));
        }
        s
    }
}

impl RemoteMethod<'_> {
    /// The method as the generated trait declares it, and as the reference
    /// and the client proxy implement it (the body is theirs):
    /// `fn name(&self, args) -> impl Future<Output = Result<Ok, Err>> + Send`.
    pub(crate) fn signature_tokens(&self) -> TokenStream {
        let name = self.ident;
        let args = self.args.iter().map(|(n, ty)| quote! { #n: #ty });
        let (ok, err) = (self.ok, self.err);
        quote! {
            fn #name(&self, #(#args),*)
                -> impl ::core::future::Future<Output = ::core::result::Result<#ok, #err>>
                    + ::core::marker::Send
        }
    }
}

/// True for the byte buffer types the runtime sends as one CBOR byte string
/// (`rpc_core::__private::ByteValue`): `Vec<u8>`, `Box<[u8]>` and
/// `bytes::Bytes` (also written `Bytes`). Matched on how the type is
/// written, since the macro sees no more; an alias is not seen and travels
/// as serde writes it.
pub(crate) fn is_byte_buffer(ty: &Type) -> bool {
    let Type::Path(tp) = ty else {
        return false;
    };
    if tp.qself.is_some() {
        return false;
    }
    let segs: Vec<_> = tp.path.segments.iter().collect();
    let Some(last) = segs.last() else {
        return false;
    };
    let only_arg = || match &last.arguments {
        syn::PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first() {
            Some(syn::GenericArgument::Type(t)) => Some(t),
            _ => None,
        },
        _ => None,
    };
    let is_u8 = |t: &Type| matches!(t, Type::Path(p) if p.qself.is_none() && p.path.is_ident("u8"));
    match last.ident.to_string().as_str() {
        "Vec" => only_arg().is_some_and(is_u8),
        "Box" => only_arg().is_some_and(|t| matches!(t, Type::Slice(s) if is_u8(&s.elem))),
        "Bytes" => {
            last.arguments.is_empty()
                && (segs.len() == 1 || (segs.len() == 2 && segs[0].ident == "bytes"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_byte_buffer;

    #[test]
    fn byte_buffers_are_seen_as_written() {
        let yes = [
            "Vec<u8>",
            "std::vec::Vec<u8>",
            "Box<[u8]>",
            "bytes::Bytes",
            "Bytes",
        ];
        let no = [
            "Vec<u16>",
            "Vec<Vec<u8>>",
            "Option<Vec<u8>>",
            "Box<u8>",
            "Box<[u16]>",
            "serde_bytes::ByteBuf",
            "my::Bytes",
            "Bytes<u8>",
            "[u8; 4]",
        ];
        for t in yes {
            let ty: syn::Type = syn::parse_str(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert!(is_byte_buffer(&ty), "{t}");
        }
        for t in no {
            let ty: syn::Type = syn::parse_str(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert!(!is_byte_buffer(&ty), "{t}");
        }
    }
}
