//! The command line as a user meets it: help, and the errors that come before or right after a
//! build, each with its exit code and a message that names what to fix. Temporary crates stand in
//! for the user's; none needs AWS.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use cargo_fixedip::exit_code;
use predicates::prelude::*;
use tempfile::TempDir;

fn fixedip() -> assert_cmd::Command {
    let mut command = cargo_bin_cmd!("cargo-fixedip");
    command
        .arg("fixedip")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    command
}

/// A one-package workspace in a temporary directory: `[package.metadata.fixedip]` holds
/// `settings`, and `main.rs` is `main_rs`.
fn temp_crate(name: &str, settings: &str, main_rs: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("Cargo.toml");
    std::fs::write(
        &manifest,
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [package.metadata.fixedip]\n{settings}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), main_rs).unwrap();
    (dir, manifest)
}

fn plan_offline(manifest: &Path) -> assert_cmd::Command {
    let mut command = fixedip();
    command
        .args([
            "plan",
            "--offline",
            "--region",
            "us-east-1",
            "--manifest-path",
        ])
        .arg(manifest);
    command
}

#[test]
fn help_explains_the_tool_and_its_commands() {
    fixedip()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("allowlist"))
        .stdout(predicate::str::contains("plan"))
        .stdout(predicate::str::contains("--manifest-path"))
        .stdout(predicate::str::contains("Examples:"));
    fixedip()
        .args(["plan", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--offline"))
        .stdout(predicate::str::contains("--diagram"))
        .stdout(predicate::str::contains("assumed"));
}

#[test]
fn usage_errors_exit_with_usage() {
    fixedip().arg("plna").assert().code(exit_code::USAGE);
    fixedip()
        .args(["plan", "--offline", "--diagram", "svg"])
        .assert()
        .code(exit_code::USAGE)
        .stderr(predicate::str::contains("mermaid"));
    fixedip()
        .args(["plan", "--offline", "--diagram", "dot", "--json"])
        .assert()
        .code(exit_code::USAGE);
}

#[test]
fn unknown_settings_key_is_named_with_a_suggestion() {
    let (_dir, manifest) = temp_crate("typo", "memroy = 256", "fn main() {}\n");
    plan_offline(&manifest)
        .assert()
        .code(exit_code::SETTINGS)
        .stdout("")
        .stderr(predicate::str::contains("package.metadata.fixedip.memroy"))
        .stderr(predicate::str::contains("did you mean `memory`?"));
}

#[test]
fn memory_out_of_range_names_the_range() {
    let (_dir, manifest) = temp_crate("tiny", "memory = 5", "fn main() {}\n");
    plan_offline(&manifest)
        .assert()
        .code(exit_code::SETTINGS)
        .stderr(predicate::str::contains("package.metadata.fixedip.memory"))
        .stderr(predicate::str::contains(
            "between 128 and 10240 MB, found 5",
        ));
}

#[test]
fn bad_architecture_lists_the_choices() {
    let (_dir, manifest) = temp_crate("sparc", "architecture = \"sparc\"", "fn main() {}\n");
    plan_offline(&manifest)
        .assert()
        .code(exit_code::SETTINGS)
        .stderr(predicate::str::contains(
            "package.metadata.fixedip.architecture",
        ))
        .stderr(predicate::str::contains("`x86_64` or `arm64`"));
}

#[test]
fn every_bad_setting_is_reported_at_once() {
    let (_dir, manifest) = temp_crate(
        "many",
        "memory = 5\ntimeout = 901\nregion = \"Mars\"",
        "fn main() {}\n",
    );
    plan_offline(&manifest)
        .assert()
        .code(exit_code::SETTINGS)
        .stderr(predicate::str::contains("fixedip.memory"))
        .stderr(predicate::str::contains("fixedip.timeout"))
        .stderr(predicate::str::contains("fixedip.region"));
}

#[test]
fn package_without_the_attribute_is_a_clear_error() {
    let (dir, manifest) = temp_crate("plain", "", "fn main() {}\n");
    plan_offline(&manifest)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .assert()
        .code(exit_code::NO_FUNCTION)
        .stdout("")
        .stderr(predicate::str::contains(
            "package `plain` has no binary with #[fixed_egress]",
        ))
        .stderr(predicate::str::contains("add `#[fixed_egress]`"));
}

#[test]
fn unknown_package_lists_the_members() {
    let (_dir, manifest) = temp_crate("member", "", "fn main() {}\n");
    plan_offline(&manifest)
        .args(["-p", "nope"])
        .assert()
        .code(exit_code::WORKSPACE)
        .stderr(predicate::str::contains("package `nope` is not a member"))
        .stderr(predicate::str::contains("member"));
}

#[test]
fn workspace_without_annotated_members_says_what_to_add() {
    let (_dir, manifest) = temp_crate("lonely", "", "fn main() {}\n");
    plan_offline(&manifest)
        .arg("--workspace")
        .assert()
        .code(exit_code::NO_FUNCTION)
        .stderr(predicate::str::contains("fixedip-macros"));
}

#[test]
fn virtual_manifest_asks_for_a_package() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
    plan_offline(&dir.path().join("Cargo.toml"))
        .assert()
        .code(exit_code::WORKSPACE)
        .stderr(predicate::str::contains("virtual workspace"))
        .stderr(predicate::str::contains("-p NAME"));
}

#[test]
fn missing_manifest_is_a_workspace_error() {
    let dir = tempfile::tempdir().unwrap();
    plan_offline(&dir.path().join("Cargo.toml"))
        .assert()
        .code(exit_code::WORKSPACE);
}

#[test]
fn bad_region_flag_is_refused_before_building() {
    let (_dir, manifest) = temp_crate("region", "", "fn main() {}\n");
    let mut command = fixedip();
    command
        .args(["plan", "--offline", "--region", "moon-1", "--manifest-path"])
        .arg(&manifest)
        .assert()
        .code(exit_code::USAGE)
        .stderr(predicate::str::contains("not an AWS region"));
}

#[test]
fn a_failed_build_exits_with_build_and_shows_cargos_errors() {
    let (dir, manifest) = temp_crate("broken", "", "fn main() { this_does_not_compile }\n");
    plan_offline(&manifest)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .assert()
        .code(exit_code::BUILD)
        .stdout("")
        .stderr(predicate::str::contains("this_does_not_compile"))
        .stderr(predicate::str::contains("cargo build"))
        .stderr(predicate::str::contains("fix the build errors"));
}
