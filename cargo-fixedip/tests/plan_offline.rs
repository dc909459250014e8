//! `cargo fixedip plan --offline` on the example function: builds it (release, in the workspace's
//! target directory, as a user's `cargo build --release` would), reads the record
//! `#[fixed_egress(azs = 2)]` compiled into it, and prints the network and its cost. No AWS.

use std::path::PathBuf;

use assert_cmd::cargo::cargo_bin_cmd;
use cargo_fixedip::exit_code;
use predicates::prelude::*;
use serde_json::Value;

fn example_manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-egress/Cargo.toml")
}

fn plan(args: &[&str]) -> assert_cmd::Command {
    let mut command = cargo_bin_cmd!("cargo-fixedip");
    command
        .args(["fixedip", "plan", "--offline", "--manifest-path"])
        .arg(example_manifest())
        .args(args)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("CARGO_TERM_COLOR")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    command
}

/// The AZs of a stack of `plan --json`: its network's `availability_zone` nodes.
fn azs_of(stack: &Value) -> Vec<&str> {
    stack["network"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|node| node["kind"] == "availability_zone")
        .map(|node| node["az"].as_str().unwrap())
        .collect()
}

fn stdout_of(command: &mut assert_cmd::Command) -> String {
    let output = command.assert().success().get_output().clone();
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn text_plan_shows_two_azs_and_the_monthly_cost() {
    let text = stdout_of(&mut plan(&["--region", "us-east-1"]));
    assert!(text.contains("Stack `default` in us-east-1"), "{text}");
    assert!(text.contains("AZ names assumed"), "{text}");
    for az in ["AZ us-east-1a (slot 0)", "AZ us-east-1b (slot 1)"] {
        assert!(text.contains(az), "{az} missing:\n{text}");
    }
    assert!(
        !text.contains("us-east-1c"),
        "azs = 2 plans two AZs:\n{text}"
    );
    assert_eq!(
        text.matches("── NAT gateway").count(),
        2,
        "one NAT per AZ:\n{text}"
    );
    assert!(text.contains("λ hello-egress"), "{text}");
    // 2 × 0.045 × 730 + 2 × 0.005 × 730, the figure of product.md's 2-AZ us-east-1 stack.
    assert!(text.contains("$73.00 per month"), "{text}");
    assert!(
        text.contains("prices of 20"),
        "the table's date is shown:\n{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no color when stdout is not a terminal"
    );
}

#[test]
fn json_plan_is_one_document() {
    let text = stdout_of(&mut plan(&[
        "--region",
        "ap-northeast-1",
        "--json",
        "--quiet",
    ]));
    let document: Value = serde_json::from_str(&text).expect("stdout is one JSON document");
    assert_eq!(document["offline"], true);
    let stacks = document["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 1);
    let stack = &stacks[0];
    assert_eq!(document["format_version"], 1);
    assert_eq!(stack["stack"], "default");
    assert_eq!(stack["region"], "ap-northeast-1");
    let azs = azs_of(stack);
    // ap-northeast-1b takes no new accounts: the assumed AZs skip it.
    assert_eq!(azs, ["ap-northeast-1a", "ap-northeast-1c"]);
    // 2 × 0.062 × 730 + 2 × 0.005 × 730.
    assert_eq!(stack["cost"]["fixed_monthly_usd"], 97.82);
    assert_eq!(
        stack["cost"]["prices_date"].as_str().unwrap().len(),
        "2026-11-01".len()
    );
    assert_eq!(stack["functions"][0]["name"], "hello-egress");
    assert_eq!(stack["functions"][0]["status"], "create");
}

#[test]
fn region_comes_from_the_environment_when_not_given() {
    let text = stdout_of(plan(&["--json", "-q"]).env("AWS_DEFAULT_REGION", "eu-west-1"));
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["stacks"][0]["region"], "eu-west-1");
    let text = stdout_of(
        plan(&["--json", "-q"])
            .env("AWS_REGION", "us-west-2")
            .env("AWS_DEFAULT_REGION", "eu-west-1"),
    );
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        document["stacks"][0]["region"], "us-west-2",
        "AWS_REGION comes first"
    );
}

