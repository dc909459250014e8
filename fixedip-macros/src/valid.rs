//! Stage 2: what the arguments mean and what the attribute is on. Every rule is fixedip-core's
//! (the CLI reads records with the same code, so the two can never disagree); this stage only
//! points each broken rule at the tokens that broke it.

use fixedip_core::requirements::{
    AllocationId, AzCount, EgressRequirements, Location, RequirementError, StackName,
};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Ident, Item};

use crate::args::Args;
use crate::errors::Errors;

const TARGET: &str =
    "#[fixed_egress] goes on the function that starts the Lambda runtime, usually `main`";

/// The requirements the arguments declare, or `None` when a rule is broken (each one reported).
pub fn requirements(args: &Args, errors: &mut Errors) -> Option<EgressRequirements> {
    let before = errors.len();
    let mut requirements = EgressRequirements::default();

    let mut azs_known = true;
    if let Some(azs) = &args.azs {
        match AzCount::parse(&azs.text) {
            Ok(count) => requirements.azs = count,
            Err(error) => {
                errors.spanned(&azs.value, error);
                azs_known = false;
            }
        }
    }
    if let Some(stack) = &args.stack {
        match StackName::parse(&stack.value()) {
            Ok(name) => requirements.stack = name,
            Err(error) => errors.spanned(stack, error),
        }
    }

    // The source of each id kept, so that a rule about the i-th id can point at it.
    let mut id_tokens = Vec::new();
    let mut ips_all_valid = true;
    if let Some(ips) = &args.ips {
        ips_all_valid = ips.complete;
        for written in &ips.ids {
            match AllocationId::parse(&written.value()) {
                Ok(id) => {
                    requirements.ips.push(id);
                    id_tokens.push(written);
                }
                Err(error) => {
                    errors.spanned(written, error);
                    ips_all_valid = false;
                }
            }
        }
    }

    for violation in requirements.violations() {
        // The count of addresses is compared only when both sides are what the user wrote:
        // every element of the list a valid id, and a valid `azs`.
        let about_count = matches!(violation.error, RequirementError::TooManyIps { .. });
        if about_count && !(ips_all_valid && azs_known) {
            continue;
        }
        let at = match violation.at {
            Location::IpsElement(index) => id_tokens.get(index).map(|id| id.to_token_stream()),
            Location::Argument("azs") => args.azs.as_ref().map(|azs| azs.value.to_token_stream()),
            Location::Argument("stack") => args.stack.as_ref().map(ToTokens::to_token_stream),
            Location::Argument("ips") => args.ips.as_ref().map(|ips| ips.list.to_token_stream()),
            // A rule about an argument this macro does not parse yet: at the attribute, still shown.
            Location::Argument(_) | Location::EndpointsElement(_) | Location::EgressElement(_) => {
                None
            }
        };
        match at {
            Some(tokens) => errors.spanned(tokens, violation.error),
            None => errors.push(syn::Error::new(Span::call_site(), violation.error)),
        }
    }

    (errors.len() == before).then_some(requirements)
}

/// The name of the annotated function, or an error pointing at whatever else it is on.
pub fn target(item: &TokenStream, errors: &mut Errors) -> Option<Ident> {
    let item = match syn::parse2::<Item>(item.clone()) {
        Ok(item) => item,
        // Not an item syn knows (a function without a body in an `extern` block, say).
        Err(_) => {
            errors.spanned(item, TARGET);
            return None;
        }
    };
    let what = match item {
        Item::Fn(function) => {
            // A method would need the record inside its `impl`, where no anonymous item can go.
            if let Some(receiver) = function.sig.receiver() {
                errors.spanned(receiver, format!("{TARGET}, not a method"));
                return None;
            }
            return Some(function.sig.ident);
        }
        Item::Struct(item) => keyword_and_name(item.struct_token, item.ident),
        Item::Enum(item) => keyword_and_name(item.enum_token, item.ident),
        Item::Union(item) => keyword_and_name(item.union_token, item.ident),
        Item::Trait(item) => keyword_and_name(item.trait_token, item.ident),
        Item::Impl(item) => keyword_and_name(item.impl_token, item.self_ty),
        Item::Mod(item) => keyword_and_name(item.mod_token, item.ident),
        Item::Const(item) => keyword_and_name(item.const_token, item.ident),
        Item::Static(item) => keyword_and_name(item.static_token, item.ident),
        Item::Type(item) => keyword_and_name(item.type_token, item.ident),
        other => other.into_token_stream(),
    };
    errors.spanned(what, TARGET);
    None
}

/// `struct Config`, `impl Handler`: enough to say what the item is, without its whole body.
fn keyword_and_name(keyword: impl ToTokens, name: impl ToTokens) -> TokenStream {
    let mut tokens = keyword.into_token_stream();
    name.to_tokens(&mut tokens);
    tokens
}
