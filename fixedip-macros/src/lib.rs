//! TODO: `#[fixed_egress]`.
use proc_macro::TokenStream;

#[proc_macro_attribute]
pub fn fixed_egress(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