#[test]
fn no_region_anywhere_is_refused_with_a_hint() {
    plan(&["-q"])
        .assert()
        .code(exit_code::USAGE)
        .stdout("")
        .stderr(predicate::str::contains("no region"))
        .stderr(predicate::str::contains("--region"));
}

#[test]
fn region_without_prices_is_planned_with_the_cost_unknown() {
    plan(&["--region", "ap-east-1"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Stack `payments` in ap-east-1")
                .or(predicate::str::contains("in ap-east-1")),
        )
        .stdout(predicate::str::contains("Monthly cost: unknown"))
        .stderr(predicate::str::contains(
            "the monthly cost is unknown: no prices for region ap-east-1",
        ));
}

#[test]
fn progress_goes_to_stderr_and_quiet_silences_it() {
    let output = plan(&["--region", "us-east-1"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("Building"), "{stderr}");
    assert!(stderr.contains("Planning"), "{stderr}");
    let output = plan(&["--region", "us-east-1", "-q"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(String::from_utf8(output.stderr).unwrap(), "");
}

#[test]
fn color_follows_the_flag_and_cargo_term_color() {
    let always = stdout_of(&mut plan(&[
        "--region",
        "us-east-1",
        "--color",
        "always",
        "-q",
    ]));
    assert!(always.contains('\u{1b}'), "--color always colors a pipe");
    let env = stdout_of(plan(&["--region", "us-east-1", "-q"]).env("CARGO_TERM_COLOR", "always"));
    assert!(
        env.contains('\u{1b}'),
        "CARGO_TERM_COLOR=always colors a pipe"
    );
    let never = stdout_of(
        plan(&["--region", "us-east-1", "-q", "--color", "never"])
            .env("CARGO_TERM_COLOR", "always"),
    );
    assert!(
        !never.contains('\u{1b}'),
        "--color never beats CARGO_TERM_COLOR"
    );
    // `auto` on a pipe is plain anyway; CLICOLOR_FORCE makes it colored, so NO_COLOR can be seen
    // turning it off.
    let forced = stdout_of(plan(&["--region", "us-east-1", "-q"]).env("CLICOLOR_FORCE", "1"));
    assert!(forced.contains('\u{1b}'), "CLICOLOR_FORCE colors auto");
    let no_color = stdout_of(
        plan(&["--region", "us-east-1", "-q"])
            .env("CLICOLOR_FORCE", "1")
            .env("NO_COLOR", "1"),
    );
    assert!(!no_color.contains('\u{1b}'), "NO_COLOR turns auto off");
}

#[test]
fn diagrams_draw_both_azs_and_the_function() {
    let mermaid = stdout_of(&mut plan(&[
        "--region",
        "us-east-1",
        "-q",
        "--diagram",
        "mermaid",
    ]));
    assert!(mermaid.starts_with("flowchart TB\n"), "{mermaid}");
    assert_eq!(mermaid.matches("NAT gateway<br/>").count(), 2, "{mermaid}");
    assert!(
        mermaid.contains("us-east-1a") && mermaid.contains("us-east-1b"),
        "{mermaid}"
    );
    assert!(mermaid.contains("λ hello-egress"), "{mermaid}");

    let dot = stdout_of(&mut plan(&[
        "--region",
        "us-east-1",
        "-q",
        "--diagram",
        "dot",
    ]));
    assert!(
        dot.starts_with("digraph fixedip {") && dot.trim_end().ends_with('}'),
        "{dot}"
    );
    assert_eq!(dot.matches("label=\"NAT gateway").count(), 2, "{dot}");
    assert_eq!(
        dot.matches('{').count(),
        dot.matches('}').count(),
        "balanced braces:\n{dot}"
    );
}

/// A user's package depending on this repository's fixedip-macros, with `metadata` appended to its
/// Cargo.toml and one `src/bin/<name>.rs` per entry of `binaries`. It builds in the workspace's
/// target directory, with the workspace's lock file, so that only its small binaries are compiled;
/// binary names must be unique across tests because they share `target/release`.
fn user_crate(name: &str, metadata: &str, binaries: &[(&str, &str)]) -> tempfile::TempDir {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nfixedip-macros = {{ path = {:?} }}\n\n{metadata}\n\n[workspace]\n",
            repo.join("fixedip-macros").canonicalize().unwrap()
        ),
    )
    .unwrap();
    std::fs::copy(repo.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    std::fs::create_dir_all(dir.path().join("src/bin")).unwrap();
    for (binary, source) in binaries {
        std::fs::write(dir.path().join(format!("src/bin/{binary}.rs")), source).unwrap();
    }
    dir
}

/// Two binaries, `<name>-a` and `<name>-b`, with the attributes `a` and `b` on their `main`.
fn two_function_crate(name: &str, a: &str, b: &str) -> tempfile::TempDir {
    let source = |attribute: &str| format!("#[fixedip_macros::{attribute}]\nfn main() {{}}\n");
    user_crate(
        name,
        "",
        &[
            (&format!("{name}-a"), &source(a)),
            (&format!("{name}-b"), &source(b)),
        ],
    )
}

fn plan_crate(dir: &tempfile::TempDir) -> assert_cmd::Command {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("..");
    let mut command = cargo_bin_cmd!("cargo-fixedip");
    command
        .args([
            "fixedip",
            "plan",
            "--offline",
            "-q",
            "--region",
            "us-east-1",
            "--manifest-path",
        ])
        .arg(dir.path().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target);
    command
}

#[test]
fn functions_of_one_stack_that_disagree_are_refused_naming_both() {
    let dir = two_function_crate("disagree", "fixed_egress(azs = 2)", "fixed_egress(azs = 3)");
    plan_crate(&dir)
        .assert()
        .code(exit_code::PLAN)
        .stdout("")
        .stderr(predicate::str::contains("disagree on `azs`"))
        .stderr(predicate::str::contains(
            "`disagree_a::main` in package disagree",
        ))
        .stderr(predicate::str::contains("src/bin/disagree-a.rs:1) has 2"))
        .stderr(predicate::str::contains("src/bin/disagree-b.rs:1) has 3"));
}

#[test]
fn functions_of_two_stacks_get_two_networks() {
    let dir = two_function_crate(
        "stacks",
        "fixed_egress(stack = \"alpha\", azs = 1)",
        "fixed_egress(stack = \"beta\", azs = 3)",
    );
    let text = stdout_of(plan_crate(&dir).arg("--json"));
    let document: Value = serde_json::from_str(&text).unwrap();
    let stacks: Vec<(&str, usize, &str)> = document["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stack"].as_str().unwrap(),
                azs_of(s).len(),
                s["functions"][0]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(stacks, [("alpha", 1, "stacks-a"), ("beta", 3, "stacks-b")]);
}

#[test]
fn workspace_and_package_flags_find_the_example() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    for selection in [&["--workspace"][..], &["-p", "hello-egress"]] {
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
            .args(selection)
            .arg("--manifest-path")
            .arg(&root);
        let document: Value = serde_json::from_str(&stdout_of(&mut command)).unwrap();
        let functions = &document["stacks"][0]["functions"];
        assert_eq!(functions[0]["name"], "hello-egress", "{selection:?}");
    }
}

#[test]
fn a_binary_with_two_attributes_is_refused_naming_both() {
    let source = "#[fixedip_macros::fixed_egress]\nfn main() { other() }\n\n\
                  #[fixedip_macros::fixed_egress(azs = 1)]\nfn other() {}\n";
    let dir = user_crate("twice", "", &[("twice", source)]);
    let assert = plan_crate(&dir).assert();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(
        stderr.matches("has two #[fixed_egress] functions").count(),
        1,
        "{stderr}"
    );
    assert
        .code(exit_code::NO_FUNCTION)
        .stderr(predicate::str::contains("help: remove #[fixed_egress]"))
        .stderr(predicate::str::contains("twice::main"))
        .stderr(predicate::str::contains("twice::other"))
        .stderr(predicate::str::contains("keep one"));
}

#[test]
fn cargo_lambda_settings_reach_the_plan_and_fixedip_wins() {
    let metadata = "[package.metadata.lambda.deploy]\nmemory = 1024\ntimeout = 60\n\
                    env = { FROM_LAMBDA = \"1\", SHARED = \"lambda\" }\n\n\
                    [package.metadata.fixedip]\nmemory = 256\nfunction-name = \"renamed\"\n\
                    architecture = \"arm64\"\nenvironment = { SHARED = \"fixedip\" }\n";
    let source = "#[fixedip_macros::fixed_egress(azs = 1)]\nfn main() {}\n";
    let dir = user_crate("settled", metadata, &[("settled", source)]);
    let document: Value = serde_json::from_str(&stdout_of(plan_crate(&dir).arg("--json"))).unwrap();
    let created = &document["stacks"][0]["functions"][0];
    assert_eq!(created["name"], "renamed");
    assert_eq!(created["status"], "create");
    let function = &created["settings"];
    assert_eq!(function["memory_mb"], 256, "fixedip's memory wins");
    assert_eq!(
        function["timeout_s"], 60,
        "cargo-lambda's timeout is honoured"
    );
    assert_eq!(function["architecture"], "arm64");
    assert_eq!(function["environment"]["SHARED"], "fixedip");
    assert_eq!(function["environment"]["FROM_LAMBDA"], "1");
}

#[test]
fn workspace_skips_members_without_an_annotated_binary() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let macros = repo.join("fixedip-macros").canonicalize().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace]\nmembers = [\"annotated\", \"plain\", \"library\"]\nresolver = \"2\"\n",
    )
    .unwrap();
    std::fs::copy(repo.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    // `plain` depends on the macro but does not use it: built, then skipped. `library` has no
    // binary and no macro: not even built.
    for (member, main) in [
        (
            "annotated",
            "#[fixedip_macros::fixed_egress(azs = 1)]\nfn main() {}\n",
        ),
        ("plain", "fn main() {}\n"),
    ] {
        std::fs::create_dir_all(dir.path().join(member).join("src")).unwrap();
        std::fs::write(
            dir.path().join(member).join("Cargo.toml"),
            format!(
                "[package]\nname = \"ws-{member}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\nfixedip-macros = {{ path = {macros:?} }}\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join(member).join("src/main.rs"), main).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("library/src")).unwrap();
    std::fs::write(
        dir.path().join("library/Cargo.toml"),
        "[package]\nname = \"ws-library\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("library/src/lib.rs"), "").unwrap();

    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("..");
    let mut command = cargo_bin_cmd!("cargo-fixedip");
    command
        .args([
            "fixedip",
            "plan",
            "--offline",
            "--json",
            "-v",
            "--workspace",
        ])
        .args(["--region", "us-east-1", "--manifest-path"])
        .arg(dir.path().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target);
    let output = command.assert().success().get_output().clone();
    let document: Value = serde_json::from_slice(&output.stdout).unwrap();
    let functions = &document["stacks"][0]["functions"];
    assert_eq!(functions.as_array().unwrap().len(), 1, "{functions}");
    assert_eq!(functions[0]["name"], "ws-annotated");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("package `ws-plain` has no #[fixed_egress] binary: skipped"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("ws-library"),
        "a member without the macro is not built:\n{stderr}"
    );

    // Named explicitly, the same package is an error.
    let mut command = cargo_bin_cmd!("cargo-fixedip");
    command
        .args(["fixedip", "plan", "--offline", "-q", "-p", "ws-plain"])
        .args(["--region", "us-east-1", "--manifest-path"])
        .arg(dir.path().join("Cargo.toml"))
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(".."),
        );
    command
        .assert()
        .code(exit_code::NO_FUNCTION)
        .stderr(predicate::str::contains(
            "package `ws-plain` has no binary with #[fixed_egress]",
        ));
}
