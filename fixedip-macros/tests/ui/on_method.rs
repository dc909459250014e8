use fixedip_macros::fixed_egress;

struct Handler;

impl Handler {
    #[fixed_egress]
    fn run(&self) {}
}

fn main() {}
