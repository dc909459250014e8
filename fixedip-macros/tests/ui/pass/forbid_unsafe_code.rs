#![forbid(unsafe_code)]
#![deny(warnings)]

#[fixedip_macros::fixed_egress]
fn main() {}
