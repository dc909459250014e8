use fixedip_macros::fixed_egress;

#[fixed_egress(azs = -1)]
fn main() {}
