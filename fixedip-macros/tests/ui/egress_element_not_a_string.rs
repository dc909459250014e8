use fixedip_macros::fixed_egress;

#[fixed_egress(egress = ["0.0.0.0/0:443", 5432])]
fn main() {}
