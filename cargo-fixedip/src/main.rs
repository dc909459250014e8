fn main() {
    std::process::exit(cargo_fixedip::main());
}
