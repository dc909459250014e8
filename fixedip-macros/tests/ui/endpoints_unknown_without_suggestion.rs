use fixedip_macros::fixed_egress;

#[fixed_egress(endpoints = ["mainframe"])]
fn main() {}
