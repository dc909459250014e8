use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 99999999999999999999999)]
fn main() {}
