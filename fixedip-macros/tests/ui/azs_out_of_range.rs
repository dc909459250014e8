use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 7)]
fn main() {}
