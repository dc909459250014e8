//! Stage 1: the attribute's arguments as written, each with the tokens it came from.
//!
//! Only the Rust shape of a value is checked here (a string, a list of strings) and which keys
//! exist; whether a value is valid is fixedip-requirements' business, asked in `valid.rs`.

use fixedip_requirements::requirements::{suggest_argument, ARGUMENTS};
use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprArray, ExprLit, ExprUnary, Lit, LitStr, UnOp};

use crate::errors::Errors;

/// `#[fixed_egress(azs = 2, stack = "payments", ips = ["eipalloc-0123abcd"], nat = "instance",
/// nats = 1, endpoints = ["s3"], egress = ["0.0.0.0/0:443"])]`, as written.
#[derive(Default)]
pub struct Args {
    pub azs: Option<IntegerArg>,
    pub stack: Option<LitStr>,
    pub ips: Option<StringList>,
    pub nat: Option<LitStr>,
    pub nats: Option<IntegerArg>,
    pub endpoints: Option<StringList>,
    pub egress: Option<StringList>,
}

/// An integer value (`azs`, `nats`): its text as an integer would be read (`2`, `-1`, `"2"`) and
/// where it is.
pub struct IntegerArg {
    pub text: String,
    pub value: Expr,
}

/// A list of strings (`ips`, `endpoints`, `egress`) and the strings in it.
pub struct StringList {
    pub list: ExprArray,
    pub strings: Vec<LitStr>,
    /// Every element is a string; otherwise `strings` holds only the strings, and the length of
    /// the list as meant is unknown.
    pub complete: bool,
}

/// How each argument is written, for errors that show the user the right form.
fn example(key: &str) -> &'static str {
    match key {
        "azs" => "`azs = 2`",
        "stack" => "`stack = \"payments\"`",
        "ips" => "`ips = [\"eipalloc-0123abcd\"]`",
        "nat" => "`nat = \"instance\"`",
        "nats" => "`nats = 1`",
        "endpoints" => "`endpoints = [\"s3\", \"logs\"]`",
        "egress" => "`egress = [\"0.0.0.0/0:443\"]`",
        other => unreachable!("`{other}` is in ARGUMENTS but has no example"),
    }
}

/// What one element of a list argument is, for errors about a list or its elements.
struct ListShape {
    key: &'static str,
    /// One element, in "a list, even of one ...".
    one: &'static str,
    /// What an element is, with an example.
    element: &'static str,
}

const IPS: ListShape = ListShape {
    key: "ips",
    one: "address",
    element: "an Elastic IP allocation id in quotes, e.g. `\"eipalloc-0123abcd\"`",
};
const ENDPOINTS: ListShape = ListShape {
    key: "endpoints",
    one: "service",
    element: "an AWS service name in quotes, e.g. `\"s3\"`",
};
const EGRESS: ListShape = ListShape {
    key: "egress",
    one: "rule",
    element: "a rule in quotes, e.g. `\"0.0.0.0/0:443\"`",
};

pub fn parse(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    let mut given: Vec<&str> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let known = ARGUMENTS.iter().find(|known| **known == key);
        let Some(&key) = known else {
            let written = quote::ToTokens::to_token_stream(&meta.path)
                .to_string()
                .replace(' ', "");
            let message = match suggest_argument(&written) {
                Some(close) => format!("unknown argument `{written}`, did you mean `{close}`?"),
                None => format!(
                    "unknown argument `{written}`: `#[fixed_egress]` accepts {}",
                    accepted()
                ),
            };
            errors.spanned(&meta.path, message);
            return skip_value(&meta);
        };
        if given.contains(&key) {
            errors.spanned(
                &meta.path,
                format!("`{key}` is given more than once; keep one"),
            );
            return skip_value(&meta);
        }
        given.push(key);
        let Some(value) = value(&meta, key, errors)? else {
            return Ok(());
        };
        match key {
            "azs" => args.azs = Some(integer(value)),
            "stack" => args.stack = string(&value, key, errors),
            "ips" => args.ips = list(value, &IPS, errors),
            "nat" => args.nat = string(&value, key, errors),
            "nats" => args.nats = Some(integer(value)),
            "endpoints" => args.endpoints = list(value, &ENDPOINTS, errors),
            "egress" => args.egress = list(value, &EGRESS, errors),
            other => unreachable!("`{other}` is in ARGUMENTS but is not parsed"),
        }
        Ok(())
    });
    // A syntax error (a missing `=` or `,`) stops the parser; what was found before it still counts.
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
    args
}

