use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 3, nats = -1)]
fn main() {}
