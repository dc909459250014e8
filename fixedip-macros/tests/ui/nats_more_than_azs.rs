use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 2, nats = 3)]
fn main() {}
