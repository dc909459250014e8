use fixedip_macros::fixed_egress;

#[fixed_egress(endpoints = ["s3", logs])]
fn main() {}
