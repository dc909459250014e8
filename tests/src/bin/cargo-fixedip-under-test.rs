//! `cargo-fixedip` as the end-to-end tests run it. Built by the same `cargo test` invocation as the
//! tests (a binary target of this package), so it shares their dependency features: building
//! `-p cargo-fixedip` on its own from inside a test would resolve other features and rebuild the
//! whole AWS SDK a second time.

fn main() {
    std::process::exit(cargo_fixedip::main());
}
