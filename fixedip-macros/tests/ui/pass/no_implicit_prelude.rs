#![deny(warnings)]
// The expansion names only `::core` items, so it works where nothing is in scope, and in crates
// that do not depend on fixedip-requirements.
#[no_implicit_prelude]
mod bare {
    #[::fixedip_macros::fixed_egress(azs = 1, stack = "bare")]
    pub fn handler() {}
}

fn main() {
    bare::handler();
}
