use fixedip_macros::fixed_egress;

#[fixed_egress(stack = "payments-for-the-partner-in-tokyo-2")]
fn main() {}
