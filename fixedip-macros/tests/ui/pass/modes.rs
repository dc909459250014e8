#![deny(warnings)]
// Every network mode argument, each value form, in any order.
use fixedip_macros::fixed_egress;

#[fixed_egress(
    azs = 3,
    nat = "instance",
    nats = 1,
    endpoints = ["s3", "dynamodb", "logs", "secretsmanager", "ecr.api"],
    egress = ["0.0.0.0/0:443", "203.0.113.10/32:22", "198.51.100.0/24:5432-5433", "10.0.0.2/32:53/udp", "10.0.0.2/32:53/tcp"],
)]
fn main() {
    isolated();
    gateway();
    cheapest();
}

// Isolated: no NAT, only AWS services through endpoints, and egress only to them.
#[fixed_egress(egress = ["10.0.0.0/16:443"], endpoints = ["sqs"], nat = "none", stack = "isolated")]
fn isolated() {}

// The defaults written out.
#[fixed_egress(nat = "gateway", nats = 2, azs = 2)]
fn gateway() {}

// One NAT gateway, one IP, adopted, for every AZ.
#[fixed_egress(azs = 6, nats = 1, ips = ["eipalloc-0123abcd"])]
fn cheapest() {}
