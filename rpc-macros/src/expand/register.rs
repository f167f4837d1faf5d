//! The class description and its link-time registration.

use crate::model::RemoteTrait;
use crate::naming;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

// const __CALC_CLASS: ClassInfo = ClassInfo::new("Calc", "add(i64) -> Result<i64, E>;", &["add"])
//     .with_doc(&ClassDoc { doc: "...", methods: &[MethodDoc { name: "add", ... }] });
// inventory::submit! { ClassEntry(&__CALC_CLASS) }
pub(crate) fn register(t: &RemoteTrait<'_>) -> TokenStream {
    let class = naming::class_const(t.ident);
    let name = &t.class_name;
    let sig = t.signature();
    let methods = t.methods.iter().map(|m| m.ident.to_string());
    let doc = doc_text(&t.item.attrs.iter().collect::<Vec<_>>());
    let method_docs = t.methods.iter().map(|m| {
        let name = m.ident.to_string();
        let doc = doc_text(&m.attrs);
        let args = m.args.iter().map(|(n, ty)| {
            let (n, ty) = (n.to_string(), type_text(ty));
            quote! { (#n, #ty) }
        });
        let (ok, err) = (type_text(m.ok), type_text(m.err));
        quote! {
            ::rpc_core::__private::MethodDoc {
                name: #name,
                doc: #doc,
                args: &[#(#args),*],
                ok: #ok,
                err: #err,
            }
        }
    });
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #class: ::rpc_core::__private::ClassInfo =
            ::rpc_core::__private::ClassInfo::new(#name, #sig, &[#(#methods),*])
                .with_doc(&::rpc_core::__private::ClassDoc {
                    doc: #doc,
                    methods: &[#(#method_docs),*],
                });

        ::rpc_core::__private::inventory::submit! {
            ::rpc_core::__private::ClassEntry(&#class)
        }
    }
}

/// The doc comment among `attrs`, its lines trimmed and joined.
fn doc_text(attrs: &[&syn::Attribute]) -> String {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// A type as a person writes it: `Vec<(u64, Vec<Value>)>`, not the token
/// stream's `Vec < (u64 , Vec < Value >) >`.
fn type_text(ty: &syn::Type) -> String {
    let spaced = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(spaced.len());
    let chars: Vec<char> = spaced.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == ' ' {
            let before = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
            let after = chars.get(i + 1).copied();
            let glue_after = matches!(after, Some(',' | '>' | ')' | ']' | '<' | ':'));
            let glue_before = matches!(before, Some('<' | '(' | '[' | '&' | ':'));
            if glue_after || glue_before {
                continue;
            }
        }
        out.push(*c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_as_written() {
        let ty: syn::Type =
            syn::parse_str("Result<Vec<(u64, Vec<Value>)>, crate::DbError>").unwrap();
        assert_eq!(
            type_text(&ty),
            "Result<Vec<(u64, Vec<Value>)>, crate::DbError>"
        );
        let ty: syn::Type = syn::parse_str("Option<&'static [u8]>").unwrap();
        assert_eq!(type_text(&ty), "Option<&'static [u8]>");
    }
}
