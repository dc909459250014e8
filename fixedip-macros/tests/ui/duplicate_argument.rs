use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 2, stack = "payments", azs = 3)]
fn main() {}
