//! Stage 3: the code. The function is given back exactly as written, and beside it, in an
//! anonymous `const`, a `#[used]` static holding the record in its own link section. Nothing calls
//! or reads the static, so the function's run-time path is untouched; `cargo fixedip` reads the
//! section back from the built binary.

use fixedip_requirements::record::{encode_requirements, HEADER, SECTION_ELF, SECTION_MACHO};
use fixedip_requirements::requirements::EgressRequirements;
use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::Ident;

use crate::errors::Errors;
use crate::{args, valid};

pub fn fixed_egress(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = args::parse(args, &mut errors);
    let function = valid::target(&item, &mut errors);
    let requirements = valid::requirements(&args, &mut errors);
    match (errors.finish(), function, requirements) {
        (Ok(()), Some(function), Some(requirements)) => {
            let record = record(&function, &requirements);
            quote!(#item #record)
        }
        // The item is kept as it was, so that the errors above are the only ones the user sees
        // (tokio-macros does the same).
        (Err(error), ..) => {
            let error = error.to_compile_error();
            quote!(#item #error)
        }
        (Ok(()), ..) => unreachable!("a stage returned nothing without reporting an error"),
    }
}

/// The record of `fixedip_requirements::record`, byte for byte. What only the compiler knows (package,
/// module path, file and line) is spliced in by built-in macros; the rest was validated above.
///
/// Only `::core` is named: the user's crate depends on this macro, not on fixedip-requirements.
fn record(function: &Ident, requirements: &EgressRequirements) -> TokenStream {
    let function = function.unraw().to_string();
    let requirements = encode_requirements(requirements);
    quote! {
        const _: () = {
            const RECORD: &::core::primitive::str = ::core::concat!(
                #HEADER,
                "package=", ::core::env!("CARGO_PKG_NAME"),
                "\nfunction=", ::core::module_path!(), "::", #function,
                "\nsource=", ::core::file!(), ":", ::core::line!(), "\n",
                #requirements
            );
            #[used]
            #[cfg_attr(target_vendor = "apple", unsafe(link_section = #SECTION_MACHO))]
            #[cfg_attr(not(target_vendor = "apple"), unsafe(link_section = #SECTION_ELF))]
            static FIXEDIP_RECORD: [::core::primitive::u8; RECORD.len()] = {
                // A `&str` cannot be placed in a section by value; its bytes, copied at compile
                // time, can.
                let text = RECORD.as_bytes();
                let mut bytes = [0u8; RECORD.len()];
                let mut i = 0;
                while i < text.len() {
                    bytes[i] = text[i];
                    i += 1;
                }
                bytes
            };
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ITEM: &str =
        "# [tokio :: main] pub async fn main () -> Result < () , Error > { run () . await }";

    fn expand(args: &str) -> String {
        fixed_egress(args.parse().unwrap(), ITEM.parse().unwrap()).to_string()
    }

    #[test]
    fn the_function_comes_back_unchanged_and_first() {
        let expanded = expand("azs = 3");
        let (function, rest) = expanded.split_at(ITEM.len());
        assert_eq!(function, ITEM);
        assert!(rest.trim_start().starts_with("const _ : () ="), "{rest}");
        assert!(
            rest.contains("\"stack=default\\nazs=3\\nips=\\n\\n\""),
            "{rest}"
        );
    }

    #[test]
    fn on_error_the_function_is_kept_and_no_record_is_made() {
        let expanded = expand("azs = 7, stak = \"x\"");
        assert!(expanded.starts_with(ITEM), "{expanded}");
        assert_eq!(expanded.matches("compile_error").count(), 2, "{expanded}");
        assert!(!expanded.contains("link_section"), "{expanded}");
    }
}
