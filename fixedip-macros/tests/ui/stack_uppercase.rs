use fixedip_macros::fixed_egress;

#[fixed_egress(stack = "Payments")]
fn main() {}
