use fixedip_macros::fixed_egress;

#[fixed_egress(az = 2)]
fn main() {}
