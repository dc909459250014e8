#![deny(warnings)]
use fixedip_macros::fixed_egress;

#[fixed_egress(
    azs = 3,
    stack = "payments-eu",
    ips = ["eipalloc-0123abcd", "eipalloc-0123456789abcdef0"],
)]
fn main() {
    six();
    one();
}

// Bounds, the other id length, an empty list, and the arguments in another order.
#[fixed_egress(ips = [], stack = "a", azs = 6)]
fn six() {}

#[fixed_egress(azs = 1, ips = ["eipalloc-0123456789abcdef0"])]
fn one() {}
