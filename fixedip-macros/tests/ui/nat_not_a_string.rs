use fixedip_macros::fixed_egress;

#[fixed_egress(nat = instance)]
fn main() {}
