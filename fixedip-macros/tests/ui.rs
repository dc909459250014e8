//! Compile-time behaviour of `#[fixed_egress]`: one `tests/ui/<case>.rs` per error message, its
//! `.stderr` showing where the error points, and in `tests/ui/pass/` what must compile and run.
//! After changing a message: `TRYBUILD=overwrite cargo test -p fixedip-macros --test ui`, then read
//! every changed `.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
