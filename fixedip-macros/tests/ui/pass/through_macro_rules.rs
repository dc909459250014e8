#![deny(warnings)]
// Values passed through `macro_rules!` arrive wrapped in invisible groups; they are read the same.
use fixedip_macros::fixed_egress;

macro_rules! egress_function {
    ($name:ident, $azs:expr, $stack:expr, $id:expr) => {
        #[fixed_egress(azs = $azs, stack = $stack, ips = [$id])]
        fn $name() {}
    };
}

egress_function!(first, 2, "from-a-macro", "eipalloc-0123abcd");
egress_function!(second, 3, "from-a-macro", "eipalloc-4567cdef");

fn main() {
    first();
    second();
}
