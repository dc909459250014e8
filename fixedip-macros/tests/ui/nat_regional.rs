use fixedip_macros::fixed_egress;

#[fixed_egress(nat = "regional")]
fn main() {}
