//! Arguments of the attribute: `#[remote]` or `#[remote(name = "...")]`,
//! and the `#[idempotent]` marker a method may carry.

use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Token};

mod kw {
    syn::custom_keyword!(name);
}

/// Parsed attribute arguments.
pub(crate) struct RemoteArgs {
    /// Wire name of the class, if given.
    pub(crate) name: Option<LitStr>,
}

impl Parse for RemoteArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut name = None;
        while !input.is_empty() {
            let la = input.lookahead1();
            if la.peek(kw::name) {
                let k: kw::name = input.parse()?;
                // At the end of the arguments syn would point at the whole
                // attribute; point at what is there instead.
                let Some(eq) = input.parse::<Option<Token![=]>>()? else {
                    return Err(syn::Error::new(k.span, "expected `name = \"...\"`"));
                };
                if input.is_empty() {
                    return Err(syn::Error::new(
                        eq.spans[0],
                        "expected a string literal after `=`: `name = \"...\"`",
                    ));
                }
                let lit: LitStr = input.parse()?;
                if name.is_some() {
                    return Err(syn::Error::new(k.span, "`name` given twice"));
                }
                if lit.value().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "the class name must not be empty",
                    ));
                }
                name = Some(lit);
            } else {
                return Err(syn::Error::new(
                    input.span(),
                    "unknown argument; the only one is `name = \"...\"`",
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(RemoteArgs { name })
    }
}

/// True for the `#[idempotent]` marker attribute of a method.
pub(crate) fn is_idempotent_attr(a: &syn::Attribute) -> bool {
    a.path().is_ident("idempotent")
}
