//! Semantic checks on the user's trait. Every shape the runtime cannot handle
//! is rejected here, with a span on the offending tokens and a message saying
//! what to write instead. All errors are collected before returning.

use crate::naming::RESERVED_METHODS;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemTrait, Pat, PathArguments, ReturnType, TraitItem, Type};

struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, span: proc_macro2::Span, msg: impl std::fmt::Display) {
        let e = syn::Error::new(span, msg);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
}

/// Checks the whole trait, returning every problem found at once.
pub(crate) fn check(item: &ItemTrait) -> syn::Result<()> {
    let mut errs = Errors(None);
    if !item.generics.params.is_empty() {
        errs.push(
            item.generics.span(),
            "remote traits cannot be generic; use concrete types",
        );
    }
    if let Some(w) = &item.generics.where_clause {
        errs.push(w.span(), "remote traits cannot have a where clause");
    }
    if !item.supertraits.is_empty() {
        errs.push(
            item.supertraits.span(),
            "remote traits cannot have supertraits; `Send + Sync + 'static` are added for you",
        );
    }
    if let Some(u) = &item.unsafety {
        errs.push(u.span, "remote traits cannot be unsafe");
    }
    if let Some(a) = &item.auto_token {
        errs.push(a.span, "remote traits cannot be auto traits");
    }
    for ti in &item.items {
        match ti {
            TraitItem::Fn(f) => check_method(f, &mut errs),
            other => errs.push(
                other.span(),
                "remote traits may only contain `async fn` methods; remove this item",
            ),
        }
    }
    match errs.0 {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn check_method(f: &syn::TraitItemFn, errs: &mut Errors) {
    let sig = &f.sig;
    let name = sig.ident.to_string();
    if RESERVED_METHODS.contains(&name.as_str())
        || name.starts_with("__rpc")
        || name.starts_with("__dyn")
    {
        errs.push(
            sig.ident.span(),
            format!(
                "method name `{name}` collides with a method of the generated reference type; rename it"
            ),
        );
    }
    if sig.asyncness.is_none() {
        errs.push(
            sig.fn_token.span,
            "remote methods must be `async fn`: write `async fn`",
        );
    }
    if let Some(c) = &sig.constness {
        errs.push(c.span, "remote methods cannot be `const`");
    }
    if let Some(u) = &sig.unsafety {
        errs.push(u.span, "remote methods cannot be `unsafe`");
    }
    if let Some(a) = &sig.abi {
        errs.push(a.span(), "remote methods cannot have an ABI");
    }
    if let Some(v) = &sig.variadic {
        errs.push(v.span(), "remote methods cannot be variadic");
    }
    if !sig.generics.params.is_empty() {
        errs.push(
            sig.generics.span(),
            "remote methods cannot be generic or take lifetimes; use concrete owned types",
        );
    }
    if let Some(w) = &sig.generics.where_clause {
        errs.push(w.span(), "remote methods cannot have a where clause");
    }
    if let Some(body) = &f.default {
        errs.push(
            body.span(),
            "remote methods cannot have a default body; implement it in the impl",
        );
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) => {
            let by_shared_ref =
                r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none();
            if !by_shared_ref {
                errs.push(
                    r.span(),
                    "remote methods take `&self` (not `self`, `&mut self` or a typed receiver)",
                );
            } else if let Some((_, Some(lt))) = &r.reference {
                errs.push(lt.span(), "remove the lifetime: write `&self`");
            }
        }
        Some(other) => errs.push(other.span(), "remote methods must take `&self` first"),
        None => errs.push(sig.ident.span(), "remote methods must take `&self`"),
    }
    for arg in inputs {
        match arg {
            FnArg::Typed(pt) => {
                match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {}
                    other => errs.push(
                        other.span(),
                        "remote method arguments must be plain names (`x: T`), not patterns",
                    ),
                }
                check_arg_type(&pt.ty, errs);
            }
            FnArg::Receiver(r) => errs.push(r.span(), "`self` must be the first argument"),
        }
    }
    check_return(&sig.output, sig.ident.span(), errs);
}

fn check_arg_type(ty: &Type, errs: &mut Errors) {
    match ty {
        Type::Reference(r) => errs.push(
            r.span(),
            "remote method arguments must be owned (for example `String` instead of `&str`, `Vec<T>` instead of `&[T]`)",
        ),
        Type::ImplTrait(i) => errs.push(
            i.span(),
            "remote method arguments cannot be `impl Trait`; use a concrete type or a `#[remote]` reference type",
        ),
        Type::BareFn(b) => errs.push(
            b.span(),
            "functions cannot cross the wire; pass a `#[remote]` reference (a callback object) instead",
        ),
        Type::TraitObject(t) => errs.push(
            t.span(),
            "trait objects cannot cross the wire; use a `#[remote]` reference type",
        ),
        _ => {}
    }
}

/// The `T` and `E` of a `Result<T, E>` return type, if it is one.
pub(crate) fn result_types(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(tp) = ty else { return None };
    if tp.qself.is_some() {
        return None;
    }
    let last = tp.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(ab) = &last.arguments else {
        return None;
    };
    let mut tys = ab.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let ok = tys.next()?;
    let err = tys.next()?;
    if tys.next().is_some() || ab.args.len() != 2 {
        return None;
    }
    Some((ok, err))
}

fn check_return(out: &ReturnType, name_span: proc_macro2::Span, errs: &mut Errors) {
    const MSG: &str = "remote methods must return `Result<T, E>` with both types written out, where `E: From<rpc_core::RpcError>` (transport failures arrive as `E`)";
    match out {
        ReturnType::Default => errs.push(name_span, MSG),
        ReturnType::Type(_, ty) => match result_types(ty) {
            Some((ok, err)) => {
                check_arg_type(ok, errs);
                check_arg_type(err, errs);
            }
            None => errs.push(ty.span(), MSG),
        },
    }
}
