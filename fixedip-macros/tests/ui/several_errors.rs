use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 9, stak = "payments", ips = ["eipalloc-nothex00", "eipalloc-0123abcd", "eipalloc-0123abcd"], azs = 2)]
fn main() {}
