use fixedip_macros::fixed_egress;

#[fixed_egress(nat = "nat-gateway")]
fn main() {}
