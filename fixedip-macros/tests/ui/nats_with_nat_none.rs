use fixedip_macros::fixed_egress;

#[fixed_egress(nat = "none", nats = 1)]
fn main() {}
