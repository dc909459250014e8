#![deny(warnings)]
// No arguments, or empty parentheses: every default.
use fixedip_macros::fixed_egress;

#[fixed_egress]
fn main() {
    other();
}

#[fixed_egress()]
fn other() {}
