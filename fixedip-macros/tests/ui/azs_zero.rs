use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 0)]
fn main() {}
