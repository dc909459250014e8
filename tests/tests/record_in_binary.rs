//! The record `#[fixed_egress]` embeds survives real builds of `examples/hello-egress`, in debug and
//! in the release profile a Lambda is shipped with (fat LTO, one codegen unit, stripped, abort on
//! panic), and is read back from the binary and from a Lambda zip of it.
//!
//! The example is built by a nested `cargo build` into its own target directory
//! (`target/tmp/record-tests`), so that it never waits on the lock of the build running these tests.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use fixedip_core::reader::{read_records, read_single};
use fixedip_core::record::Record;
use fixedip_core::requirements::StackName;
use object::Object;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

const EXAMPLE: &str = "hello-egress";
/// The profile `cargo lambda build --release` users ship with, and the harshest on unused statics.
const LAMBDA_RELEASE: [&str; 4] = [
    "profile.release.lto=\"fat\"",
    "profile.release.codegen-units=1",
    "profile.release.strip=true",
    "profile.release.panic=\"abort\"",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Under the outer build's own directory for test files (`target/tmp`), wherever that target is.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("record-tests")
}

/// Builds the example with `args` and returns the path of its executable.
fn build_example(profile_dir: &str, args: &[&str]) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .arg("build")
        .args(["--package", EXAMPLE, "--manifest-path"])
        .arg(workspace().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir())
        .args(args)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building {EXAMPLE} with {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir().join(profile_dir).join(EXAMPLE)
}

/// The line of the example's `#[fixed_egress(` attribute, which the record's `source` must name.
fn attribute_line() -> usize {
    let main =
        std::fs::read_to_string(workspace().join("examples/hello-egress/src/main.rs")).unwrap();
    let index = main
        .lines()
        .position(|line| line.starts_with("#[fixed_egress("))
        .unwrap();
    index + 1
}

fn assert_is_the_example(record: &Record) {
    assert_eq!(record.package, EXAMPLE);
    assert_eq!(record.function, "hello_egress::main");
    assert_eq!(
        record.source,
        format!("examples/hello-egress/src/main.rs:{}", attribute_line())
    );
    assert_eq!(record.requirements.azs.get(), 2);
    assert_eq!(record.requirements.stack, StackName::default());
    assert!(record.requirements.ips.is_empty());
}

/// Zips `binary` the way Lambda wants it: one executable entry named `bootstrap`.
fn lambda_zip(binary: &Path, dir: &Path) -> PathBuf {
    let path = dir.join("bootstrap.zip");
    let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).unwrap();
    zip.write_all(&std::fs::read(binary).unwrap()).unwrap();
    zip.finish().unwrap();
    path
}

fn assert_record_in_binary_and_zip(binary: &Path) {
    assert_is_the_example(&read_single(binary).unwrap());
    // Exactly one, not the same record twice (e.g. once per codegen unit).
    assert_eq!(read_records(binary).unwrap().len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let zip = lambda_zip(binary, dir.path());
    assert_is_the_example(&read_single(&zip).unwrap());
}

/// The example as the workspace's own debug build makes it (scripts/test.sh builds it before the
/// tests; a second debug build in a target of its own cost this test three minutes of CPU).
#[test]
fn record_in_debug_build() {
    assert_record_in_binary_and_zip(fixedip_tests::example_binary());
}

#[test]
fn record_survives_lambda_release_profile() {
    let mut args = vec!["--release"];
    for setting in LAMBDA_RELEASE {
        args.extend(["--config", setting]);
    }
    let binary = build_example("release", &args);

    // The settings took effect: the symbol table is gone, yet the record is there. (On macOS the
    // binary is Mach-O, which the reader handles as well; the strip check is ELF's.)
    if cfg!(target_os = "linux") {
        let bytes = std::fs::read(&binary).unwrap();
        let elf = object::File::parse(&*bytes).unwrap();
        assert_eq!(elf.format(), object::BinaryFormat::Elf);
        assert!(
            elf.section_by_name(".symtab").is_none(),
            "the release binary is not stripped"
        );
    }

    assert_record_in_binary_and_zip(&binary);
}

#[test]
fn a_real_binary_without_the_attribute_is_named() {
    // This test's own executable: built by rustc like the example, but nothing in it is annotated.
    let this = std::env::current_exe().unwrap();
    let err = read_single(&this).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no #[fixed_egress] in {}: add #[fixed_egress] to the function that starts the Lambda runtime",
            this.display()
        )
    );
}
