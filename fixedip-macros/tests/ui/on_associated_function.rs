// Known limit: a function inside an `impl` without `self` cannot be told from a free function by
// the macro, and the record cannot sit in an `impl`; rustc refuses it, at the attribute.
use fixedip_macros::fixed_egress;

struct Handler;

impl Handler {
    #[fixed_egress]
    fn start() {}
}

fn main() {}
