use fixedip_macros::fixed_egress;

#[fixed_egress(endpoint = ["s3"])]
fn main() {}
