//! The class description and its link-time registration.

use crate::model::RemoteTrait;
use crate::naming;
use proc_macro2::TokenStream;
use quote::quote;

// const __CALC_CLASS: ClassInfo = ClassInfo::new("Calc", "add(i64) -> Result<i64, E>;", &["add"]);
// inventory::submit! { ClassEntry(&__CALC_CLASS) }
pub(crate) fn register(t: &RemoteTrait<'_>) -> TokenStream {
    let class = naming::class_const(t.ident);
    let name = &t.class_name;
    let sig = t.signature();
    let methods = t.methods.iter().map(|m| m.ident.to_string());
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        const #class: ::rpc_core::__private::ClassInfo =
            ::rpc_core::__private::ClassInfo::new(#name, #sig, &[#(#methods),*]);

        ::rpc_core::__private::inventory::submit! {
            ::rpc_core::__private::ClassEntry(&#class)
        }
    }
}
