use fixedip_macros::fixed_egress;

#[fixed_egress(ips = ["eipalloc-0123abcd", 42])]
fn main() {}
