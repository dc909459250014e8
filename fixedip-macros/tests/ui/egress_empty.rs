use fixedip_macros::fixed_egress;

#[fixed_egress(egress = [])]
fn main() {}
