//! Every problem found in one attribute, collected so that the user sees them all at once
//! (serde_derive's `Ctxt`): fixing one error only to meet the next is a slow way to learn.

use std::fmt::Display;

use quote::ToTokens;

#[derive(Default)]
pub struct Errors(Vec<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        self.0.push(error);
    }

    /// An error underlining `tokens`, from their first token to their last.
    pub fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// All the errors as one, each keeping its own span, in the order they appear in the source
    /// (the stages find them in another order: shapes first, then rules).
    pub fn finish(mut self) -> Result<(), syn::Error> {
        self.0.sort_by_key(|error| {
            let start = error.span().start();
            (start.line, start.column)
        });
        let mut errors = self.0.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(first) => Err(errors.fold(first, |mut all, next| {
                all.combine(next);
                all
            })),
        }
    }
}
