use fixedip_macros::fixed_egress;

#[fixed_egress(region = "us-east-1")]
fn main() {}
