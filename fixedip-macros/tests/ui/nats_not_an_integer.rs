use fixedip_macros::fixed_egress;

#[fixed_egress(nats = "1")]
fn main() {}
