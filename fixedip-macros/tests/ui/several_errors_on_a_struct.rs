use fixedip_macros::fixed_egress;

#[fixed_egress(stack = "Payments", ips = "eipalloc-0123abcd")]
struct Config;

fn main() {}
