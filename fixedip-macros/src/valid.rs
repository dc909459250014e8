//! Stage 2: what the arguments mean and what the attribute is on. Every rule is fixedip-requirements'
//! (the CLI reads records with the same code, so the two can never disagree); this stage only
//! points each broken rule at the tokens that broke it.

use fixedip_requirements::requirements::{
    parse_nats, AllocationId, AzCount, EgressRequirements, EgressRule, Endpoint, Location, NatMode,
    RequirementError, StackName,
};
use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Ident, Item, LitStr};

use crate::args::{Args, StringList};
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
    let ips;
    (requirements.ips, ips) = each(args.ips.as_ref(), AllocationId::parse, errors);
    if let Some(nat) = &args.nat {
        match NatMode::parse(&nat.value()) {
            Ok(mode) => requirements.nat = mode,
            Err(error) => errors.spanned(nat, error),
        }
    }
    let mut nats_known = true;
    if let Some(nats) = &args.nats {
        // The range of `nats` is 1 to `azs`: with a wrong `azs`, `nats` is only checked to be an
        // integer, and its range once `azs` is fixed.
        let azs = if azs_known {
            requirements.azs
        } else {
            AzCount::new(u64::from(AzCount::MAX)).expect("the largest count is valid")
        };
        match parse_nats(&nats.text, azs) {
            Ok(count) => requirements.nats = Some(count),
            Err(RequirementError::NatsOutOfRange { .. }) if !azs_known => nats_known = false,
            Err(error) => {
                errors.spanned(&nats.value, error);
                nats_known = false;
            }
        }
    }
    let endpoints;
    (requirements.endpoints, endpoints) = each(args.endpoints.as_ref(), Endpoint::parse, errors);
    let egress;
    (requirements.egress, egress) = each(args.egress.as_ref(), EgressRule::parse, errors);
    for (list, key) in [(&args.endpoints, "endpoints"), (&args.egress, "egress")] {
        // An empty list would mean the default while looking like "none at all" (for `egress`,
        // "let nothing out"): the user says which by leaving the argument out.
        if let Some(list) = list.as_ref().filter(|list| list.list.elems.is_empty()) {
            errors.spanned(&list.list, RequirementError::EmptyList { list: key });
        }
    }

    for violation in requirements.violations() {
        // A count is compared only when both sides are what the user wrote: every element of
        // the list a valid id, and a valid `azs` (and `nats`, the number of NATs).
        let compared = match violation.error {
            RequirementError::TooManyIps { .. } => ips.all_valid && azs_known && nats_known,
            RequirementError::NatsOutOfRange { .. } => azs_known,
            _ => true,
        };
        if !compared {
            continue;
        }
        let list = |list: &Option<StringList>| list.as_ref().map(|l| l.list.to_token_stream());
        let at = match violation.at {
            Location::IpsElement(index) => ips.token(index),
            Location::EndpointsElement(index) => endpoints.token(index),
            Location::EgressElement(index) => egress.token(index),
            Location::Argument("azs") => args.azs.as_ref().map(|azs| azs.value.to_token_stream()),
            Location::Argument("stack") => args.stack.as_ref().map(ToTokens::to_token_stream),
            Location::Argument("ips") => list(&args.ips),
            Location::Argument("nat") => args.nat.as_ref().map(ToTokens::to_token_stream),
            Location::Argument("nats") => args.nats.as_ref().map(|n| n.value.to_token_stream()),
            Location::Argument("endpoints") => list(&args.endpoints),
            Location::Argument("egress") => list(&args.egress),
            // A rule about an argument this macro does not parse: at the attribute, still shown.
            Location::Argument(_) => None,
        };
        match at {
            Some(tokens) => errors.spanned(tokens, violation.error),
            None => errors.push(syn::Error::new(Span::call_site(), violation.error)),
        }
    }

    (errors.len() == before).then_some(requirements)
}

/// The valid values of a list argument, and the strings they were read from: what `parse`
/// refuses is reported at its string.
fn each<'a, T>(
    list: Option<&'a StringList>,
    parse: impl Fn(&str) -> Result<T, RequirementError>,
    errors: &mut Errors,
) -> (Vec<T>, Written<'a>) {
    let mut values = Vec::new();
    let mut written = Written {
        strings: Vec::new(),
        all_valid: list.is_none_or(|list| list.complete),
    };
    for string in list.iter().flat_map(|list| &list.strings) {
        match parse(&string.value()) {
            Ok(value) => {
                values.push(value);
                written.strings.push(string);
            }
            Err(error) => {
                errors.spanned(string, error);
                written.all_valid = false;
            }
        }
    }
    (values, written)
}

/// The strings each valid value of a list was read from, so that a rule about the i-th value
/// can point at its source.
struct Written<'a> {
    strings: Vec<&'a LitStr>,
    /// Every element of the list is a valid value (or the list is not given).
    all_valid: bool,
}

impl Written<'_> {
    fn token(&self, index: usize) -> Option<TokenStream> {
        self.strings
            .get(index)
            .map(|string| string.to_token_stream())
    }
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
