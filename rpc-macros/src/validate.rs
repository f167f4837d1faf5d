//! Semantic checks on the user's trait. Every shape the runtime cannot handle
//! is rejected here, with a span on the offending tokens and a message saying
//! what to write instead. All errors are collected before returning.

use crate::naming::RESERVED_METHODS;
use quote::ToTokens;
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

    /// Like [`Errors::push`], but underlines all of `tokens`, not only their
    /// first token (on stable, `Spanned::span` cannot join spans).
    fn push_spanned(&mut self, tokens: impl ToTokens, msg: impl std::fmt::Display) {
        let e = syn::Error::new_spanned(tokens, msg);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
}

/// Where a type appears; selects the wording of its errors.
#[derive(Clone, Copy)]
enum Position {
    Argument,
    Result,
}

/// Checks the whole trait, returning every problem found at once.
pub(crate) fn check(item: &ItemTrait) -> syn::Result<()> {
    let mut errs = Errors(None);
    if !item.generics.params.is_empty() {
        errs.push_spanned(
            &item.generics,
            "remote traits cannot be generic; use concrete types",
        );
    }
    if let Some(w) = &item.generics.where_clause {
        errs.push_spanned(w, "remote traits cannot have a where clause");
    }
    if !item.supertraits.is_empty() {
        errs.push_spanned(
            &item.supertraits,
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
            other => errs.push_spanned(
                other,
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
    for a in f
        .attrs
        .iter()
        .filter(|a| crate::args::is_idempotent_attr(a))
    {
        if !matches!(a.meta, syn::Meta::Path(_)) {
            errs.push_spanned(a, "`#[idempotent]` takes no arguments");
        }
    }
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
    if let Some(c) = &sig.constness {
        // Also covers the missing `async`: `const async fn` is not Rust.
        errs.push(c.span, "remote methods cannot be `const`: write `async fn`");
    } else if sig.asyncness.is_none() {
        errs.push(
            sig.fn_token.span,
            "remote methods must be `async fn`: write `async fn`",
        );
    }
    if let Some(u) = &sig.unsafety {
        errs.push(u.span, "remote methods cannot be `unsafe`");
    }
    if let Some(a) = &sig.abi {
        errs.push_spanned(a, "remote methods cannot have an ABI");
    }
    if let Some(v) = &sig.variadic {
        errs.push_spanned(v, "remote methods cannot be variadic");
    }
    if !sig.generics.params.is_empty() {
        errs.push_spanned(
            &sig.generics,
            "remote methods cannot be generic or take lifetimes; use concrete owned types",
        );
    }
    if let Some(w) = &sig.generics.where_clause {
        errs.push_spanned(w, "remote methods cannot have a where clause");
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
                errs.push_spanned(
                    r,
                    "remote methods take `&self` (not `self`, `&mut self` or a typed receiver)",
                );
            } else if let Some((_, Some(lt))) = &r.reference {
                errs.push_spanned(lt, "remove the lifetime: write `&self`");
            }
        }
        Some(other) => errs.push_spanned(other, "remote methods must take `&self` first"),
        None => errs.push(sig.ident.span(), "remote methods must take `&self`"),
    }
    for arg in inputs {
        match arg {
            FnArg::Typed(pt) => {
                match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {}
                    other => errs.push_spanned(
                        other,
                        "remote method arguments must be plain names (`x: T`), not patterns",
                    ),
                }
                check_type(&pt.ty, Position::Argument, true, errs);
            }
            FnArg::Receiver(r) => errs.push_spanned(r, "`self` must be the first argument"),
        }
    }
    check_return(&sig.output, sig.ident.span(), errs);
}

/// Rejects types that cannot cross the wire. References, `impl Trait` and
/// function pointers are rejected wherever they appear (`Vec<&str>` included:
/// arguments and results must be `DeserializeOwned`); trait objects only at the
/// top level, since `Box<dyn Trait>` can be serde (for example with `typetag`).
fn check_type(ty: &Type, pos: Position, top: bool, errs: &mut Errors) {
    match ty {
        Type::Reference(r) => errs.push_spanned(
            r,
            match pos {
                Position::Argument => {
                    "remote method arguments must be owned (for example `String` instead of `&str`, `Vec<T>` instead of `&[T]`)"
                }
                Position::Result => {
                    "remote method results must be owned (for example `String` instead of `&str`, `Vec<T>` instead of `&[T]`)"
                }
            },
        ),
        Type::ImplTrait(i) => errs.push_spanned(
            i,
            match pos {
                Position::Argument => {
                    "remote method arguments cannot be `impl Trait`; use a concrete type or a `#[remote]` reference type"
                }
                Position::Result => {
                    "remote method results cannot be `impl Trait`; use a concrete type or a `#[remote]` reference type"
                }
            },
        ),
        Type::BareFn(b) => errs.push_spanned(
            b,
            "functions cannot cross the wire; pass a `#[remote]` reference (a callback object) instead",
        ),
        Type::TraitObject(t) if top => errs.push_spanned(
            t,
            "trait objects cannot cross the wire; use a `#[remote]` reference type",
        ),
        Type::Paren(p) => check_type(&p.elem, pos, top, errs),
        Type::Group(g) => check_type(&g.elem, pos, top, errs),
        Type::Tuple(t) => {
            for elem in &t.elems {
                check_type(elem, pos, false, errs);
            }
        }
        Type::Array(a) => check_type(&a.elem, pos, false, errs),
        Type::Slice(s) => check_type(&s.elem, pos, false, errs),
        Type::Path(p) => {
            for seg in &p.path.segments {
                if let PathArguments::AngleBracketed(ab) = &seg.arguments {
                    for arg in &ab.args {
                        if let GenericArgument::Type(t) = arg {
                            check_type(t, pos, false, errs);
                        }
                    }
                }
            }
        }
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
                check_type(ok, Position::Result, true, errs);
                check_type(err, Position::Result, true, errs);
            }
            None => errs.push_spanned(ty, MSG),
        },
    }
}
