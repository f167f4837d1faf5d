//! Names of generated items.

use proc_macro2::Ident;
use quote::format_ident;

/// `{Trait}Ref`.
pub(crate) fn reference(t: &Ident) -> Ident {
    format_ident!("{}Ref", t)
}

/// `{Trait}ClientProxy`.
pub(crate) fn client_proxy(t: &Ident) -> Ident {
    format_ident!("{}ClientProxy", t)
}

/// `{Trait}ServerProxy`.
pub(crate) fn server_proxy(t: &Ident) -> Ident {
    format_ident!("{}ServerProxy", t)
}

/// The hidden object-safe twin of the trait.
pub(crate) fn dyn_trait(t: &Ident) -> Ident {
    format_ident!("__{}Dyn", t)
}

/// The hidden representation enum of the reference type.
pub(crate) fn repr(t: &Ident) -> Ident {
    format_ident!("__{}Repr", t)
}

/// The class description constant.
pub(crate) fn class_const(t: &Ident) -> Ident {
    format_ident!("__{}_CLASS", t.to_string().to_uppercase())
}

/// The stub helper that performs one remote call.
pub(crate) fn call_helper(m: &Ident) -> Ident {
    format_ident!("__rpc_{}", m)
}

/// The method of the hidden object-safe twin; prefixed so that calls of the
/// user's method never find two candidates.
pub(crate) fn dyn_method(m: &Ident) -> Ident {
    format_ident!("__dyn_{}", m)
}

/// Inherent methods of the generated reference and proxy types; a trait method
/// with one of these names would be shadowed by them when called.
pub(crate) const RESERVED_METHODS: &[&str] = &[
    "new",
    "from_arc",
    "with_timeout",
    "capability",
    "is_local",
    "handle",
    "client_proxy",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let t = format_ident!("Cell");
        assert_eq!(reference(&t).to_string(), "CellRef");
        assert_eq!(client_proxy(&t).to_string(), "CellClientProxy");
        assert_eq!(server_proxy(&t).to_string(), "CellServerProxy");
        assert_eq!(class_const(&t).to_string(), "__CELL_CLASS");
    }
}
