//! The end-to-end tests: ONE test binary, each file of this directory a module of it. Fourteen
//! binaries that each linked the AWS SDK took minutes to link and ran one after another; one binary
//! links once, and cargo-nextest runs its tests in parallel, each in a process of its own.
//!
//! Adding a suite: write `tests/tests/foo.rs` and add `mod foo;` below. A file that is not declared
//! here is never compiled; `every_file_here_is_a_module` fails until it is. A suite that uses the
//! chaos labs of `common/` writes `use crate::common;` (not `mod common;`).
//!
//! Running one module or one test (no SDK rebuild: see docs/testing.md):
//!
//! ```text
//! cargo nextest run -p fixedip-tests deploy::
//! cargo nextest run -p fixedip-tests deploy::second_deploy_makes_no_mutating_call
//! ```

mod common;

mod acceptance;
mod aws_behaviour;
mod benchmarks;
mod concurrency;
mod cross_build;
mod deploy;
mod emulator;
mod ip_stability;
mod lifecycle;
mod modes_endpoints;
mod modes_existing;
mod modes_instance;
mod modes_nat;
mod nat_healing;
mod nat_ready;
mod preflight;
mod quickstart;
mod record_in_binary;
mod reliability;
mod reliability_destroy;
mod scope;
mod speed;
mod twin;
mod verify;

/// Every `.rs` file beside this one is declared above: with one binary, an undeclared file would be
/// silently left out of the suite.
#[test]
fn every_file_here_is_a_module() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let main = std::fs::read_to_string(dir.join("main.rs")).expect("tests/tests/main.rs");
    let missing: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/tests")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .filter(|name| name != "main")
        .filter(|name| !main.lines().any(|line| line == format!("mod {name};")))
        .collect();
    assert!(
        missing.is_empty(),
        "add `mod {};` to tests/tests/main.rs: these files are not part of the suite",
        missing.join(";`, `mod ")
    );
}
