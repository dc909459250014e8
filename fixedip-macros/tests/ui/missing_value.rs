use fixedip_macros::fixed_egress;

#[fixed_egress(azs)]
fn main() {}
