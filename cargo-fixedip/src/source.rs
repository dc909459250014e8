//! The stack a binary declares, read from its source instead of from a build.
//!
//! `ips`, `status`, `verify`, `unlock` and `destroy` need to know which stack each selected
//! function belongs to, not the whole record; a release build to learn it would cost minutes. The
//! `stack = "..."` argument of `#[fixed_egress]` is read from the binary's root source file when
//! that file holds the whole truth: the attribute appears there exactly once, on a function, not
//! behind `cfg`/`cfg_attr`, and no other source file of the package names it. Anything else (the
//! attribute in a module file, under a `cfg`, renamed on import, a file syn cannot parse) is
//! [`Declared::Unsure`], and the caller builds the package and reads the record instead. The
//! value is checked with fixedip-core's own rules, so a stack name is valid here exactly when the
//! macro accepts it; every other argument is the compiler's business.

use std::path::{Path, PathBuf};

use fixedip_core::requirements::StackName;
use syn::{Attribute, Expr, ExprLit, Item, Lit, Meta};

/// The attribute's name, as written on the function (`fixed_egress` or `fixedip_macros::fixed_egress`).
const ATTRIBUTE: &str = "fixed_egress";

/// What a binary's source says about its stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declared {
    /// `#[fixed_egress]` on one function of the root file, with this stack (`default` when the
    /// attribute names none).
    Stack(StackName),
    /// No source file of the package names `fixed_egress`: the binary carries no record.
    Nothing,
    /// The source alone cannot tell; the reason, for `-v`.
    Unsure(String),
}

/// Reads the stack declared by the binary whose root file is `root`; `other_sources` are the
/// package's `.rs` files that are no binary's root (its library and modules), where an attribute
/// would make the root file not the whole truth.
pub fn declared_stack(root: &Path, other_sources: &[PathBuf]) -> Declared {
    let Ok(text) = std::fs::read_to_string(root) else {
        return Declared::Unsure(format!("cannot read {}", root.display()));
    };
    let elsewhere = other_sources
        .iter()
        .find(|path| std::fs::read_to_string(path).is_ok_and(|t| t.contains(ATTRIBUTE)));
    if !text.contains(ATTRIBUTE) {
        return match elsewhere {
            Some(path) => Declared::Unsure(format!("`{ATTRIBUTE}` appears in {}", path.display())),
            None => Declared::Nothing,
        };
    }
    if let Some(path) = elsewhere {
        return Declared::Unsure(format!("`{ATTRIBUTE}` also appears in {}", path.display()));
    }
    match syn::parse_file(&text) {
        Ok(file) => from_items(&file.items),
        Err(error) => Declared::Unsure(format!("cannot parse {}: {error}", root.display())),
    }
}

fn from_items(items: &[Item]) -> Declared {
    let mut found = Vec::new();
    let mut unsure = None;
    visit(items, &mut found, &mut unsure);
    if let Some(reason) = unsure {
        return Declared::Unsure(reason);
    }
    match found.as_slice() {
        [] => Declared::Unsure(format!(
            "`{ATTRIBUTE}` is named, but not as an attribute of a function"
        )),
        [one] => one.clone(),
        _ => Declared::Unsure(format!("`#[{ATTRIBUTE}]` appears {} times", found.len())),
    }
}

