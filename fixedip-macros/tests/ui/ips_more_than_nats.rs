use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 3, nats = 1, ips = ["eipalloc-0123abcd", "eipalloc-4567cdef"])]
fn main() {}
