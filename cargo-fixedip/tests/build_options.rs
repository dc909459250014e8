//! cargo's options reach the build, as a user types them: a feature that changes the attribute's
//! arguments changes the plan, `--bin` picks one of two functions, `-p 'glob'` and `--exclude`
//! pick workspace members. Each case is `plan --offline` (no AWS) on a temporary workspace that
//! depends on this repository's fixedip-macros.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use cargo_fixedip::exit_code;
use predicates::prelude::*;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A workspace member: its name, its `[features]` table, its sources (path in the package, text).
type Member<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// A workspace of `members` (name, `[features]` table, `src/main.rs` or `src/bin/*` sources). It
/// shares the outer build's target directory and lock file, so that only the small binaries
/// compile; binary names are unique across the tests of this crate for that reason.
fn workspace(members: &[Member]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = members.iter().map(|(n, ..)| format!("{n:?}")).collect();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            names.join(", ")
        ),
    )
    .unwrap();
    std::fs::copy(repo().join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    let macros = repo().join("fixedip-macros").canonicalize().unwrap();
    for (name, features, sources) in members {
        let root = dir.path().join(name);
        std::fs::create_dir_all(root.join("src/bin")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\nfixedip-macros = {{ path = {macros:?} }}\n\n[features]\n{features}\n"
            ),
        )
        .unwrap();
        for (path, source) in *sources {
            std::fs::write(root.join(path), source).unwrap();
        }
    }
    dir
}

/// `plan --offline --json` of the workspace or member whose manifest is `manifest`.
fn plan(manifest: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut command = cargo_bin_cmd!("cargo-fixedip");
    command
        .args([
            "fixedip",
            "plan",
            "--offline",
            "-q",
            "--json",
            "--region",
            "us-east-1",
        ])
        .arg("--manifest-path")
        .arg(manifest)
        .args(args)
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(".."),
        );
    command
}

/// Each planned stack as (name, number of AZs, its functions).
fn stacks(command: &mut assert_cmd::Command) -> Vec<(String, usize, Vec<String>)> {
    let output = command.assert().success().get_output().clone();
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    document["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let functions = s["functions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap().to_owned())
                .collect();
            let nodes = s["network"]["nodes"].as_array().unwrap();
            let azs = nodes.iter().filter(|n| n["kind"] == "availability_zone");
            (
                s["stack"].as_str().unwrap().to_owned(),
                azs.count(),
                functions,
            )
        })
        .collect()
}

#[test]
fn a_feature_flag_reaches_the_build() {
    let main = "#[cfg_attr(not(feature = \"wide\"), fixedip_macros::fixed_egress(azs = 1))]\n\
                #[cfg_attr(feature = \"wide\", fixedip_macros::fixed_egress(azs = 3))]\n\
                fn main() {}\n";
    let dir = workspace(&[("opt-feature", "wide = []", &[("src/main.rs", main)])]);
    let member = dir.path().join("opt-feature/Cargo.toml");
    let one = stacks(&mut plan(&member, &[]));
    assert_eq!(one, [("default".into(), 1, vec!["opt-feature".into()])]);
    for flags in [
        &["--features", "wide"][..],
        &["-F", "wide"],
        &["--all-features"],
    ] {
        let three = stacks(&mut plan(&member, flags));
        assert_eq!(three[0].1, 3, "{flags:?}: {three:?}");
    }
    // The flag must reach every build: deploy and destroy take them too (see the unit tests of
    // build::cargo_options), and a feature that does not exist fails the build as cargo says.
    plan(&member, &["--features", "no-such-feature"])
        .assert()
        .code(exit_code::BUILD)
        .stderr(predicate::str::contains("no-such-feature"));
}

#[test]
fn bin_picks_one_function_of_two() {
    let bin = |stack: &str, azs: u8| {
        format!(
            "#[fixedip_macros::fixed_egress(stack = \"{stack}\", azs = {azs})]\nfn main() {{}}\n"
        )
    };
    let (a, b) = (bin("alpha", 1), bin("beta", 2));
    let dir = workspace(&[(
        "opt-bins",
        "",
        &[("src/bin/opt-bin-a.rs", &a), ("src/bin/opt-bin-b.rs", &b)],
    )]);
    let member = dir.path().join("opt-bins/Cargo.toml");
    let both = stacks(&mut plan(&member, &[]));
    assert_eq!(both.len(), 2, "{both:?}");
    let only_b = stacks(&mut plan(&member, &["--bin", "opt-bin-b"]));
    assert_eq!(only_b, [("beta".into(), 2, vec!["opt-bin-b".into()])]);
    // A glob, as cargo reads it.
    let globbed = stacks(&mut plan(&member, &["--bin", "opt-bin-[a]"]));
    assert_eq!(globbed, [("alpha".into(), 1, vec!["opt-bin-a".into()])]);
}

fn three_members() -> tempfile::TempDir {
    let main = |azs: u8| format!("#[fixedip_macros::fixed_egress(azs = {azs})]\nfn main() {{}}\n");
    let (one, two) = (main(1), main(1));
    workspace(&[
        ("opt-fn-a", "", &[("src/main.rs", &one)]),
        ("opt-fn-b", "", &[("src/main.rs", &two)]),
        // A library member: a glob that matches it skips it, as --workspace does.
        ("opt-fn-lib", "", &[("src/lib.rs", "pub fn shared() {}\n")]),
    ])
}

#[test]
fn package_globs_and_exclude_pick_members_as_cargo_does() {
    let dir = three_members();
    let functions = |command: &mut assert_cmd::Command| -> Vec<String> {
        stacks(command).into_iter().flat_map(|(.., f)| f).collect()
    };
    assert_eq!(
        functions(&mut plan(
            &dir.path().join("Cargo.toml"),
            &["-p", "opt-fn-*"]
        )),
        ["opt-fn-a", "opt-fn-b"]
    );
    assert_eq!(
        functions(&mut plan(
            &dir.path().join("Cargo.toml"),
            &["-p", "opt-fn-?"]
        )),
        ["opt-fn-a", "opt-fn-b"]
    );
    assert_eq!(
        functions(&mut plan(
            &dir.path().join("Cargo.toml"),
            &["--workspace", "--exclude", "opt-fn-b"]
        )),
        ["opt-fn-a"]
    );
    assert_eq!(
        functions(&mut plan(
            &dir.path().join("Cargo.toml"),
            &["--workspace", "--exclude", "*-b"]
        )),
        ["opt-fn-a"]
    );
}

#[test]
fn patterns_that_match_nothing_and_exclude_without_workspace_are_refused() {
    let dir = three_members();
    plan(&dir.path().join("Cargo.toml"), &["-p", "api-*"])
        .assert()
        .code(exit_code::WORKSPACE)
        .stdout("")
        .stderr(predicate::str::contains("api-*"))
        .stderr(predicate::str::contains("opt-fn-a"));
    plan(
        &dir.path().join("Cargo.toml"),
        &["--workspace", "--exclude", "opt-fn-c"],
    )
    .assert()
    .code(exit_code::WORKSPACE)
    .stderr(predicate::str::contains("opt-fn-c"));
    plan(&dir.path().join("Cargo.toml"), &["--exclude", "opt-fn-b"])
        .assert()
        .code(exit_code::USAGE)
        .stderr(predicate::str::contains("--workspace"));
}
