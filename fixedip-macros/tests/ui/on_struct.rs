use fixedip_macros::fixed_egress;

#[fixed_egress(azs = 2)]
pub struct Handler {
    pub name: String,
}

fn main() {}
