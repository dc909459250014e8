use fixedip_macros::fixed_egress;

#[fixed_egress(egress = ["0.0.0.0/0:443", "10.0.0.2/32:53/udp", "0.0.0.0/0:443/tcp"])]
fn main() {}