/// Collects the attribute on every function of `items`, inline modules included.
fn visit(items: &[Item], found: &mut Vec<Declared>, unsure: &mut Option<String>) {
    for item in items {
        match item {
            Item::Fn(function) => {
                let ours: Vec<&Attribute> = function
                    .attrs
                    .iter()
                    .filter(|a| is_ours(a.path()))
                    .collect();
                let conditional = function
                    .attrs
                    .iter()
                    .any(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"));
                if conditional && (!ours.is_empty() || mentions(&function.attrs)) {
                    *unsure = Some(format!(
                        "`{}` carries `cfg` or `cfg_attr`: its record depends on the build",
                        function.sig.ident
                    ));
                }
                found.extend(ours.into_iter().map(stack_of));
            }
            Item::Mod(module) => {
                if let Some((_, items)) = &module.content {
                    visit(items, found, unsure);
                }
            }
            Item::Use(used) if mentions_tokens(&quote::ToTokens::to_token_stream(used))
                // `use fixedip_macros::fixed_egress as egress;` would hide the attribute.
                && quote::ToTokens::to_token_stream(used)
                    .to_string()
                    .contains(" as ")
                => {
                    *unsure = Some(format!("`{ATTRIBUTE}` is imported under another name"));
                }
            Item::Macro(_)
                // A macro may expand to the annotated function: only a build can tell.
                if mentions_tokens(&quote::ToTokens::to_token_stream(item)) => {
                    *unsure = Some(format!("`{ATTRIBUTE}` appears inside a macro call"));
                }
            _ => {}
        }
    }
}

fn is_ours(path: &syn::Path) -> bool {
    path.segments
        .last()
        .is_some_and(|segment| segment.ident == ATTRIBUTE)
}

fn mentions(attributes: &[Attribute]) -> bool {
    attributes
        .iter()
        .any(|a| mentions_tokens(&quote::ToTokens::to_token_stream(a)))
}

fn mentions_tokens(tokens: &proc_macro2::TokenStream) -> bool {
    tokens.to_string().contains(ATTRIBUTE)
}

/// The stack of one `#[fixed_egress(...)]`: its `stack = "..."`, else `default`.
fn stack_of(attribute: &Attribute) -> Declared {
    let Meta::List(list) = &attribute.meta else {
        return Declared::Stack(StackName::default());
    };
    let mut stack = None;
    let parsed = list.parse_nested_meta(|meta| {
        if meta.input.peek(syn::Token![=]) {
            let value: Expr = meta.value()?.parse()?;
            if meta.path.is_ident("stack") {
                stack = Some(value);
            }
        }
        Ok(())
    });
    if let Err(error) = parsed {
        return Declared::Unsure(format!("cannot read the attribute's arguments: {error}"));
    }
    let Some(value) = stack else {
        return Declared::Stack(StackName::default());
    };
    let Expr::Lit(ExprLit {
        lit: Lit::Str(name),
        ..
    }) = value
    else {
        return Declared::Unsure("`stack` is not a string literal".to_owned());
    };
    match StackName::parse(&name.value()) {
        Ok(stack) => Declared::Stack(stack),
        // The macro refuses it at compile time; a build says so with the span.
        Err(error) => Declared::Unsure(format!("`stack = {:?}`: {error}", name.value())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared(source: &str) -> Declared {
        match syn::parse_file(source) {
            Ok(file) => from_items(&file.items),
            Err(error) => panic!("{error}"),
        }
    }

    fn stack(name: &str) -> Declared {
        Declared::Stack(StackName::parse(name).unwrap())
    }

    #[test]
    fn reads_the_stack_argument() {
        assert_eq!(
            declared(
                r#"#[fixed_egress(azs = 3, stack = "payments", ips = ["eipalloc-1"])]
                   #[tokio::main] async fn main() {}"#
            ),
            stack("payments")
        );
        assert_eq!(
            declared(r#"#[fixedip_macros::fixed_egress(stack = "other")] fn main() {}"#),
            stack("other")
        );
    }

    #[test]
    fn no_stack_argument_is_the_default_stack() {
        assert_eq!(declared("#[fixed_egress] fn main() {}"), stack("default"));
        assert_eq!(
            declared(r#"#[fixed_egress(azs = 2, nat = "none")] fn main() {}"#),
            stack("default")
        );
        assert_eq!(
            declared("mod inner { #[fixed_egress(azs = 1)] pub fn run() {} } fn main() {}"),
            stack("default")
        );
    }

    #[test]
    fn what_a_build_must_settle_is_unsure() {
        for source in [
            // Behind a cfg: the record depends on the features of the build.
            r#"#[cfg(feature = "a")] #[fixed_egress(stack = "a")] fn main() {}"#,
            r#"#[cfg_attr(feature = "a", fixed_egress(stack = "a"))] fn main() {}"#,
            // Twice: the macro refuses it, with a span.
            "#[fixed_egress] fn a() {} #[fixed_egress] fn main() {}",
            // Not a literal, or not a valid name: the macro says why.
            "#[fixed_egress(stack = NAME)] fn main() {}",
            r#"#[fixed_egress(stack = "Bad Name")] fn main() {}"#,
            // Renamed, or expanded from a macro.
            "use fixedip_macros::fixed_egress as egress; #[egress] fn main() {}",
            "make_main!(fixed_egress);",
            // Named, but not on a function.
            r#"const DOC: &str = "fixed_egress"; fn main() {}"#,
        ] {
            assert!(
                matches!(declared(source), Declared::Unsure(_)),
                "{source}: {:?}",
                declared(source)
            );
        }
    }

    #[test]
    fn files_decide_what_is_known() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("main.rs");
        let module = dir.path().join("app.rs");
        std::fs::write(&root, "mod app; fn main() { app::run() }").unwrap();
        std::fs::write(&module, "pub fn run() {}").unwrap();
        let sources = vec![module.clone()];
        assert_eq!(declared_stack(&root, &sources), Declared::Nothing);

        std::fs::write(&module, "#[fixed_egress] pub fn run() {}").unwrap();
        assert!(matches!(
            declared_stack(&root, &sources),
            Declared::Unsure(_)
        ));

        std::fs::write(&module, "pub fn run() {}").unwrap();
        std::fs::write(&root, r#"#[fixed_egress(stack = "b")] fn main() {}"#).unwrap();
        assert_eq!(declared_stack(&root, &sources), stack("b"));
    }
}
