use fixedip_macros::fixed_egress;

#[fixed_egress(egress = ["0.0.0.0/0", "10.0.0.1/24:443", "10.0.0.0/8:53/icmp", "::/0:443", "10.0.0.0/8:443-80"])]
fn main() {}
