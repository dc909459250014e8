#![deny(warnings)]
// The mode arguments passed through `macro_rules!` (in invisible groups) are read the same.
use fixedip_macros::fixed_egress;

macro_rules! egress_function {
    ($name:ident, $nat:expr, $nats:expr, $endpoint:expr, $rule:expr) => {
        #[fixed_egress(nat = $nat, nats = $nats, endpoints = [$endpoint], egress = [$rule])]
        fn $name() {}
    };
}

egress_function!(first, "gateway", 1, "s3", "0.0.0.0/0:443");
egress_function!(second, "instance", 2, "kms", "10.0.0.0/8:1-65535/udp");

fn main() {
    first();
    second();
}
