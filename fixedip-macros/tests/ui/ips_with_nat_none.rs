use fixedip_macros::fixed_egress;

#[fixed_egress(nat = "none", ips = ["eipalloc-0123abcd"])]
fn main() {}
