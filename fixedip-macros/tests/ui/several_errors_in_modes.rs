use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 9, nat = "Instance", nats = 3, endpoints = ["s3", "dynamo"], egress = ["0.0.0.0/0:https"])]
fn main() {}
