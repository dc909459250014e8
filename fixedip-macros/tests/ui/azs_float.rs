use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 2.0)]
fn main() {}
