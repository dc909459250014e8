//! Stage 1: the attribute's arguments as written, each with the tokens it came from.
//!
//! Only the Rust shape of a value is checked here (a string, a list of strings) and which keys
//! exist; whether a value is valid is fixedip-core's business, asked in `valid.rs`.

use fixedip_core::requirements::{suggest_argument, ARGUMENTS};
use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, ExprArray, ExprLit, ExprUnary, Lit, LitStr, UnOp};

use crate::errors::Errors;

/// `#[fixed_egress(azs = 2, stack = "payments", ips = ["eipalloc-0123abcd"])]`, as written.
#[derive(Default)]
pub struct Args {
    pub azs: Option<AzsArg>,
    pub stack: Option<LitStr>,
    pub ips: Option<IpsArg>,
}

/// The `azs` value: its text as an integer would be read (`2`, `-1`, `"2"`) and where it is.
pub struct AzsArg {
    pub text: String,
    pub value: Expr,
}

/// The `ips` list and the allocation id strings in it.
pub struct IpsArg {
    pub list: ExprArray,
    pub ids: Vec<LitStr>,
    /// Every element is a string; otherwise `ids` holds only the strings, and the length of
    /// the list as meant is unknown.
    pub complete: bool,
}

/// How each argument is written, for errors that show the user the right form.
fn example(key: &str) -> &'static str {
    match key {
        "azs" => "`azs = 2`",
        "stack" => "`stack = \"payments\"`",
        _ => "`ips = [\"eipalloc-0123abcd\"]`",
    }
}

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
            "azs" => args.azs = Some(azs(value)),
            "stack" => args.stack = string(&value, key, errors),
            _ => args.ips = ips(value, errors),
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

fn azs(value: Expr) -> AzsArg {
    let value = unwrap_group(value);
    let text = integer_text(&value).unwrap_or_else(|| written(&value));
    AzsArg { text, value }
}

/// An integer literal's decimal digits, with its sign: `7` → `7`, `-1` → `-1`, and `0x7`, `7u8`
/// or `0_7` as the compiler would read them. Anything else is left for fixedip-core to refuse.
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

fn ips(value: Expr, errors: &mut Errors) -> Option<IpsArg> {
    let list = match unwrap_group(value) {
        Expr::Array(list) => list,
        Expr::Lit(lit) if matches!(lit.lit, Lit::Str(_)) => {
            let message = format!(
                "`ips` expects a list, even of one address: put it in brackets, e.g. {}",
                example("ips")
            );
            errors.spanned(&lit, message);
            return None;
        }
        other => {
            errors.spanned(
                &other,
                format!("`ips` expects a list of strings, e.g. {}", example("ips")),
            );
            return None;
        }
    };
    let mut ids = Vec::new();
    for element in &list.elems {
        match unwrap_group(element.clone()) {
            Expr::Lit(ExprLit { lit: Lit::Str(id), .. }) => ids.push(id),
            _ => errors.spanned(
                element,
                "each element of `ips` is an Elastic IP allocation id in quotes, e.g. `\"eipalloc-0123abcd\"`",
            ),
        }
    }
    let complete = ids.len() == list.elems.len();
    Some(IpsArg {
        list,
        ids,
        complete,
    })
}
