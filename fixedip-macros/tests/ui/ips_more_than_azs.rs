use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 1, ips = ["eipalloc-0123abcd", "eipalloc-4567cdef"])]
fn main() {}
