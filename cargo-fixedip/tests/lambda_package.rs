//! What `deploy` uploads: the example built for Lambda on this machine, zipped deterministically,
//! and a zip passed with `--zip` read back to the same function and settings.

use std::path::PathBuf;

use cargo_fixedip::cli::{BuildOptions, ColorWhen, GlobalOptions};
use cargo_fixedip::commands::Context;
use cargo_fixedip::output::Output;
use cargo_fixedip::package::LambdaZip;
use fixedip_core::settings::Architecture;

fn context(manifest: PathBuf) -> Context {
    let global = GlobalOptions {
        manifest_path: Some(manifest),
        packages: Vec::new(),
        workspace: false,
        exclude: Vec::new(),
        region: None,
        profile: None,
        json: false,
        color: Some(ColorWhen::Never),
        quiet: true,
        verbose: 0,
    };
    let output = Output::new(&global);
    Context { global, output }
}

fn example_manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-egress/Cargo.toml")
}

#[test]
fn the_example_builds_zips_and_reads_back_from_its_zip() {
    let context = context(example_manifest());
    // Without cargo-lambda or zig, this machine builds natively only for its own architecture.
    if Architecture::host().is_none() || !cfg!(target_os = "linux") {
        let error = context
            .functions_built_for_lambda(&BuildOptions::default())
            .unwrap_err();
        assert_eq!(error.exit_code(), cargo_fixedip::exit_code::BUILD);
        return;
    }
    let functions = context
        .functions_built_for_lambda(&BuildOptions::default())
        .unwrap();
    assert_eq!(functions.len(), 1);
    let built = &functions[0];
    assert_eq!(built.function.record.package, "hello-egress");
    assert_eq!(built.function.record.function, "hello_egress::main");
    assert_eq!(built.function.record.requirements.azs.get(), 2);
    assert_eq!(built.function.settings.function_name, "hello-egress");

    // The same binary zips to the same bytes: an unchanged function is not uploaded again.
    let again = LambdaZip::from_binary(&built.function.binary.path).unwrap();
    assert_eq!(again, built.zip);

    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("hello-egress.zip");
    built.zip.write_to(&zip_path).unwrap();
    let from_zip = context.function_from_zip(&zip_path).unwrap();
    assert_eq!(from_zip.function.record, built.function.record);
    assert_eq!(from_zip.function.settings, built.function.settings);
    assert_eq!(from_zip.zip.code_sha256, built.zip.code_sha256);
}

#[test]
fn a_zip_without_bootstrap_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("empty.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    writer
        .start_file("main", zip::write::SimpleFileOptions::default())
        .unwrap();
    writer.finish().unwrap();
    let error = context(example_manifest())
        .function_from_zip(&zip_path)
        .unwrap_err();
    assert_eq!(error.exit_code(), cargo_fixedip::exit_code::NO_FUNCTION);
    assert!(error.to_string().contains("empty.zip"), "{error}");
}

#[test]
fn a_foreign_architecture_without_cargo_lambda_or_zig_says_what_to_install() {
    use cargo_fixedip::lambda_build::{LambdaBuild, Machine};
    let foreign = match Architecture::host() {
        Some(Architecture::Arm64) => "x86_64",
        _ => "arm64",
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"foreign\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [package.metadata.fixedip]\narchitecture = \"{foreign}\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();

    let arch = Architecture::parse(foreign).unwrap();
    if let Some(how) = LambdaBuild::choose(arch, &Machine::detect()) {
        // cargo-lambda or zig is installed here (tests/tests/cross_build.rs builds that way): the
        // choice is what matters; a build of another architecture is never native.
        assert_ne!(how, LambdaBuild::Native);
        return;
    }
    let error = context(dir.path().join("Cargo.toml"))
        .functions_built_for_lambda(&BuildOptions::default())
        .unwrap_err();
    assert_eq!(error.exit_code(), cargo_fixedip::exit_code::BUILD);
    let report = format!("{:?}", miette::Report::new(error));
    assert!(
        report.contains(&format!("for Lambda's {foreign}")),
        "{report}"
    );
    for way in [
        "pip install ziglang",
        "cargo-zigbuild",
        "rustup target add",
        "--zip PATH",
    ] {
        assert!(report.contains(way), "{way}: {report}");
    }
}
