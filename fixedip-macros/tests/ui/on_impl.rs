use fixedip_macros::fixed_egress;

struct Handler;

#[fixed_egress]
impl Handler {
    fn run(&self) {}
}

fn main() {}