fn accepted() -> String {
    let quoted: Vec<String> = ARGUMENTS.iter().map(|known| format!("`{known}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The value after `key =`, or an error showing how the argument is written.
fn value(meta: &ParseNestedMeta, key: &str, errors: &mut Errors) -> syn::Result<Option<Expr>> {
    if meta.input.peek(syn::Token![=]) {
        return Ok(Some(meta.value()?.parse()?));
    }
    let message = format!("`{key}` expects a value: {}", example(key));
    if meta.input.is_empty() || meta.input.peek(syn::Token![,]) {
        errors.spanned(&meta.path, message);
        return Ok(None);
    }
    if meta.input.peek(syn::token::Paren) {
        errors.spanned(&meta.path, message);
        skip_value(meta)?;
        return Ok(None);
    }
    // Something else follows the key (`azs 2`): parsing cannot resume after it, and syn's
    // "expected `,`" would say less than this.
    Err(meta.error(message))
}

/// Consumes the value of an argument that is already in error, so that parsing goes on.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

/// A value passed through a `macro_rules!` arrives wrapped in an invisible group.
fn unwrap_group(expr: Expr) -> Expr {
    match expr {
        Expr::Group(group) => unwrap_group(*group.expr),
        other => other,
    }
}

fn integer(value: Expr) -> IntegerArg {
    let value = unwrap_group(value);
    let text = integer_text(&value).unwrap_or_else(|| written(&value));
    IntegerArg { text, value }
}

/// An integer literal's decimal digits, with its sign: `7` → `7`, `-1` → `-1`, and `0x7`, `7u8`
/// or `0_7` as the compiler would read them. Anything else is left for fixedip-requirements to refuse.
fn integer_text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => Some(int.base10_digits().to_owned()),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => integer_text(expr).map(|digits| format!("-{digits}")),
        _ => None,
    }
}

/// An expression as the user wrote it, for messages.
fn written(expr: &Expr) -> String {
    quote::ToTokens::to_token_stream(expr).to_string()
}

fn string(value: &Expr, key: &str, errors: &mut Errors) -> Option<LitStr> {
    if let Expr::Lit(lit) = unwrap_group(value.clone()) {
        if let Lit::Str(string) = lit.lit {
            return Some(string);
        }
    }
    errors.spanned(
        value,
        format!("`{key}` expects a string, e.g. {}", example(key)),
    );
    None
}

fn list(value: Expr, shape: &ListShape, errors: &mut Errors) -> Option<StringList> {
    let ListShape { key, one, element } = shape;
    let list = match unwrap_group(value) {
        Expr::Array(list) => list,
        Expr::Lit(lit) if matches!(lit.lit, Lit::Str(_)) => {
            let message = format!(
                "`{key}` expects a list, even of one {one}: put it in brackets, e.g. {}",
                example(key)
            );
            errors.spanned(&lit, message);
            return None;
        }
        other => {
            errors.spanned(
                &other,
                format!("`{key}` expects a list of strings, e.g. {}", example(key)),
            );
            return None;
        }
    };
    let mut strings = Vec::new();
    for written in &list.elems {
        match unwrap_group(written.clone()) {
            Expr::Lit(ExprLit {
                lit: Lit::Str(string),
                ..
            }) => strings.push(string),
            _ => errors.spanned(written, format!("each element of `{key}` is {element}")),
        }
    }
    let complete = strings.len() == list.elems.len();
    Some(StringList {
        list,
        strings,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key in ARGUMENTS that this stage forgot would panic at the user's attribute.
    /// and one it forgot to parse would be ignored.
    #[test]
    fn every_argument_has_an_example_that_parses() {
        for key in ARGUMENTS {
            let example = example(key);
            assert!(example.starts_with(&format!("`{key} = ")), "{key}");
            let mut errors = Errors::default();
            let args = parse(example.trim_matches('`').parse().unwrap(), &mut errors);
            assert_eq!(errors.len(), 0, "{example}");
            let kept = match *key {
                "azs" => args.azs.is_some(),
                "stack" => args.stack.is_some(),
                "ips" => args.ips.is_some(),
                "nat" => args.nat.is_some(),
                "nats" => args.nats.is_some(),
                "endpoints" => args.endpoints.is_some(),
                "egress" => args.egress.is_some(),
                _ => false,
            };
            assert!(kept, "{example} was parsed but not kept");
        }
    }
}
