use fixedip_macros::fixed_egress;

#[fixed_egress(ips = ["eipalloc-0123abcd", "eipalloc-0123abcd"])]
fn main() {}
